using AttrCloak.Core.IO;

namespace AttrCloak.Cli.Tests;

/// <summary>The documented step-by-step workflow, through the real command line, on a small synthetic data set.</summary>
public sealed class WorkflowTests
{
    [Fact]
    public async Task Train_cloak_audit_evaluate_and_export()
    {
        using var tmp = new TempDirectory();
        var model = tmp["model"];
        var data = new[] { "--dataset", "synthetic", "--synthetic-users", "300" };

        var (trained, trainOut) = await CliRunner.RunAsync([.. new[] { "train", "--out", model, "--epochs", "15" }, .. data]);
        trained.ShouldBe(0, trainOut);
        File.Exists(Path.Combine(model, "users.npy")).ShouldBeTrue();
        File.Exists(Path.Combine(model, "dataset.json")).ShouldBeTrue();

        var cloaked = tmp["df"];
        var export = tmp["export"];
        var plots = tmp["plots"];
        var (cloakCode, cloakOut) = await CliRunner.RunAsync("cloak", "--model", model, "--mode", "df",
            "--attributes", "gender,age", "--out", cloaked, "--export", export, "--plots", plots);
        cloakCode.ShouldBe(0, cloakOut);
        cloakOut.ShouldContain("AttrCloak-DF");
        var users = NpyFile.Read(Path.Combine(cloaked, "users.npy"));
        users.Rows.ShouldBe(300);
        users.Cols.ShouldBe(64);
        File.Exists(Path.Combine(cloaked, "cloak.json")).ShouldBeTrue();

        // The export is what outside attackers consume: header, one row per user index, both matrices.
        var csv = File.ReadAllLines(Path.Combine(export, "users.csv"));
        csv[0].ShouldBe("user_index,user_id,gender,age,occupation");
        csv.Length.ShouldBe(301);
        NpyFile.Read(Path.Combine(export, "embeddings_original.npy")).Rows.ShouldBe(300);
        NpyFile.Read(Path.Combine(export, "embeddings_cloaked.npy")).Values.ShouldBe(users.Values);
        Directory.GetFiles(plots, "*.png").Length.ShouldBeGreaterThanOrEqualTo(2);

        var (auditCode, auditOut) = await CliRunner.RunAsync("audit", "--model", model, "--embeddings",
            Path.Combine(cloaked, "users.npy"), "--attackers", "lr,lr+cal", "--attributes", "gender");
        auditCode.ShouldBe(0, auditOut);
        auditOut.ShouldContain("worst");

        var (evalCode, evalOut) = await CliRunner.RunAsync("evaluate", "--model", model, "--embeddings", Path.Combine(cloaked, "users.npy"));
        evalCode.ShouldBe(0, evalOut);
        evalOut.ShouldContain("NDCG@10");
    }
}
