using System.ComponentModel;
using AttrCloak.Cli.Rendering;
using AttrCloak.Learning.Backbones;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

public sealed class TrainSettings : DataSettings
{
    [CommandOption("--backbone <NAME>")]
    [Description("mf (dot-product MF trained with BCE, 4 negatives; default) or lightgcn (3 layers, BPR).")]
    [DefaultValue("mf")]
    public string Backbone { get; init; } = "mf";

    [CommandOption("--out <DIR>")]
    [Description("Folder to write the model to (model.json, users.npy, items.npy, dataset.json).")]
    public string Out { get; init; } = "";

    [CommandOption("--dim <D>")] [Description("Embedding dimensions (default 64).")] public int? Dim { get; init; }
    [CommandOption("--epochs <N>")] [Description("Epoch cap; early stopping on the validation item decides within it.")] public int? Epochs { get; init; }
    [CommandOption("--lr <RATE>")] public double? LearningRate { get; init; }
    [CommandOption("--seed <S>")] [DefaultValue(1)] public int Seed { get; init; } = 1;

    public override ValidationResult Validate() =>
        string.IsNullOrWhiteSpace(Out) ? ValidationResult.Error("--out DIR is required") : ValidationResult.Success();
}

public sealed class TrainCommand : Command<TrainSettings>
{
    public override int Execute(CommandContext context, TrainSettings s, CancellationToken cancellationToken)
    {
        var source = s.ToSource();
        var kind = BackboneNames.Parse(s.Backbone);
        var options = BackboneTrainingOptions.DefaultsFor(kind) with { Seed = s.Seed };
        if (s.Dim is { } d) options = options with { Dim = d };
        if (s.Epochs is { } e) options = options with { Epochs = e };
        if (s.LearningRate is { } lr) options = options with { LearningRate = lr };
        try { options.Validate(); }
        catch (ArgumentException ex) { throw new UsageException(ex.Message); }

        var data = source.Load();
        var split = source.Split(data);
        AnsiConsole.MarkupLineInterpolated($"training {kind} on {source.Describe()}: {data.UserCount} users, {data.ItemCount} items, {data.Interactions.Count} interactions");
        var model = ConsoleProgress.RunTraining(p => BackboneTrainers.Create(kind, options).Train(data, split, p, cancellationToken));
        Directory.CreateDirectory(s.Out);
        model.Save(s.Out);
        source.SaveBeside(s.Out);

        var t = new Table().Border(TableBorder.Rounded).Title($"{kind} trained in {model.TrainingSeconds:F1} s (best epoch {model.BestEpoch} of {model.EpochsTrained})");
        foreach (var c in new[] { "split", "HR@5", "HR@10", "NDCG@5", "NDCG@10" }) t.AddColumn(c);
        t.AddRow("validation", $"{model.Validation.Hr5:F4}", $"{model.Validation.Hr10:F4}", $"{model.Validation.Ndcg5:F4}", $"{model.Validation.Ndcg10:F4}");
        t.AddRow("test", $"{model.Test.Hr5:F4}", $"{model.Test.Hr10:F4}", $"{model.Test.Ndcg5:F4}", $"{model.Test.Ndcg10:F4}");
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLineInterpolated($"saved to [blue]{s.Out}[/]");
        return 0;
    }
}
