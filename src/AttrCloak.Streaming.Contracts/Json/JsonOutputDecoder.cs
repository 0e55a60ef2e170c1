using System.Text.Json;
using System.Text.Unicode;

namespace AttrCloak.Streaming.Contracts.Json;

/// <summary>
/// Reads the messages the worker writes (cloaked embeddings, dead letters): for serving-side consumers, tools
/// and tests. Not on the hot path, so it goes through <see cref="JsonDocument"/>. Never throws.
/// </summary>
internal static class JsonOutputDecoder
{
    private static readonly JsonDocumentOptions DocumentOptions = new()
    {
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowDuplicateProperties = false,
    };

    private static readonly string[] CloakedMembers =
        ["schema", "user_id", "version", "model_version", "embedding", "protected_attributes", "cloaked_at"];

    private static readonly string[] DeadLetterMembers =
        ["schema", "reason", "message", "source_topic", "source_partition", "source_offset", "original_size_bytes", "dead_lettered_at"];

    private sealed class Defect(ReasonCode reason, string message) : Exception(message)
    {
        public DecodeError Error { get; } = new(reason, message);
    }

    public static DecodeError? TryDecodeCloaked(ReadOnlySpan<byte> value, int maxBytes, out CloakedEmbedding? cloaked)
    {
        cloaked = null;
        return Run(value, maxBytes, root =>
        {
            Members(root, CloakedMembers);
            Const(root, "schema", CloakedEmbedding.SchemaName);
            var userId = Text(root, "user_id", TextRules.MaxIdLength, ReasonCode.BadUserId);
            var version = Int64(root, "version", 0, long.MaxValue);
            var modelVersion = Text(root, "model_version", TextRules.MaxNameLength, ReasonCode.SchemaViolation);
            var embedding = Embedding(root.GetProperty("embedding"));
            var list = root.GetProperty("protected_attributes");
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() > TextRules.MaxAttributes)
                throw new Defect(ReasonCode.SchemaViolation, $"protected_attributes must be an array of at most {TextRules.MaxAttributes} names");
            var names = new List<string>();
            foreach (var item in list.EnumerateArray())
            {
                var name = TextOf(item, "protected_attributes[]", TextRules.MaxNameLength, ReasonCode.SchemaViolation);
                if (names.Contains(name, StringComparer.Ordinal))
                    throw new Defect(ReasonCode.SchemaViolation, "protected_attributes has a duplicate");
                names.Add(name);
            }
            var cloakedAt = Timestamp(root, "cloaked_at");
            return new CloakedEmbedding(userId, version, modelVersion, embedding, names, cloakedAt);
        }, out cloaked);
    }

    public static DecodeError? TryDecodeDeadLetter(ReadOnlySpan<byte> value, int maxBytes, out DeadLetter? deadLetter)
    {
        return Run(value, maxBytes, root =>
        {
            Members(root, DeadLetterMembers);
            Const(root, "schema", DeadLetter.SchemaName);
            var reasonElement = root.GetProperty("reason");
            if (reasonElement.ValueKind != JsonValueKind.String || !ReasonCodes.TryParseLabel(reasonElement.GetString(), out var reason))
                throw new Defect(ReasonCode.SchemaViolation, "reason is not a known reason code");
            var messageElement = root.GetProperty("message");
            if (messageElement.ValueKind != JsonValueKind.String || messageElement.GetString()!.Length > DeadLetter.MaxMessageLength)
                throw new Defect(ReasonCode.SchemaViolation, $"message must be a string of at most {DeadLetter.MaxMessageLength} characters");
            var topic = root.GetProperty("source_topic");
            if (topic.ValueKind != JsonValueKind.String || topic.GetString() is not { Length: >= 1 and <= 249 } sourceTopic)
                throw new Defect(ReasonCode.SchemaViolation, "source_topic must be a topic name");
            var partition = (int)Int64(root, "source_partition", 0, int.MaxValue);
            var offset = Int64(root, "source_offset", 0, long.MaxValue);
            var size = (int)Int64(root, "original_size_bytes", 0, int.MaxValue);
            var at = Timestamp(root, "dead_lettered_at");
            return new DeadLetter(reason, messageElement.GetString()!, sourceTopic, partition, offset, size, at);
        }, out deadLetter);
    }

    private static DecodeError? Run<T>(ReadOnlySpan<byte> value, int maxBytes, Func<JsonElement, T> read, out T? result)
        where T : class
    {
        result = null;
        if (value.IsEmpty)
            return new DecodeError(ReasonCode.Empty, "no bytes");
        if (value.Length > maxBytes)
            return new DecodeError(ReasonCode.Oversized, $"{value.Length} bytes is more than the {maxBytes}-byte limit");
        if (!Utf8.IsValid(value))
            return new DecodeError(ReasonCode.MalformedJson, "not valid UTF-8");
        try
        {
            using var document = JsonDocument.Parse(value.ToArray(), DocumentOptions);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                return new DecodeError(ReasonCode.SchemaViolation, "the message must be a JSON object");
            result = read(document.RootElement);
            return null;
        }
        catch (JsonException)
        {
            return new DecodeError(ReasonCode.MalformedJson, "not valid JSON");
        }
        catch (Defect d)
        {
            return d.Error;
        }
        catch (InvalidOperationException)
        {
            return new DecodeError(ReasonCode.SchemaViolation, "a string is not valid Unicode");
        }
    }

    private static void Members(JsonElement root, string[] allowed)
    {
        foreach (var property in root.EnumerateObject())
        {
            if (Array.IndexOf(allowed, property.Name) < 0)
                throw new Defect(ReasonCode.SchemaViolation, $"unknown member '{TextRules.Sanitize(property.Name)}'");
        }
        foreach (var name in allowed)
        {
            if (!root.TryGetProperty(name, out _))
                throw new Defect(ReasonCode.SchemaViolation, $"missing member '{name}'");
        }
    }

    private static void Const(JsonElement root, string name, string expected)
    {
        var e = root.GetProperty(name);
        if (e.ValueKind != JsonValueKind.String || !e.ValueEquals(expected))
            throw new Defect(ReasonCode.UnknownSchema, $"{name} must be {expected}");
    }

    private static string Text(JsonElement root, string name, int maxLength, ReasonCode reason) =>
        TextOf(root.GetProperty(name), name, maxLength, reason);

    private static string TextOf(JsonElement e, string name, int maxLength, ReasonCode reason)
    {
        if (e.ValueKind != JsonValueKind.String || e.GetString() is not { } s || !TextRules.IsValid(s, maxLength))
            throw new Defect(reason, $"{name} must be 1-{maxLength} characters without control characters");
        return s;
    }

    private static long Int64(JsonElement root, string name, long min, long max)
    {
        var e = root.GetProperty(name);
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var v) && v >= min && v <= max)
            return v;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDecimal(out var d) && d == decimal.Truncate(d) && d >= min && d <= max)
            return (long)d;
        throw new Defect(ReasonCode.SchemaViolation, $"{name} must be an integer in {min}..{max}");
    }

    private static DateTimeOffset Timestamp(JsonElement root, string name)
    {
        var e = root.GetProperty(name);
        if (e.ValueKind == JsonValueKind.String && Rfc3339.TryParse(e.GetString(), out var t))
            return t;
        throw new Defect(ReasonCode.SchemaViolation, $"{name} must be an RFC 3339 date-time with offset");
    }

    private static float[] Embedding(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Array)
            throw new Defect(ReasonCode.SchemaViolation, "embedding must be an array of numbers");
        var n = e.GetArrayLength();
        if (n is 0 or > ContractLimits.MaxDimension)
            throw new Defect(ReasonCode.SchemaViolation, $"embedding must have 1..{ContractLimits.MaxDimension} values");
        var values = new float[n];
        var i = 0;
        foreach (var item in e.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number)
                throw new Defect(ReasonCode.SchemaViolation, $"embedding[{i}] is not a number");
            if (!item.TryGetSingle(out var v) || !float.IsFinite(v))
                throw new Defect(ReasonCode.NonFiniteValue, $"embedding[{i}] is outside the float32 range");
            values[i++] = v;
        }
        return values;
    }
}
