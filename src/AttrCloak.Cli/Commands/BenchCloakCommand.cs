using System.ComponentModel;
using AttrCloak.Cli.Experiments;
using AttrCloak.Learning;
using AttrCloak.Learning.Backbones;
using AttrCloak.Learning.Unlearning;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

public sealed class BenchCloakSettings : ModelSettings
{
    [CommandOption("--runs <N>")]
    [Description("Timed runs per mode (the median is reported); one untimed warm-up run precedes them.")]
    [DefaultValue(5)]
    public int Runs { get; init; } = 5;

    [CommandOption("--modes <LIST>")]
    [Description("df, dd or df,dd.")]
    [DefaultValue("df,dd")]
    public string Modes { get; init; } = "df,dd";

    [CommandOption("--attributes <LIST>")]
    public string? Attributes { get; init; }
}

/// <summary>
/// Unlearning time alone (no training, no audit) with the default presets: median of several runs and how the
/// time splits between the phases of an iteration. A benchmark prints figures; it asserts nothing.
/// </summary>
public sealed class BenchCloakCommand : Command<BenchCloakSettings>
{
    public override int Execute(CommandContext context, BenchCloakSettings s, CancellationToken cancellationToken)
    {
        if (s.Runs < 1) throw new UsageException("--runs must be at least 1");
        var (model, source, data, indices, split) = ModelInputs.Load(s, s.Attributes);
        var attributes = AttributeSelection.Protected(data, indices);
        var modes = s.Modes.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(m => m.ToLowerInvariant() switch
            {
                "df" => CloakMode.DataFree,
                "dd" => CloakMode.DataDependent,
                _ => throw new UsageException($"unknown mode '{m}' in --modes; expected df and/or dd"),
            }).ToArray();

        var table = new Table().Border(TableBorder.Rounded)
            .Title($"AttrCloak unlearning time on {source.Describe()} ({data.UserCount} users x {model.Dim} dims, {TorchRuntime.Threads} libtorch thread(s)), median of {s.Runs}")
            .Caption("Phases: L_AU = class statistics + KL + its gradient; retention = L_Reg or the recommendation loss + its gradient; MGDA = weight + trace read-back; update = optimiser step.");
        foreach (var c in new[] { "mode", "iterations", "median s", "min s", "max s", "ms / iteration", "L_AU", "retention", "MGDA", "update", "set-up" })
            table.AddColumn(c == "mode" ? new TableColumn(c) : new TableColumn(c).RightAligned());

        foreach (var mode in modes)
        {
            var options = CloakPresets.For(mode);
            var runs = new List<CloakResult>();
            for (var r = 0; r <= s.Runs; r++)
            {
                using var recLoss = mode == CloakMode.DataDependent ? RecommendationLosses.For(model, split, r + 1) : null;
                var result = new Cloaker().Cloak(model.Users, attributes, options, recLoss, null, cancellationToken);
                if (r > 0) runs.Add(result); // run 0 warms up the JIT and libtorch
                AnsiConsole.MarkupLineInterpolated($"  {mode} run {r}{(r == 0 ? " (warm-up)" : "")}: {result.WallTime.TotalSeconds:F3} s, {result.Iterations} iterations");
            }
            var sorted = runs.OrderBy(x => x.WallTime).ToArray();
            var median = sorted[sorted.Length / 2];
            var total = median.WallTime.TotalSeconds;
            // The privacy-target presets end with the exact class-mean projection and time no gradient stages (DF runs
            // none at all): their stage columns stay empty rather than claiming zeros.
            string Share(TimeSpan? x) => x is { } v ? $"{v.TotalSeconds:F3} s ({100 * v.TotalSeconds / total:F0}%)" : "-";
            var t = median.Timings;
            var setup = t is null ? (TimeSpan?)null : median.WallTime - t.AttributeLoss - t.RetentionLoss - t.Mgda - t.Update;
            table.AddRow(MethodNames.For(mode), $"{median.Iterations}", $"{total:F3}",
                $"{sorted[0].WallTime.TotalSeconds:F3}", $"{sorted[^1].WallTime.TotalSeconds:F3}",
                $"{1000 * total / Math.Max(1, median.Iterations):F1}", Share(t?.AttributeLoss), Share(t?.RetentionLoss), Share(t?.Mgda),
                Share(t?.Update), Share(setup));
        }
        AnsiConsole.Write(table);
        return 0;
    }
}
