using System.Text.Json;

namespace AttrCloak.Streaming.Contracts.Json;

/// <summary>
/// Decodes the JSON inbound events with one <see cref="Utf8JsonReader"/> pass (a second pass over the payload
/// only when it comes before the <c>schema</c> member). Rules, in the order they take precedence:
/// <list type="number">
/// <item>any JSON syntax error anywhere (including a member given twice) → <see cref="ReasonCode.MalformedJson"/>,
/// except a bare NaN/Infinity literal, which is <see cref="ReasonCode.NonFiniteValue"/>;</item>
/// <item>an unknown <c>schema</c> → <see cref="ReasonCode.UnknownSchema"/>, whatever else the event has;</item>
/// <item>otherwise the first defect in document order; then missing members.</item>
/// </list>
/// Unknown members are rejected (<see cref="ReasonCode.SchemaViolation"/>), as the schemas'
/// <c>additionalProperties: false</c> says: a misspelt optional member (say "atributes") must not be silently
/// dropped by a privacy guard. New members mean a new schema version.
/// </summary>
internal static class JsonEventDecoder
{
    private const int MaxStackChars = 256;

    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        MaxDepth = 64,
    };

    private enum Kind
    {
        Unknown,
        EmbeddingUpdate,
        PrivacyRequest,
    }

    [Flags]
    private enum Seen
    {
        None = 0,
        Schema = 1,
        EventId = 2,
        UserId = 4,
        Version = 8,
        EventTime = 16,
        Payload = 32,
    }

    /// <summary>The payload members of either event type, collected before the type-specific checks.</summary>
    private sealed class PayloadParts
    {
        public string? ModelVersion;
        public float[]? Embedding;
        public Dictionary<string, string?>? Attributes;
        public PrivacyRequestType? Type;
    }

    public static DecodeResult Decode(ReadOnlySpan<byte> json, ContractLimits limits)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        try
        {
            return DecodeEnvelope(ref reader, json, limits);
        }
        catch (JsonException e)
        {
            return Malformed(json, e);
        }
    }

    /// <summary>A member given twice: RFC 8259 leaves the meaning open, and parsers disagree on which copy wins.</summary>
    private sealed class DuplicateMemberException(string member) : JsonException($"member '{member}' given twice")
    {
        public string Member { get; } = member;
    }

    private static DecodeResult Malformed(ReadOnlySpan<byte> json, JsonException e)
    {
        if (e is DuplicateMemberException duplicate)
            return DecodeResult.Failure(ReasonCode.MalformedJson, $"member '{duplicate.Member}' given twice");
        if (HasBareNonFiniteLiteral(json))
            return DecodeResult.Failure(ReasonCode.NonFiniteValue,
                "a bare NaN or Infinity literal: JSON has none (a writer such as Python's json.dumps emitted a non-finite float)");
        var where = e.LineNumber is { } line ? $" (line {line + 1}, byte {e.BytePositionInLine + 1})" : "";
        return DecodeResult.Failure(ReasonCode.MalformedJson, $"not valid JSON{where}");
    }

    private static DecodeResult DecodeEnvelope(ref Utf8JsonReader reader, ReadOnlySpan<byte> json, ContractLimits limits)
    {
        if (!reader.Read())
            return DecodeResult.Failure(ReasonCode.MalformedJson, "no JSON value");
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            Drain(ref reader);
            return DecodeResult.Failure(ReasonCode.SchemaViolation, "an event must be a JSON object");
        }

        var kind = Kind.Unknown;
        var seen = Seen.None;
        DecodeError? first = null;
        DecodeError? unknownSchema = null;
        string? eventId = null, userId = null;
        long version = 0;
        DateTimeOffset eventTime = default;
        PayloadParts? payload = null;
        int payloadStart = -1, payloadEnd = -1;

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var member = Member(ref reader, out var unknownName);
            if (member != Seen.None)
            {
                if ((seen & member) != 0)
                    throw new DuplicateMemberException(Name(member));
                seen |= member;
            }
            reader.Read();

            if (member == Seen.Schema)
            {
                // Looked at even after another defect: an unknown schema explains all the others.
                var known = ReadSchemaName(ref reader, out var error);
                if (error is not null && error.Reason == ReasonCode.UnknownSchema)
                    unknownSchema = error;
                else if (error is not null)
                    first ??= error;
                kind = known;
                continue;
            }
            if (first is not null || unknownSchema is not null)
            {
                reader.Skip();
                continue;
            }

            DecodeError? defect = null;
            switch (member)
            {
                case Seen.EventId:
                    defect = ReadText(ref reader, TextRules.MaxIdLength, "event_id", ReasonCode.SchemaViolation, out eventId);
                    break;
                case Seen.UserId:
                    defect = ReadText(ref reader, TextRules.MaxIdLength, "user_id", ReasonCode.BadUserId, out userId);
                    break;
                case Seen.Version:
                    defect = ReadVersion(ref reader, out version);
                    break;
                case Seen.EventTime:
                    defect = ReadTimestamp(ref reader, "event_time", out eventTime);
                    break;
                case Seen.Payload:
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        reader.Skip();
                        defect = new DecodeError(ReasonCode.SchemaViolation, "payload must be a JSON object");
                    }
                    else if (kind == Kind.Unknown)
                    {
                        // schema not seen yet: validate the syntax now, interpret later.
                        payloadStart = (int)reader.TokenStartIndex;
                        reader.Skip();
                        payloadEnd = (int)reader.BytesConsumed;
                    }
                    else
                    {
                        var depth = reader.CurrentDepth;
                        defect = ReadPayload(ref reader, kind, limits, out payload);
                        if (defect is not null)
                            SkipToEndOfObject(ref reader, depth);
                    }
                    break;
                default:
                    reader.Skip();
                    defect = new DecodeError(ReasonCode.SchemaViolation,
                        $"unknown member '{TextRules.Sanitize(unknownName ?? "?")}' (v1 events have schema, event_id, user_id, version, event_time, payload)");
                    break;
            }
            first ??= defect;
        }
        Drain(ref reader);

        if (unknownSchema is not null)
            return unknownSchema;
        if (first is not null)
            return first;
        foreach (var required in (ReadOnlySpan<Seen>)[Seen.Schema, Seen.EventId, Seen.UserId, Seen.Version, Seen.EventTime, Seen.Payload])
        {
            if ((seen & required) == 0)
                return DecodeResult.Failure(ReasonCode.SchemaViolation, $"missing member '{Name(required)}'");
        }

        if (payload is null)
        {
            var payloadReader = new Utf8JsonReader(json[payloadStart..payloadEnd], ReaderOptions);
            payloadReader.Read();
            var defect = ReadPayload(ref payloadReader, kind, limits, out payload);
            if (defect is not null)
                return defect;
        }
        return Build(kind, eventId!, userId!, version, eventTime, payload!);
    }

    private static Seen Member(ref Utf8JsonReader reader, out string? unknownName)
    {
        unknownName = null;
        if (Is(ref reader, "schema"u8)) return Seen.Schema;
        if (Is(ref reader, "event_id"u8)) return Seen.EventId;
        if (Is(ref reader, "user_id"u8)) return Seen.UserId;
        if (Is(ref reader, "version"u8)) return Seen.Version;
        if (Is(ref reader, "event_time"u8)) return Seen.EventTime;
        if (Is(ref reader, "payload"u8)) return Seen.Payload;
        unknownName = SafeString(ref reader);
        return Seen.None;
    }

    private static string Name(Seen member) => member switch
    {
        Seen.Schema => "schema",
        Seen.EventId => "event_id",
        Seen.UserId => "user_id",
        Seen.Version => "version",
        Seen.EventTime => "event_time",
        _ => "payload",
    };

    private static Kind ReadSchemaName(ref Utf8JsonReader reader, out DecodeError? error)
    {
        error = null;
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            error = new DecodeError(ReasonCode.SchemaViolation, "schema must be a string");
            return Kind.Unknown;
        }
        if (Is(ref reader, "attrcloak.embedding_update.v1"u8))
            return Kind.EmbeddingUpdate;
        if (Is(ref reader, "attrcloak.privacy_request.v1"u8))
            return Kind.PrivacyRequest;
        var name = SafeString(ref reader);
        error = new DecodeError(ReasonCode.UnknownSchema,
            $"unknown schema '{TextRules.Sanitize(name ?? "?")}' (this consumer reads {SchemaNames.EmbeddingUpdateV1} and {SchemaNames.PrivacyRequestV1})");
        return Kind.Unknown;
    }

    private static DecodeError? ReadPayload(ref Utf8JsonReader reader, Kind kind, ContractLimits limits, out PayloadParts? parts)
    {
        parts = null;
        var p = new PayloadParts();
        var seenModel = false;
        var seenEmbedding = false;
        var seenAttributes = false;
        var seenType = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            DecodeError? defect;
            if (Is(ref reader, "model_version"u8) && kind == Kind.EmbeddingUpdate)
            {
                Once(ref seenModel, "model_version");
                reader.Read();
                defect = ReadText(ref reader, TextRules.MaxNameLength, "payload.model_version", ReasonCode.SchemaViolation, out p.ModelVersion);
            }
            else if (Is(ref reader, "embedding"u8) && kind == Kind.EmbeddingUpdate)
            {
                Once(ref seenEmbedding, "embedding");
                reader.Read();
                defect = ReadEmbedding(ref reader, limits.Dimension, out p.Embedding);
            }
            else if (Is(ref reader, "type"u8) && kind == Kind.PrivacyRequest)
            {
                Once(ref seenType, "type");
                reader.Read();
                defect = ReadRequestType(ref reader, out p.Type);
            }
            else if (Is(ref reader, "attributes"u8))
            {
                Once(ref seenAttributes, "attributes");
                reader.Read();
                defect = ReadAttributes(ref reader, allowNull: kind == Kind.PrivacyRequest, out p.Attributes);
            }
            else
            {
                var name = SafeString(ref reader) ?? "";
                var allowed = kind == Kind.EmbeddingUpdate ? "model_version, embedding, attributes" : "type, attributes";
                defect = new DecodeError(ReasonCode.SchemaViolation, $"unknown member 'payload.{TextRules.Sanitize(name)}' (allowed: {allowed})");
            }
            if (defect is not null)
                return defect;
        }

        if (kind == Kind.EmbeddingUpdate)
        {
            if (p.ModelVersion is null)
                return new DecodeError(ReasonCode.SchemaViolation, "missing member 'payload.model_version'");
            if (p.Embedding is null)
                return new DecodeError(ReasonCode.SchemaViolation, "missing member 'payload.embedding'");
        }
        else
        {
            if (p.Type is null)
                return new DecodeError(ReasonCode.SchemaViolation, "missing member 'payload.type'");
            if (p.Type == PrivacyRequestType.UpdateAttributes && p.Attributes is null)
                return new DecodeError(ReasonCode.SchemaViolation, "update_attributes needs 'payload.attributes' with at least one entry");
            if (p.Type != PrivacyRequestType.UpdateAttributes && p.Attributes is not null)
                return new DecodeError(ReasonCode.SchemaViolation, "'payload.attributes' is only allowed with update_attributes");
            if (p.Attributes is { Count: 0 })
                return new DecodeError(ReasonCode.SchemaViolation, "'payload.attributes' must have at least one entry");
        }
        parts = p;
        return null;
    }

    private static void Once(ref bool seen, string member)
    {
        if (seen)
            throw new DuplicateMemberException($"payload.{member}");
        seen = true;
    }

    private static DecodeError? ReadEmbedding(ref Utf8JsonReader reader, int dimension, out float[]? embedding)
    {
        embedding = null;
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return new DecodeError(ReasonCode.SchemaViolation, "payload.embedding must be an array of numbers");
        }
        var values = new float[dimension];
        var n = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.Number:
                    if (n == dimension)
                        return new DecodeError(ReasonCode.WrongDimension, $"embedding has more than {dimension} values; this deployment's dimension is {dimension}");
                    // TryGetSingle rounds out-of-range numbers to ±Infinity rather than failing.
                    if (!reader.TryGetSingle(out var value) || !float.IsFinite(value))
                        return new DecodeError(ReasonCode.NonFiniteValue, $"embedding[{n}] is outside the float32 range");
                    values[n++] = value;
                    break;
                case JsonTokenType.String when IsNonFiniteName(ref reader):
                    return new DecodeError(ReasonCode.NonFiniteValue, $"embedding[{n}] is a NaN or Infinity string; values must be finite numbers");
                default:
                    reader.Skip();
                    return new DecodeError(ReasonCode.SchemaViolation, $"embedding[{n}] is not a number");
            }
        }
        if (n == 0)
            return new DecodeError(ReasonCode.SchemaViolation, "payload.embedding is empty");
        if (n != dimension)
            return new DecodeError(ReasonCode.WrongDimension, $"embedding has {n} values; this deployment's dimension is {dimension}");
        embedding = values;
        return null;
    }

    private static bool IsNonFiniteName(ref Utf8JsonReader reader)
    {
        if (reader.ValueSpan.Length > 16)
            return false;
        var text = SafeString(ref reader);
        if (text is null)
            return false;
        var t = text.Trim().TrimStart('+', '-');
        return t.Equals("nan", StringComparison.OrdinalIgnoreCase)
            || t.Equals("inf", StringComparison.OrdinalIgnoreCase)
            || t.Equals("infinity", StringComparison.OrdinalIgnoreCase)
            || t == "∞";
    }

    private static DecodeError? ReadRequestType(ref Utf8JsonReader reader, out PrivacyRequestType? type)
    {
        type = null;
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return new DecodeError(ReasonCode.SchemaViolation, "payload.type must be a string");
        }
        if (Is(ref reader, "opt_out"u8))
            type = PrivacyRequestType.OptOut;
        else if (Is(ref reader, "forget"u8))
            type = PrivacyRequestType.Forget;
        else if (Is(ref reader, "update_attributes"u8))
            type = PrivacyRequestType.UpdateAttributes;
        else
            return new DecodeError(ReasonCode.UnknownRequestType,
                $"unknown request type '{TextRules.Sanitize(SafeString(ref reader) ?? "?")}' (v1 has opt_out, forget, update_attributes)");
        return null;
    }

    private static DecodeError? ReadAttributes(ref Utf8JsonReader reader, bool allowNull, out Dictionary<string, string?>? attributes)
    {
        attributes = null;
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return new DecodeError(ReasonCode.SchemaViolation, "payload.attributes must be an object (attribute name -> class name)");
        }
        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = SafeString(ref reader);
            if (name is null || !TextRules.IsValid(name, TextRules.MaxNameLength))
                return new DecodeError(ReasonCode.SchemaViolation,
                    $"attribute name '{TextRules.Sanitize(name ?? "?")}' is empty, longer than {TextRules.MaxNameLength} characters, or has control characters");
            if (result.ContainsKey(name))
                throw new DuplicateMemberException($"payload.attributes.{TextRules.Sanitize(name)}");
            if (result.Count == TextRules.MaxAttributes)
                return new DecodeError(ReasonCode.SchemaViolation, $"more than {TextRules.MaxAttributes} attributes");
            reader.Read();
            if (reader.TokenType == JsonTokenType.Null && allowNull)
            {
                result.Add(name, null);
                continue;
            }
            if (reader.TokenType != JsonTokenType.String)
            {
                reader.Skip();
                // Never quote the value: it is an attribute value.
                return new DecodeError(ReasonCode.SchemaViolation, allowNull
                    ? $"attribute '{TextRules.Sanitize(name)}': the class must be a string, or null to clear it"
                    : $"attribute '{TextRules.Sanitize(name)}': the class must be a string");
            }
            var value = SafeString(ref reader);
            if (value is null || !TextRules.IsValid(value, TextRules.MaxNameLength))
                return new DecodeError(ReasonCode.SchemaViolation,
                    $"attribute '{TextRules.Sanitize(name)}': the class is empty, longer than {TextRules.MaxNameLength} characters, or has control characters");
            result.Add(name, value);
        }
        attributes = result;
        return null;
    }

    private static DecodeError? ReadText(ref Utf8JsonReader reader, int maxLength, string member, ReasonCode reason, out string? text)
    {
        text = null;
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return new DecodeError(reason, $"{member} must be a string");
        }
        var value = SafeString(ref reader);
        if (value is null || !TextRules.IsValid(value, maxLength))
            return new DecodeError(reason, $"{member} must be 1-{maxLength} characters of valid Unicode without control characters");
        text = value;
        return null;
    }

    private static DecodeError? ReadVersion(ref Utf8JsonReader reader, out long version)
    {
        version = 0;
        if (reader.TokenType != JsonTokenType.Number)
        {
            reader.Skip();
            return new DecodeError(ReasonCode.SchemaViolation, "version must be an integer");
        }
        if (reader.TryGetInt64(out version))
            return version >= 0 ? null : new DecodeError(ReasonCode.SchemaViolation, "version must not be negative");
        // JSON Schema's "integer" includes 7.0 and 7e2; accept those too, as the schema does.
        if (reader.TryGetDecimal(out var d) && d == decimal.Truncate(d) && d >= 0 && d <= long.MaxValue)
        {
            version = (long)d;
            return null;
        }
        return reader.TryGetDouble(out var x) && x < 0
            ? new DecodeError(ReasonCode.SchemaViolation, "version must not be negative")
            : new DecodeError(ReasonCode.SchemaViolation, "version must be an integer in 0..9223372036854775807");
    }

    private static DecodeError? ReadTimestamp(ref Utf8JsonReader reader, string member, out DateTimeOffset time)
    {
        time = default;
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return new DecodeError(ReasonCode.SchemaViolation, $"{member} must be an RFC 3339 string");
        }
        var raw = reader.HasValueSequence ? MaxStackChars + 1 : reader.ValueSpan.Length;
        if (raw <= MaxStackChars)
        {
            Span<char> buffer = stackalloc char[MaxStackChars];
            try
            {
                var n = reader.CopyString(buffer);
                if (Rfc3339.TryParse(buffer[..n], out time))
                    return null;
            }
            catch (InvalidOperationException)
            {
                // invalid UTF-16 escape: not a timestamp
            }
        }
        return new DecodeError(ReasonCode.SchemaViolation, $"{member} must be an RFC 3339 date-time with offset, e.g. 2025-01-31T12:00:00Z");
    }

    /// <summary>
    /// Whether the current name or string is <paramref name="text"/>. Unescaped values (all that our encoders
    /// write) compare bytes directly; an escape that is not valid Unicode (a lone surrogate) matches nothing.
    /// </summary>
    private static bool Is(ref Utf8JsonReader reader, ReadOnlySpan<byte> text)
    {
        if (!reader.ValueIsEscaped)
            return reader.ValueSpan.SequenceEqual(text);
        try
        {
            return reader.ValueTextEquals(text);
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>The string value, or null when it is not valid Unicode (e.g. an escaped lone surrogate).</summary>
    private static string? SafeString(ref Utf8JsonReader reader)
    {
        try
        {
            return reader.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    private static DecodeResult Build(Kind kind, string eventId, string userId, long version, DateTimeOffset eventTime, PayloadParts p)
    {
        if (kind == Kind.EmbeddingUpdate)
        {
            // ReadAttributes(allowNull: false) let no null in, so the dictionary is one of non-null strings; the
            // cast through object only drops the nullable annotation (same runtime type).
            var attributes = p.Attributes is null ? null : (IReadOnlyDictionary<string, string>)(object)p.Attributes;
            return DecodeResult.Success(new EmbeddingUpdate(eventId, userId, version, eventTime, p.ModelVersion!, p.Embedding!, attributes));
        }
        return DecodeResult.Success(new PrivacyRequest(eventId, userId, version, eventTime, p.Type!.Value, p.Attributes));
    }

    private static void SkipToEndOfObject(ref Utf8JsonReader reader, int depth)
    {
        while (!(reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == depth))
        {
            if (!reader.Read())
                return;
        }
    }

    /// <summary>Reads to the end so that a syntax error after a semantic defect still wins.</summary>
    private static void Drain(ref Utf8JsonReader reader)
    {
        while (reader.Read())
        {
        }
    }

    /// <summary>True when the text has NaN, Infinity or -Infinity where a value would start (Python's json.dumps output).</summary>
    internal static bool HasBareNonFiniteLiteral(ReadOnlySpan<byte> json)
    {
        var inString = false;
        var escaped = false;
        var previous = (byte)0; // last significant byte outside strings
        for (var i = 0; i < json.Length; i++)
        {
            var b = json[i];
            if (inString)
            {
                if (escaped) escaped = false;
                else if (b == '\\') escaped = true;
                else if (b == '"') { inString = false; previous = b; }
                continue;
            }
            switch (b)
            {
                case (byte)'"':
                    inString = true;
                    break;
                case (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n':
                    break;
                case (byte)'N' or (byte)'I' when previous is (byte)'[' or (byte)',' or (byte)':' or (byte)'-':
                    var rest = json[i..];
                    if (rest.StartsWith("NaN"u8) || rest.StartsWith("Infinity"u8))
                        return true;
                    previous = b;
                    break;
                default:
                    previous = b;
                    break;
            }
        }
        return false;
    }
}
