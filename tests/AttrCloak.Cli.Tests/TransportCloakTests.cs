using System.Text.Json;
using AttrCloak.Core.IO;

namespace AttrCloak.Cli.Tests;

/// <summary>`attrcloak cloak --mode ot` (AttrCloak-OT) through the real command line, on a small synthetic data set.</summary>
public sealed class TransportCloakTests
{
    [Fact]
    public async Task Ot_cloak_removes_the_gender_signal_and_the_target_loop_records_its_strengths()
    {
        using var tmp = new TempDirectory();
        var model = tmp["model"];
        var (trained, trainOut) = await CliRunner.RunAsync("train", "--out", model, "--epochs", "15",
            "--dataset", "synthetic", "--synthetic-users", "600");
        trained.ShouldBe(0, trainOut);

        // Full strength, no target: every class's Gaussian fit mapped onto the other fold's global one.
        var full = tmp["full"];
        var (code, output) = await CliRunner.RunAsync("cloak", "--model", model, "--mode", "ot", "--out", full, "--plots", tmp["plots"]);
        code.ShouldBe(0, output);
        output.ShouldContain("AttrCloak-OT");
        var cloaked = NpyFile.Read(Path.Combine(full, "users.npy"));
        var original = NpyFile.Read(Path.Combine(model, "users.npy"));
        cloaked.Rows.ShouldBe(original.Rows);
        cloaked.Values.ShouldNotBe(original.Values);
        using (var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(full, "cloak.json"))))
        {
            record.RootElement.GetProperty("method").GetString().ShouldBe("AttrCloak-OT");
            record.RootElement.GetProperty("attributeDeviationScales").GetProperty("gender").GetDouble().ShouldBe(1);
            record.RootElement.GetProperty("meanSquaredDisplacement").GetDouble().ShouldBeGreaterThan(0);
        }
        Directory.GetFiles(tmp["plots"], "*gender_distributions.png").Length.ShouldBe(1);

        var before = await GenderAdvantage(model, Path.Combine(model, "users.npy"), tmp["a0.json"]);
        var after = await GenderAdvantage(model, Path.Combine(full, "users.npy"), tmp["a1.json"]);
        before.ShouldBeGreaterThan(0.1, "the synthetic set's gender must leak to begin with");
        after.ShouldBeLessThan(before / 2, $"gender |adv| {before:F3} -> {after:F3}");

        // Null targets with the classes' own covariances (the synth-2000 finding, docs/evaluation.md): recorded as such.
        var nullTargets = tmp["null"];
        (code, output) = await CliRunner.RunAsync("cloak", "--model", model, "--mode", "ot", "--out", nullTargets, "--target", "null", "--covariance-prior", "0");
        code.ShouldBe(0, output);
        using (var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(nullTargets, "cloak.json"))))
        {
            record.RootElement.GetProperty("targets").GetString().ShouldBe("null");
            record.RootElement.GetProperty("covariancePriorUsers").GetDouble().ShouldBe(0);
        }
        NpyFile.Read(Path.Combine(nullTargets, "users.npy")).Values.ShouldNotBe(cloaked.Values);

        // With a privacy target: the loop's rounds and chosen strengths are recorded, every strength in 0..1.
        var targeted = tmp["targeted"];
        (code, output) = await CliRunner.RunAsync("cloak", "--model", model, "--mode", "ot", "--out", targeted,
            "--privacy-target", "0.05", "--utility-floor", "0.9", "--attributes", "gender,age");
        code.ShouldBe(0, output);
        output.ShouldContain("round 1");
        using (var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(targeted, "cloak.json"))))
        {
            var scales = record.RootElement.GetProperty("attributeDeviationScales");
            scales.EnumerateObject().Select(p => p.Name).ShouldBe(["gender", "age"]);
            foreach (var p in scales.EnumerateObject()) p.Value.GetDouble().ShouldBeInRange(0, 1);
            scales.GetProperty("gender").GetDouble().ShouldBeGreaterThan(0, "gender leaks at first, so the loop must raise it");
            record.RootElement.GetProperty("privacyTarget").GetProperty("Steps").GetArrayLength().ShouldBeGreaterThan(1);
        }
    }

    [Fact]
    public async Task Gradient_knobs_and_strengths_outside_0_to_1_are_refused_in_one_line()
    {
        using var tmp = new TempDirectory();
        var (code, output) = await CliRunner.RunAsync("cloak", "--model", tmp["m"], "--mode", "ot", "--out", tmp["o"], "--lr", "0.1", "--strata", "3");
        code.ShouldBe(2);
        output.ShouldContain("--lr, --strata tune the gradient cloaks");
        output.ShouldNotContain("   at ");

        (code, output) = await CliRunner.RunAsync("cloak", "--model", tmp["m"], "--mode", "ot", "--out", tmp["o"], "--strength", "1.5");
        code.ShouldBe(2);
        output.ShouldContain("--strength must be in 0..1");

        (code, output) = await CliRunner.RunAsync("cloak", "--model", tmp["m"], "--mode", "ot", "--out", tmp["o"], "--target", "empirical");
        code.ShouldBe(2);
        output.ShouldContain("expected global or null");

        (code, output) = await CliRunner.RunAsync("cloak", "--model", tmp["m"], "--mode", "df", "--out", tmp["o"], "--covariance-prior", "0");
        code.ShouldBe(2);
        output.ShouldContain("--covariance-prior tunes the Gaussian maps of --mode ot");

        (code, output) = await CliRunner.RunAsync("sweep", "--model", tmp["m"], "--mode", "ot");
        code.ShouldBe(2);
        output.ShouldContain("--mode ot is not available here");
    }

    private static async Task<double> GenderAdvantage(string model, string embeddings, string json)
    {
        var (code, output) = await CliRunner.RunAsync("audit", "--model", model, "--embeddings", embeddings,
            "--attributes", "gender", "--attackers", "lr", "--json", json);
        code.ShouldBe(0, output);
        using var audit = JsonDocument.Parse(File.ReadAllText(json));
        return audit.RootElement.GetProperty("Attributes")[0].GetProperty("MaxAbsAdvantage").GetDouble();
    }
}
