using Xunit;

namespace AttrCloak.Testing;

/// <summary>
/// Opt-in for slow tests that are not part of the CI run (real-data training, figure printers). They run when the
/// environment variable <see cref="Variable"/> is "1" and are otherwise reported as skipped WITH the reason.
/// Pure benchmarks and experiments (figures, no assertions) are not tests: they are the named runs of
/// src/AttrCloak.Tools.Experiments.
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
