namespace AttrCloak.Cli.Tests;

/// <summary>`attrcloak bench cloak` as a user runs it: both modes timed and tabled.</summary>
public sealed class BenchCloakCommandTests
{
    [Fact]
    public async Task Bench_cloak_tables_both_modes_with_the_privacy_target_presets()
    {
        // The presets end with the exact class-mean projection and DF runs no gradient step: the table once
        // dereferenced stage timings that such a run does not have and crashed after the runs.
        using var tmp = new TempDirectory();
        var model = tmp["model"];
        var (trained, _) = await CliRunner.RunAsync("train", "--dataset", "synthetic", "--synthetic-users", "120", "--epochs", "2", "--out", model);
        trained.ShouldBe(0);
        var (code, output) = await CliRunner.RunAsync("bench", "cloak", "--model", model, "--runs", "1");
        code.ShouldBe(0, output);
        output.ShouldContain("AttrCloak-DF");
        output.ShouldContain("AttrCloak-DD");
        output.ShouldNotContain("internal error");
    }
}
