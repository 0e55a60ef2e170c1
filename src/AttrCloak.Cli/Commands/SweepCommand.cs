using System.ComponentModel;
using System.Globalization;
using AttrCloak.Audit;
using AttrCloak.Cli.Experiments;
using AttrCloak.Cli.Plots;
using AttrCloak.Cli.Rendering;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Backbones;
using AttrCloak.Learning.Unlearning;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

public sealed class SweepSettings : CloakSettings
{
    [CommandOption("--lrs <LIST>")]
    [Description("Comma-separated learning rates to try.")]
    [DefaultValue("0.01,0.03,0.1")]
    public string Rates { get; init; } = "0.01,0.03,0.1";

    [CommandOption("--iteration-caps <LIST>")]
    [Description("Comma-separated iteration caps to try.")]
    [DefaultValue("10,30,100")]
    public string Caps { get; init; } = "10,30,100";

    [CommandOption("--attackers <LIST>")]
    [Description("Attackers for each point's audit (default: all).")]
    public string? Attackers { get; init; }

    [CommandOption("--seed <S>")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    [CommandOption("--plot <FILE>")]
    [Description("PNG of the privacy-utility curve.")]
    public string? Plot { get; init; }
}

/// <summary>
/// The privacy-utility curve of one model: cloak with every (learning rate, iteration cap) pair, then audit and
/// evaluate each result. Results depend strongly on both knobs (docs/evaluation.md), so one point is not enough.
/// </summary>
public sealed class SweepCommand : Command<SweepSettings>
{
    public override int Execute(CommandContext context, SweepSettings s, CancellationToken cancellationToken)
    {
        var rates = ParseList(s.Rates, "--lrs", double.Parse);
        var caps = ParseList(s.Caps, "--iteration-caps", int.Parse);
        var mode = s.ParsedMode;
        var (model, _, data, indices, split) = ModelInputs.Load(s, s.Attributes);
        var attributes = AttributeSelection.Protected(data, indices);
        var audited = AttributeSelection.Audited(data, indices);
        var audit = AuditSettings.Options(s.Attackers, s.Seed);
        var baseline = UtilityEvaluator.Evaluate(model.Users, model.Items, split.TestCandidates);

        var points = new List<SweepPoint>();
        var original = ConsoleProgress.RunAudit(p => PrivacyAudit.Run(model.Users, audited, audit, p, cancellationToken));
        points.Add(new SweepPoint("original", 0, 0, 1.0, original, 0));
        foreach (var lr in rates)
            foreach (var cap in caps)
            {
                var options = CloakKnobs.Apply(CloakPresets.For(mode), lr, cap, s.Optimizer, s.Ridge, s.AlphaMin, s.AlphaMax, s.Tolerance, s.TargetReduction);
                using var recLoss = mode == CloakMode.DataDependent ? RecommendationLosses.For(model, split, s.Seed) : null;
                var cloak = new Cloaker().Cloak(model.Users, attributes, options, recLoss, null, cancellationToken);
                var utility = UtilityEvaluator.Evaluate(cloak.Embeddings, model.Items, split.TestCandidates);
                var privacy = ConsoleProgress.RunAudit(p => PrivacyAudit.Run(cloak.Embeddings, audited, audit, p, cancellationToken));
                points.Add(new SweepPoint($"lr {lr.ToString(CultureInfo.InvariantCulture)}, {cloak.Iterations} it", lr, cap,
                    utility.Ndcg10 / baseline.Ndcg10, privacy, cloak.WallTime.TotalSeconds));
            }

        var t = new Table().Border(TableBorder.Rounded)
            .Title($"{MethodNames.For(mode)} privacy-utility sweep (worst-attacker balanced accuracy)");
        t.AddColumn("setting");
        foreach (var a in audited) t.AddColumn(new TableColumn($"{a.Name}\n[grey]chance {1.0 / a.ClassCount:F3}[/]").RightAligned());
        t.AddColumn(new TableColumn("NDCG@10 vs original").RightAligned());
        t.AddColumn(new TableColumn("seconds").RightAligned());
        foreach (var p in points)
        {
            var cells = new List<string> { Markup.Escape(p.Label) };
            cells.AddRange(p.Privacy.Attributes.Select(a => $"{a.WorstBalancedAccuracy:F3}"));
            cells.Add($"{p.NdcgRatio:F3}x");
            cells.Add($"{p.Seconds:F2}");
            t.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(t);
        if (s.Plot is not null)
            AnsiConsole.MarkupLineInterpolated($"plot [blue]{SweepPlot.Write(points, s.Plot)}[/]");
        return 0;
    }

    private static T[] ParseList<T>(string csv, string option, Func<string, IFormatProvider, T> parse)
    {
        try
        {
            return csv.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(x => parse(x, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (FormatException)
        {
            throw new UsageException($"{option} expects a comma-separated list of numbers, got '{csv}'");
        }
    }
}

/// <summary>One point of a sweep.</summary>
public sealed record SweepPoint(string Label, double LearningRate, int Cap, double NdcgRatio, AuditResult Privacy, double Seconds);
