
namespace AttrCloak.Streaming.Contracts.Tests;

public sealed class AttributeCatalogTests
{
    private static readonly AttributeCatalog Catalog = ContractSamples.Catalog;

    [Fact]
    public void Known_attributes_and_classes_pass_and_null_clears()
    {
        Catalog.Validate(new Dictionary<string, string?> { ["gender"] = "male", ["age"] = null }).ShouldBeNull();
        Catalog.Validate((IReadOnlyDictionary<string, string?>?)null).ShouldBeNull();
        Catalog.Validate(ContractSamples.Update()).ShouldBeNull();
        Catalog.Validate(ContractSamples.Request(PrivacyRequestType.UpdateAttributes)).ShouldBeNull();
        Catalog.Validate(ContractSamples.Request(PrivacyRequestType.Forget)).ShouldBeNull();
    }

    [Fact]
    public void Unknown_attribute_and_class_are_reported()
    {
        Catalog.Validate(new Dictionary<string, string?> { ["income"] = "high" })!.Reason.ShouldBe(ReasonCode.UnknownAttribute);
        Catalog.Validate(new Dictionary<string, string?> { ["Gender"] = "male" })!.Reason.ShouldBe(ReasonCode.UnknownAttribute);
        Catalog.Validate(new Dictionary<string, string?> { ["gender"] = "Male" })!.Reason.ShouldBe(ReasonCode.UnknownClass);
        Catalog.Validate(ContractSamples.Update() with { Attributes = new Dictionary<string, string> { ["age"] = "99" } })!.Reason.ShouldBe(ReasonCode.UnknownClass);
    }

    [Fact]
    public void Class_indices_follow_configuration_order()
    {
        Catalog.AttributeNames.ShouldBe(["gender", "age"]);
        Catalog.TryGetClassIndex("age", "25_34", out var index).ShouldBeTrue();
        index.ShouldBe(2);
        Catalog.TryGetClassIndex("age", "nope", out _).ShouldBeFalse();
        Catalog.TryGetClassIndex("nope", "25_34", out _).ShouldBeFalse();
        Catalog.ClassesOf("gender").ShouldBe(["female", "male"]);
        Catalog.Contains("gender").ShouldBeTrue();
    }

    [Fact]
    public void Bad_configurations_are_refused()
    {
        Should.Throw<ArgumentException>(() => new AttributeCatalog(new Dictionary<string, string[]>()));
        Should.Throw<ArgumentException>(() => new AttributeCatalog(new Dictionary<string, string[]> { ["gender"] = ["only"] }));
        Should.Throw<ArgumentException>(() => new AttributeCatalog(new Dictionary<string, string[]> { ["gender"] = ["a", "a"] }));
        Should.Throw<ArgumentException>(() => new AttributeCatalog(new Dictionary<string, string[]> { [""] = ["a", "b"] }));
        Should.Throw<ArgumentException>(() => new AttributeCatalog(new Dictionary<string, string[]> { ["g"] = ["a", "b\n"] }));
    }
}
