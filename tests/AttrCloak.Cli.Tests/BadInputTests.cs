namespace AttrCloak.Cli.Tests;

/// <summary>Wrong input gets one clear line and exit code 2, never a stack trace.</summary>
public sealed class BadInputTests
{
    private static void ShouldBeOneClearLine(string output, string expected)
    {
        output.ShouldContain(expected);
        output.ShouldNotContain("   at ");          // no stack frames
        output.ShouldNotContain("Exception");       // no exception type names
        var errorLines = output.Split('\n').Where(l => l.Contains("error:")).ToArray();
        errorLines.Length.ShouldBe(1, output);
        errorLines[0].ShouldContain(expected);
    }

    [Fact]
    public async Task Help_lists_every_command()
    {
        var (code, output) = await CliRunner.RunAsync("--help");
        code.ShouldBe(0);
        foreach (var command in new[] { "train", "cloak", "audit", "evaluate", "reproduce" }) output.ShouldContain(command);
    }

    [Fact]
    public async Task Unknown_dataset_name_is_one_line()
    {
        var (code, output) = await CliRunner.RunAsync("reproduce", "--dataset", "ml-10m", "--seeds", "1");
        code.ShouldBe(2);
        ShouldBeOneClearLine(output, "ml-10m");
    }

    [Fact]
    public async Task Missing_data_folder_names_the_path()
    {
        using var tmp = new TempDirectory();
        var missing = tmp["nowhere"];
        var (code, output) = await CliRunner.RunAsync("train", "--dataset", "ml-100k", "--data", missing, "--out", tmp["model"]);
        code.ShouldBe(2);
        ShouldBeOneClearLine(output, missing);
    }

    [Fact]
    public async Task Broken_ratings_file_names_file_and_line()
    {
        using var tmp = new TempDirectory();
        var data = Directory.CreateDirectory(tmp["ml"]).FullName;
        File.WriteAllText(Path.Combine(data, "u.data"), "1\t10\t5\t881250949\n2\tten\t3\t891717742\n");
        File.WriteAllText(Path.Combine(data, "u.user"), "1|24|M|technician|85711\n2|53|F|other|94043\n");
        var (code, output) = await CliRunner.RunAsync("train", "--dataset", "ml-100k", "--data", data, "--out", tmp["model"]);
        code.ShouldBe(2);
        ShouldBeOneClearLine(output, "u.data:2");
    }

    [Fact]
    public async Task Missing_model_folder_says_how_to_make_one()
    {
        using var tmp = new TempDirectory();
        var (code, output) = await CliRunner.RunAsync("audit", "--model", tmp["no-model"]);
        code.ShouldBe(2);
        ShouldBeOneClearLine(output, "attrcloak train");
    }

    [Fact]
    public async Task Unknown_mode_and_attribute_are_rejected()
    {
        using var tmp = new TempDirectory();
        var (code, output) = await CliRunner.RunAsync("reproduce", "--dataset", "synthetic", "--attributes", "religion", "--seeds", "1");
        code.ShouldBe(2);
        ShouldBeOneClearLine(output, "religion");
    }

    [Theory]
    [InlineData("harness", "--strata", "0", "--members", "synth-500")]
    [InlineData("control", "--strata", "101", "--draws", "1")]
    public async Task Strata_out_of_range_is_one_line_before_any_work(params string[] args)
    {
        var (code, output) = await CliRunner.RunAsync(args);
        code.ShouldBe(2);
        ShouldBeOneClearLine(output, "--strata must be between 1 and 100");
        output.ShouldNotContain("training");
    }

    [Fact]
    public async Task Embeddings_file_that_is_not_npy_is_one_line()
    {
        using var tmp = new TempDirectory();
        var model = tmp["model"];
        var (trained, _) = await CliRunner.RunAsync("train", "--dataset", "synthetic", "--synthetic-users", "120", "--epochs", "2", "--out", model);
        trained.ShouldBe(0);
        var bogus = tmp["bogus.npy"];
        File.WriteAllText(bogus, "this is not numpy");
        var (code, output) = await CliRunner.RunAsync("evaluate", "--model", model, "--embeddings", bogus);
        code.ShouldBe(2);
        ShouldBeOneClearLine(output, bogus);
    }
}
