using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;
using AttrCloak.Streaming.Contracts.Tests.Support;

namespace AttrCloak.Streaming.Contracts.Tests;

/// <summary>
/// A fixed number of random and mutated inputs (fixed seeds, so a failure reproduces): the decoders never
/// fault, and on JSON the decoder and the schema files agree on what is acceptable. For a longer exploratory
/// run set ATTRCLOAK_FUZZ_SEED and ATTRCLOAK_FUZZ_ITERATIONS; CI keeps the fixed defaults.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    private static readonly int Iterations = int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : 20_000;
    private static readonly int? SeedOverride = int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_FUZZ_SEED"), out var s) ? s : null;
    private static readonly HashSet<ReasonCode> BeyondSchema = [ReasonCode.WrongDimension, ReasonCode.UnknownAttribute, ReasonCode.UnknownClass];

    private static readonly string[] Tokens =
    [
        "NaN", "-Infinity", "null", "true", "{", "}", "[", "]", "\"", ",", ":", "1e999", "-0", "0.1", "9223372036854775808",
        "\\u0000", "\\ud800", "\\\"", "\"schema\":", "\"attrcloak.privacy_request.v1\"", "\"attributes\":{\"gender\":null}",
        "\"type\":\"forget\"", "\u00e9", "😀", "\u0085", "T", "Z", "+23:59", "2025-02-29", "  ", "\n",
    ];

    private static List<(byte[] Bytes, string? ContentType)> Seeds()
    {
        var seeds = new List<(byte[], string?)>();
        foreach (var (_, bytes) in ContractFiles.Valid())
            seeds.Add((bytes, null));
        foreach (var item in ContractFiles.Malformed())
            seeds.Add((item.Bytes, item.ContentType));
        var update = ContractSamples.Update(4);
        seeds.Add((EventCodec.Encode(update), ContentTypes.Json));
        seeds.Add((EventCodec.Encode(update, binary: true), ContentTypes.EmbeddingBinary));
        seeds.Add((EventCodec.Encode(update with { Attributes = null }, binary: true), ContentTypes.EmbeddingBinary));
        foreach (var type in Enum.GetValues<PrivacyRequestType>())
            seeds.Add((EventCodec.Encode(ContractSamples.Request(type)), null));
        return seeds;
    }

    private static byte[] Mutate(byte[] seed, Random rng)
    {
        var data = new List<byte>(seed);
        var mutations = rng.Next(1, 5);
        for (var m = 0; m < mutations; m++)
        {
            var at = data.Count == 0 ? 0 : rng.Next(data.Count);
            switch (rng.Next(7))
            {
                case 0 when data.Count > 0:
                    data[at] ^= (byte)(1 << rng.Next(8));
                    break;
                case 1 when data.Count > 0:
                    data[at] = (byte)rng.Next(256);
                    break;
                case 2:
                    data.Insert(at, (byte)rng.Next(256));
                    break;
                case 3 when data.Count > 0:
                    data.RemoveRange(at, Math.Min(data.Count - at, rng.Next(1, 16)));
                    break;
                case 4:
                    data.RemoveRange(at, data.Count - at);
                    break;
                case 5 when data.Count > 0:
                    var length = Math.Min(data.Count - at, rng.Next(1, 32));
                    data.InsertRange(rng.Next(data.Count), data.GetRange(at, length));
                    break;
                default:
                    data.InsertRange(at, Encoding.UTF8.GetBytes(Tokens[rng.Next(Tokens.Length)]));
                    break;
            }
        }
        return [.. data];
    }

    /// <summary>Interesting member values: each is valid somewhere and invalid elsewhere.</summary>
    private static readonly string[] Values =
    [
        "null", "true", "0", "-1", "7", "7.0", "7.5", "1e3", "1e39", "-1e400", "9223372036854775807", "9223372036854775808",
        "0.1", "-0", "3.4028235e38", "\"\"", "\"x\"", "\"NaN\"", "\"Infinity\"", "\"user-42\"", "\"user\\n42\"", "\"a\\u0085\"",
        "\"ユーザー😀\"", "\"2025-01-31T12:00:00Z\"", "\"2025-01-31t12:00:00.123456789+23:59\"", "\"2025-01-31T12:00:00\"",
        "\"2016-12-31T23:59:60Z\"", "\"2025-02-29T00:00:00Z\"", "\"0001-01-01T00:00:00Z\"", "\"opt_out\"", "\"forget\"", "\"update_attributes\"",
        "\"delete\"", "\"female\"", "\"male\"", "\"25_34\"", "\"gender\"", "\"attrcloak.embedding_update.v1\"",
        "\"attrcloak.privacy_request.v1\"", "\"attrcloak.embedding_update.v2\"", "[]", "[0.1,0.2,0.3,0.4]", "[0.1,0.2,0.3]",
        "[0.1,\"NaN\",0.3,0.4]", "{}", "{\"gender\":\"male\"}", "{\"gender\":null}", "{\"age\":\"ninety\"}", "{\"income\":\"high\"}",
        "\"" + new string('u', 128) + "\"", "\"" + new string('u', 129) + "\"", "\"" + new string('m', 65) + "\"",
    ];

    private static readonly string[] Names =
        ["schema", "event_id", "user_id", "version", "event_time", "payload", "model_version", "embedding", "attributes", "type", "gender", "age", "extra", ""];

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A structural mutation of a valid event: it stays JSON, so the schemas have something to say.</summary>
    private static byte[] MutateStructure(byte[] seed, Random rng)
    {
        var root = JsonNode.Parse(seed)!;
        var mutations = rng.Next(1, 3);
        for (var m = 0; m < mutations; m++)
        {
            var nodes = new List<JsonNode>();
            Collect(root, nodes);
            var node = nodes[rng.Next(nodes.Count)];
            var value = JsonNode.Parse(Values[rng.Next(Values.Length)]);
            switch (node.Parent, rng.Next(4))
            {
                case (JsonObject parent, 0):
                    parent.Remove(node.GetPropertyName());
                    break;
                case (JsonObject parent, 1):
                    parent[Names[rng.Next(Names.Length)]] = value;
                    break;
                case (JsonArray array, 0):
                    array.RemoveAt(node.GetElementIndex());
                    break;
                case (JsonArray array, 1):
                    array.Add(value);
                    break;
                case (JsonObject parent, _):
                    parent[node.GetPropertyName()] = value;
                    break;
                case (JsonArray array, _):
                    array[node.GetElementIndex()] = value;
                    break;
            }
        }
        return Encoding.UTF8.GetBytes(root.ToJsonString(Relaxed));
    }

    private static void Collect(JsonNode node, List<JsonNode> into)
    {
        if (node.Parent is not null)
            into.Add(node);
        if (node is JsonObject o)
        {
            foreach (var (_, child) in o)
            {
                if (child is not null)
                    Collect(child, into);
            }
        }
        else if (node is JsonArray a)
        {
            foreach (var child in a)
            {
                if (child is not null)
                    Collect(child, into);
            }
        }
    }

    private static byte[] RandomBytes(Random rng)
    {
        var bytes = new byte[rng.Next(0, 300)];
        if (rng.Next(2) == 0)
        {
            rng.NextBytes(bytes);
            return bytes;
        }
        const string alphabet = "{}[]\",:0123456789.eE+-tfnrulsa \\_";
        for (var i = 0; i < bytes.Length; i++)
            bytes[i] = (byte)alphabet[rng.Next(alphabet.Length)];
        return bytes;
    }

    [Fact]
    public void Inbound_decoder_never_faults_and_agrees_with_the_schemas()
    {
        var rng = new Random(SeedOverride ?? 20250131);
        var seeds = Seeds();
        var valid = ContractFiles.Valid().Select(v => v.Bytes).ToList();
        var (limits, catalog) = ContractFiles.CorpusSettings();
        int accepted = 0, comparedWithSchema = 0;
        var reasons = new Dictionary<ReasonCode, int>();

        for (var i = 0; i < Iterations; i++)
        {
            byte[] input;
            string? contentType;
            var kind = rng.Next(10);
            if (kind < 2)
            {
                input = RandomBytes(rng);
                contentType = rng.Next(3) == 0 ? ContentTypes.EmbeddingBinary : null;
            }
            else if (kind < 6)
            {
                input = MutateStructure(valid[rng.Next(valid.Count)], rng);
                contentType = null;
            }
            else
            {
                var (seed, seedType) = seeds[rng.Next(seeds.Count)];
                input = Mutate(seed, rng);
                contentType = rng.Next(20) == 0 ? "application/json; charset=utf-8" : seedType;
            }

            var result = EventCodec.TryDecode(input, contentType, limits, catalog);
            var context = $"iteration {i}, content-type {contentType ?? "none"}, input {Convert.ToBase64String(input)}";
            if (!result.IsSuccess)
            {
                result.Error.Reason.ShouldNotBe(ReasonCode.InternalError, $"{context}: {result.Error.Message}");
                reasons[result.Error.Reason] = reasons.GetValueOrDefault(result.Error.Reason) + 1;
            }
            else
            {
                accepted++;
                // Whatever was accepted re-encodes to an event that decodes to the same encoding.
                var again = Reencode(result.Event);
                var second = EventCodec.TryDecode(again, null, limits, catalog);
                second.IsSuccess.ShouldBeTrue($"{context}: re-encoded event rejected: {second}");
                Reencode(second.Event).ShouldBe(again, context);
            }

            if (contentType is null && IsStrictJson(input))
            {
                comparedWithSchema++;
                var schemaErrors = SchemaValidator.InboundErrors(input);
                if (result.IsSuccess)
                    schemaErrors.ShouldBeNull($"{context}: decoder accepted, schema rejected");
                else if (schemaErrors is null)
                    BeyondSchema.ShouldContain(result.Error.Reason, $"{context}: schema accepted, decoder said {result.Error}");
            }
        }

        output.WriteLine($"seed {SeedOverride ?? 20250131}, {Iterations} inputs: {accepted} accepted, {comparedWithSchema} compared with the schemas; rejections: "
                         + string.Join(", ", reasons.OrderByDescending(r => r.Value).Select(r => $"{r.Key.Label()} {r.Value}")));
        accepted.ShouldBeGreaterThan(0);
        comparedWithSchema.ShouldBeGreaterThan(Iterations / 4);
    }

    [Fact]
    public void Output_decoders_never_fault()
    {
        var rng = new Random(SeedOverride ?? 7);
        // A dead-letter record of every reason, so that each label (also the worker-decided ones) is mutated.
        byte[][] seeds =
        [
            EventCodec.Encode(ContractSamples.Cloaked(4)),
            EventCodec.Encode(ContractSamples.Cloaked(4) with { ProtectedAttributes = [] }),
            .. ReasonCodes.All.Select(r => EventCodec.Encode(ContractSamples.DeadLetter() with { Reason = r })),
        ];
        for (var i = 0; i < Iterations / 4; i++)
        {
            var input = rng.Next(5) == 0 ? RandomBytes(rng) : Mutate(seeds[rng.Next(seeds.Length)], rng);
            var context = $"iteration {i}, input {Convert.ToBase64String(input)}";

            if (EventCodec.TryDecodeCloaked(input, out _, out var error))
                SchemaValidator.Errors(SchemaValidator.CloakedEmbedding, input).ShouldBeNull(context);
            else
                error.Reason.ShouldNotBe(ReasonCode.InternalError, context);

            if (EventCodec.TryDecodeDeadLetter(input, out _, out error))
                SchemaValidator.Errors(SchemaValidator.DeadLetter, input).ShouldBeNull(context);
            else
                error.Reason.ShouldNotBe(ReasonCode.InternalError, context);
        }
    }

    /// <summary>Content types a producer may send: the two known ones, their variants, and junk.</summary>
    private static string? ContentTypeOf(Random rng) => rng.Next(12) switch
    {
        0 or 1 or 2 => null,
        3 => ContentTypes.Json,
        4 => ContentTypes.EmbeddingBinary,
        5 => "application/json; charset=utf-8",
        6 => ContentTypes.EmbeddingBinary.ToUpperInvariant() + " ; x=\"y\"",
        7 => "text/plain",
        8 => "",
        9 => new string('a', rng.Next(0, 5000)),
        10 => Encoding.UTF8.GetString(RandomBytes(rng)), // what the worker makes of arbitrary header bytes
        _ => "application/json\u0000\n\u001b[31m",
    };

    /// <summary>Kafka keys: none, the right one, one byte off, random bytes, and keys longer than the stack buffer.</summary>
    private static byte[] KeyFor(string? userId, Random rng)
    {
        var right = userId is null ? [] : Encoding.UTF8.GetBytes(userId);
        switch (rng.Next(6))
        {
            case 0: return [];
            case 1: return right;
            case 2 when right.Length > 0:
                var off = (byte[])right.Clone();
                off[rng.Next(off.Length)] ^= 1;
                return off;
            case 3:
                var big = new byte[rng.Next(500, 2000)];
                rng.NextBytes(big);
                return big;
            default:
                return RandomBytes(rng);
        }
    }

    /// <summary>
    /// Every entry point the worker feeds with consumed bytes, as it calls them: both <see cref="EventCodec.TryDecode(ReadOnlySpan{byte}, string?, ContractLimits)"/>
    /// overloads under any content type (also the binary decoder with JSON and the JSON decoder with binary), inputs
    /// around the size limit, and <see cref="EventCodec.KeyMatches"/> with any key: no exception, no internal error.
    /// </summary>
    [Fact]
    public void Every_worker_entry_point_takes_any_bytes_any_content_type_and_any_key_without_a_fault()
    {
        var rng = new Random(SeedOverride ?? 424242);
        var seeds = Seeds();
        var (limits, catalog) = ContractFiles.CorpusSettings();
        var outcomes = new Dictionary<string, int>();
        for (var i = 0; i < Iterations / 2; i++)
        {
            byte[] input = rng.Next(8) switch
            {
                0 => RandomBytes(rng),
                1 => Enumerable.Repeat((byte)' ', limits.MaxBytes - 2 + rng.Next(5)).ToArray(), // at the limit, either side
                2 => [.. seeds[rng.Next(seeds.Count)].Bytes, .. new byte[rng.Next(0, 1200)]],
                _ => Mutate(seeds[rng.Next(seeds.Count)].Bytes, rng),
            };
            var contentType = ContentTypeOf(rng);
            var context = $"iteration {i}, content-type {(contentType is null ? "none" : Convert.ToBase64String(Encoding.UTF8.GetBytes(contentType)))}, input {Convert.ToBase64String(input)}";

            var plain = EventCodec.TryDecode(input, contentType, limits);
            var checkedResult = EventCodec.TryDecode(input, contentType, limits, catalog);
            foreach (var result in new[] { plain, checkedResult })
                if (!result.IsSuccess)
                {
                    result.Error.Reason.ShouldNotBe(ReasonCode.InternalError, $"{context}: {result.Error.Message}");
                    result.Error.Message.ShouldNotBeNullOrWhiteSpace(context);
                }
            // The catalog only adds checks: what it accepts, the plain decoder accepts.
            if (checkedResult.IsSuccess) plain.IsSuccess.ShouldBeTrue(context);
            var label = checkedResult.IsSuccess ? "accepted" : checkedResult.Error.Reason.Label();
            outcomes[label] = outcomes.GetValueOrDefault(label) + 1;

            var key = KeyFor(plain.IsSuccess ? plain.Event.UserId : null, rng);
            if (plain.IsSuccess)
                EventCodec.KeyMatches(key, plain.Event.UserId).ShouldBe(key.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(plain.Event.UserId)), context);
        }
        output.WriteLine($"{Iterations / 2} inputs: " + string.Join(", ", outcomes.OrderByDescending(o => o.Value).Select(o => $"{o.Key} {o.Value}")));
        outcomes.GetValueOrDefault("accepted").ShouldBeGreaterThan(0);
        outcomes.Keys.ShouldContain(ReasonCode.Oversized.Label());
        outcomes.Keys.ShouldContain(ReasonCode.UnsupportedContentType.Label());
    }

    private static byte[] Reencode(InboundEvent? e) => e switch
    {
        EmbeddingUpdate u => EventCodec.Encode(u),
        PrivacyRequest r => EventCodec.Encode(r),
        _ => throw new InvalidOperationException(),
    };

    private static bool IsStrictJson(byte[] bytes)
    {
        if (bytes.Length == 0 || bytes.Length > 1024 || !Utf8.IsValid(bytes))
            return false;
        try
        {
            using var _ = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowDuplicateProperties = false });
            return true;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: the duplicate-name check cannot unescape a lone surrogate in a name.
            return false;
        }
    }
}
