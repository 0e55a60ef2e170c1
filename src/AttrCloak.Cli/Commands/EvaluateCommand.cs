using System.ComponentModel;
using AttrCloak.Cli.Experiments;
using AttrCloak.Core.Evaluation;
using AttrCloak.Core.IO;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

public sealed class EvaluateSettings : ModelSettings
{
    [CommandOption("--embeddings <FILES>")]
    [Description("Comma-separated .npy files of user embeddings to evaluate beside the model's original ones.")]
    public string? Embeddings { get; init; }
}

/// <summary>Utility of the original and any cloaked user embeddings against the model's frozen items.</summary>
public sealed class EvaluateCommand : Command<EvaluateSettings>
{
    public override int Execute(CommandContext context, EvaluateSettings s, CancellationToken cancellationToken)
    {
        var model = ModelFolder.Load(s.Model);
        var source = s.ToSource(DataSource.ReadBeside(s.Model));
        var data = source.Load();
        var split = source.Split(data);
        var sets = new List<(string Name, AttrCloak.Core.Data.EmbeddingMatrix Users)> { ("original", model.Users) };
        foreach (var file in (s.Embeddings ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            sets.Add((file, NpyFile.Read(file)));

        var t = new Table().Border(TableBorder.Rounded)
            .Title($"Utility on {source.Describe()} (leave-one-out test item vs 99 sampled negatives, pessimistic ties)");
        foreach (var c in new[] { "embeddings", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "NDCG@10 vs original" })
            t.AddColumn(c == "embeddings" ? new TableColumn(c) : new TableColumn(c).RightAligned());
        double? originalNdcg = null;
        foreach (var (name, users) in sets)
        {
            ModelFolder.CheckRows(users.Rows, data.UserCount, name);
            if (users.Cols != model.Items.Cols)
                throw new AttrCloak.Core.Data.DataFormatException($"{name}: {users.Cols} dimensions but the model's items have {model.Items.Cols}");
            var m = UtilityEvaluator.Evaluate(users, model.Items, split.TestCandidates);
            originalNdcg ??= m.Ndcg10;
            t.AddRow(Markup.Escape(name), $"{m.Hr5:F4}", $"{m.Hr10:F4}", $"{m.Ndcg5:F4}", $"{m.Ndcg10:F4}", $"{m.Ndcg10 / originalNdcg:F3}x");
        }
        AnsiConsole.Write(t);
        return 0;
    }
}
