using Xunit;

namespace AttrCloak.Testing;

/// <summary>
/// Opt-in for slow tests that are not part of the CI run (real-data training, figure printers). They run when the
/// environment variable <see cref="Variable"/> is "1" and are otherwise reported as skipped WITH the reason.
/// Pure benchmarks use <c>[Fact(Explicit = true)]</c> instead and say so in their display name.
/// </summary>
public static class SlowTests
{
    public const string Variable = "ATTRCLOAK_SLOW";

    /// <summary>True when <see cref="Variable"/> is "1".</summary>
    public static bool Enabled => Environment.GetEnvironmentVariable(Variable) == "1";

    /// <summary>Skips the calling test visibly unless slow tests are enabled.</summary>
    public static void Require(string what) =>
        Assert.SkipUnless(Enabled, $"{what}: set {Variable}=1 to run it");
}
