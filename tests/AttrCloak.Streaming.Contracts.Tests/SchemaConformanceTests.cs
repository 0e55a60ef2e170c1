using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using AttrCloak.Streaming.Contracts.Tests.Support;

namespace AttrCloak.Streaming.Contracts.Tests;

/// <summary>Everything the codecs write validates against schemas/v1, and so does every valid example.</summary>
public sealed partial class SchemaConformanceTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(4096)]
    public void Encoded_embedding_updates_validate(int dimension)
    {
        SchemaValidator.Errors(SchemaValidator.EmbeddingUpdate, EventCodec.Encode(ContractSamples.Update(dimension))).ShouldBeNull();
        SchemaValidator.Errors(SchemaValidator.EmbeddingUpdate, EventCodec.Encode(ContractSamples.Update(dimension, attributes: false))).ShouldBeNull();
        SchemaValidator.Errors(SchemaValidator.Envelope, EventCodec.Encode(ContractSamples.Update(dimension))).ShouldBeNull();
    }

    [Fact]
    public void Encoded_embedding_update_with_awkward_values_validates()
    {
        var update = new EmbeddingUpdate("e\"\\/\u00e9", "ユーザー-😀 \u2028", 0, DateTimeOffset.MinValue, "m",
            [float.MaxValue, float.MinValue, float.Epsilon, -0f], new Dictionary<string, string> { ["gender"] = "fé\"male" });

        SchemaValidator.Errors(SchemaValidator.EmbeddingUpdate, EventCodec.Encode(update)).ShouldBeNull();
        var decoded = EventCodec.TryDecode(EventCodec.Encode(update), null, new ContractLimits(4)).Event.ShouldBeOfType<EmbeddingUpdate>();
        decoded.UserId.ShouldBe(update.UserId);
        decoded.EventId.ShouldBe(update.EventId);
        decoded.EventTime.ShouldBe(update.EventTime);
    }

    [Theory]
    [InlineData(PrivacyRequestType.OptOut)]
    [InlineData(PrivacyRequestType.Forget)]
    [InlineData(PrivacyRequestType.UpdateAttributes)]
    public void Encoded_privacy_requests_validate(PrivacyRequestType type)
    {
        var bytes = EventCodec.Encode(ContractSamples.Request(type));
        SchemaValidator.Errors(SchemaValidator.PrivacyRequest, bytes).ShouldBeNull();
        SchemaValidator.Errors(SchemaValidator.Envelope, bytes).ShouldBeNull();
    }

    [Fact]
    public void Encoded_cloaked_embeddings_validate()
    {
        SchemaValidator.Errors(SchemaValidator.CloakedEmbedding, EventCodec.Encode(ContractSamples.Cloaked())).ShouldBeNull();
        SchemaValidator.Errors(SchemaValidator.CloakedEmbedding, EventCodec.Encode(ContractSamples.Cloaked(1) with { ProtectedAttributes = [] })).ShouldBeNull();
    }

    [Fact]
    public void Encoded_dead_letters_validate_for_every_reason()
    {
        foreach (var reason in ReasonCodes.All)
            SchemaValidator.Errors(SchemaValidator.DeadLetter, EventCodec.Encode(ContractSamples.DeadLetter() with { Reason = reason })).ShouldBeNull(reason.ToString());
    }

    [Fact]
    public void Reason_labels_are_the_dead_letter_schema_enum()
    {
        using var schema = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(ContractFiles.SchemaDirectory, "dead_letter.schema.json")));
        var labels = schema.RootElement.GetProperty("properties").GetProperty("reason").GetProperty("enum")
            .EnumerateArray().Select(e => e.GetString()!).ToList();

        labels.ShouldBe(ReasonCodes.All.Select(r => r.Label()).ToList());
        foreach (var reason in ReasonCodes.All)
        {
            ReasonCodes.TryParseLabel(reason.Label(), out var parsed).ShouldBeTrue();
            parsed.ShouldBe(reason);
        }
    }

    [Fact]
    public void Valid_corpus_decodes_validates_and_round_trips()
    {
        var (limits, catalog) = ContractFiles.CorpusSettings();
        var valid = ContractFiles.Valid();
        valid.Count.ShouldBeGreaterThanOrEqualTo(6);
        foreach (var (name, bytes) in valid)
        {
            SchemaValidator.InboundErrors(bytes).ShouldBeNull(name);
            var result = EventCodec.TryDecode(bytes, null, limits, catalog);
            result.IsSuccess.ShouldBeTrue($"{name}: {result}");

            var again = result.Event switch
            {
                EmbeddingUpdate u => EventCodec.Encode(u),
                PrivacyRequest r => EventCodec.Encode(r),
                _ => throw new InvalidOperationException(),
            };
            SchemaValidator.InboundErrors(again).ShouldBeNull(name);
            var second = EventCodec.TryDecode(again, null, limits, catalog);
            second.IsSuccess.ShouldBeTrue(name);
            Encoding.UTF8.GetString(Reencode(second.Event)).ShouldBe(Encoding.UTF8.GetString(again), name);
        }
    }

    [Fact]
    public void Readme_kcat_examples_are_valid_events()
    {
        var readme = File.ReadAllText(Path.Combine(ContractFiles.RepositoryRoot, "schemas", "README.md"));
        var examples = KcatExample().Matches(readme).Select(m => m.Groups["json"].Value).ToList();
        examples.Count.ShouldBeGreaterThanOrEqualTo(3);

        var limits = new ContractLimits(4);
        foreach (var json in examples)
        {
            var bytes = Encoding.UTF8.GetBytes(json);
            SchemaValidator.InboundErrors(bytes).ShouldBeNull(json);
            var result = EventCodec.TryDecode(bytes, null, limits, ContractSamples.Catalog);
            result.IsSuccess.ShouldBeTrue($"{json}: {result}");
        }
    }

    [Fact]
    public void Readme_output_examples_are_valid()
    {
        var readme = File.ReadAllText(Path.Combine(ContractFiles.RepositoryRoot, "schemas", "README.md"));
        foreach (Match block in JsonBlock().Matches(readme))
        {
            var json = Encoding.UTF8.GetBytes(block.Groups["json"].Value);
            using var doc = JsonDocument.Parse(json);
            var schema = doc.RootElement.GetProperty("schema").GetString();
            if (schema == SchemaNames.CloakedEmbeddingV1)
            {
                SchemaValidator.Errors(SchemaValidator.CloakedEmbedding, json).ShouldBeNull();
                EventCodec.TryDecodeCloaked(json, out _, out var error).ShouldBeTrue(error?.ToString());
            }
            else
            {
                SchemaValidator.Errors(SchemaValidator.DeadLetter, json).ShouldBeNull();
                EventCodec.TryDecodeDeadLetter(json, out _, out var error).ShouldBeTrue(error?.ToString());
            }
        }
    }

    private static byte[] Reencode(InboundEvent? e) => e switch
    {
        EmbeddingUpdate u => EventCodec.Encode(u),
        PrivacyRequest r => EventCodec.Encode(r),
        _ => throw new InvalidOperationException(),
    };

    [GeneratedRegex(@"^echo '(?<json>\{.*\})' \| kcat -P ", RegexOptions.Multiline)]
    private static partial Regex KcatExample();

    [GeneratedRegex(@"```json\n(?<json>\{.*?\})\n```", RegexOptions.Singleline)]
    private static partial Regex JsonBlock();
}
