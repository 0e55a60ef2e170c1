using System.Text;
using System.Text.Json;
using AttrCloak.Streaming.Contracts.Tests.Support;

namespace AttrCloak.Streaming.Contracts.Tests;

/// <summary>The served message carries no attribute value and no original embedding.</summary>
public sealed class PrivacyOfOutputTests
{
    [Fact]
    public void Cloaked_output_has_only_the_allowed_members()
    {
        using var doc = JsonDocument.Parse(EventCodec.Encode(ContractSamples.Cloaked()));

        doc.RootElement.EnumerateObject().Select(p => p.Name).ShouldBe(
            ["schema", "user_id", "version", "model_version", "embedding", "protected_attributes", "cloaked_at"]);
    }

    [Fact]
    public void Cloaked_output_never_contains_an_attribute_value_or_original_field_names()
    {
        var update = ContractSamples.Update();
        var cloaked = ContractSamples.Cloaked() with { Version = update.Version, ModelVersion = update.ModelVersion };

        var json = Encoding.UTF8.GetString(EventCodec.Encode(cloaked));

        foreach (var attribute in ContractSamples.Catalog.AttributeNames)
        {
            foreach (var value in ContractSamples.Catalog.ClassesOf(attribute))
                json.ShouldNotContain($"\"{value}\"");
        }
        foreach (var forbidden in new[] { "\"original", "\"attributes\"", "\"raw", "\"embedding_original\"", "\"source_embedding\"", "\"class" })
            json.ShouldNotContain(forbidden);
        // And no number of the original embedding's text, for a cloaked vector that differs from it.
        var original = Encoding.UTF8.GetString(EventCodec.Encode(update));
        var originalNumbers = original[(original.IndexOf("\"embedding\":[", StringComparison.Ordinal) + 13)..];
        originalNumbers = originalNumbers[..originalNumbers.IndexOf(']')];
        json.ShouldNotContain(originalNumbers);
    }

    [Fact]
    public void Schema_rejects_an_output_that_leaks()
    {
        var json = Encoding.UTF8.GetString(EventCodec.Encode(ContractSamples.Cloaked()));
        foreach (var leak in new[] { ",\"attributes\":{\"gender\":\"female\"}", ",\"original_embedding\":[1,2]", ",\"gender\":\"female\"" })
        {
            var leaking = json[..^1] + leak + "}";
            SchemaValidator.Errors(SchemaValidator.CloakedEmbedding, Encoding.UTF8.GetBytes(leaking)).ShouldNotBeNull(leak);
            EventCodec.TryDecodeCloaked(Encoding.UTF8.GetBytes(leaking), out _, out var error).ShouldBeFalse(leak);
            error.Reason.ShouldBe(ReasonCode.SchemaViolation);
        }
    }

    [Fact]
    public void Protected_attributes_hold_names_not_values()
    {
        var bytes = EventCodec.Encode(ContractSamples.Cloaked() with { ProtectedAttributes = ["gender", "age"] });
        using var doc = JsonDocument.Parse(bytes);

        doc.RootElement.GetProperty("protected_attributes").EnumerateArray().Select(e => e.GetString()).ShouldBe(["gender", "age"]);
    }

    [Fact]
    public void Unknown_class_error_names_the_attribute_but_not_the_value()
    {
        var error = ContractSamples.Catalog.Validate(new Dictionary<string, string?> { ["gender"] = "very-private-value" });

        error.ShouldNotBeNull().Reason.ShouldBe(ReasonCode.UnknownClass);
        error.Message.ShouldContain("gender");
        error.Message.ShouldNotContain("very-private-value");
    }
}
