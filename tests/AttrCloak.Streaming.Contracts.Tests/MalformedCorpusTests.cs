using System.Text.Json;
using System.Text.Unicode;
using AttrCloak.Streaming.Contracts.Tests.Support;

namespace AttrCloak.Streaming.Contracts.Tests;

/// <summary>
/// Corpus/malformed: every file is rejected with the reason its name starts with, and the decoder agrees with
/// the schema files about which defects are the schema's business.
/// </summary>
public sealed class MalformedCorpusTests
{
    /// <summary>Reasons a JSON Schema can see: the schema files must reject these too.</summary>
    private static readonly HashSet<ReasonCode> SchemaLevel =
    [
        ReasonCode.SchemaViolation, ReasonCode.UnknownSchema, ReasonCode.BadUserId, ReasonCode.UnknownRequestType, ReasonCode.NonFiniteValue,
    ];

    /// <summary>Deployment-specific reasons beyond any schema: the schema files must accept these events.</summary>
    private static readonly HashSet<ReasonCode> BeyondSchema = [ReasonCode.WrongDimension, ReasonCode.UnknownAttribute, ReasonCode.UnknownClass];

    public static TheoryData<string> Items() => [.. ContractFiles.Malformed().Select(i => i.FileName)];

    private static ContractFiles.CorpusItem Item(string fileName) => ContractFiles.Malformed().Single(i => i.FileName == fileName);

    [Fact]
    public void Corpus_has_at_least_fifty_items_covering_every_input_reason()
    {
        var items = ContractFiles.Malformed();
        items.Count.ShouldBeGreaterThanOrEqualTo(50);
        var covered = items.Select(i => i.Expected).ToHashSet();
        // Reasons the worker decides after decoding (key, state, versions, generations, topic, faults) have no file here
        // (versions: Corpus/versions, topics: Corpus/topics, both through the worker).
        foreach (var reason in ReasonCodes.All.Except([ReasonCode.KeyMismatch, ReasonCode.InternalError, ReasonCode.UnknownUser, ReasonCode.StoreRejected, ReasonCode.StaleVersion, ReasonCode.VersionConflict, ReasonCode.GenerationLimit, ReasonCode.WrongTopic]))
            covered.ShouldContain(reason);
    }

    [Theory]
    [MemberData(nameof(Items))]
    public void Rejected_with_the_expected_reason(string fileName)
    {
        var item = Item(fileName);
        var (limits, catalog) = ContractFiles.CorpusSettings();

        var result = EventCodec.TryDecode(item.Bytes, item.ContentType, limits, catalog);

        result.IsSuccess.ShouldBeFalse($"{fileName} was accepted");
        result.Error.Reason.ShouldBe(item.Expected, $"{fileName}: {result.Error.Message}");
        result.Error.Message.ShouldNotBeNullOrWhiteSpace();
    }

    [Theory]
    [MemberData(nameof(Items))]
    public void Schema_files_agree(string fileName)
    {
        var item = Item(fileName);
        if (item.ContentType is not null)
            return; // binary and text/plain items have no JSON Schema to compare with

        if (SchemaLevel.Contains(item.Expected))
            SchemaValidator.InboundErrors(item.Bytes).ShouldNotBeNull($"{fileName}: the schemas accept what the decoder rejects as {item.Expected}");
        else if (BeyondSchema.Contains(item.Expected))
            SchemaValidator.InboundErrors(item.Bytes).ShouldBeNull($"{fileName}: {item.Expected} should be the only defect");
        else if (item.Expected == ReasonCode.MalformedJson)
            IsStrictJson(item.Bytes).ShouldBeFalse($"{fileName}: System.Text.Json reads it");
    }

    [Theory]
    [MemberData(nameof(Items))]
    public void Messages_never_echo_the_user_id_or_an_attribute_value(string fileName)
    {
        var item = Item(fileName);
        var (limits, catalog) = ContractFiles.CorpusSettings();

        var message = EventCodec.TryDecode(item.Bytes, item.ContentType, limits, catalog).Error!.Message;

        foreach (var secret in new[] { "user-42", "female", "prefer-not-to-say-secret-value", "Female", "robot", "ninety", "high", "user-43" })
            message.ShouldNotContain(secret, Case.Sensitive, $"{fileName}: {message}");
    }

    private static bool IsStrictJson(byte[] bytes)
    {
        if (!Utf8.IsValid(bytes))
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
