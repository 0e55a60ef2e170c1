using AttrCloak.Core.Data;
using System.ComponentModel;
using AttrCloak.Cli.Experiments;
using AttrCloak.Learning.Unlearning;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

public sealed class ControlSettings : DataSettings
{
    [CommandOption("--attributes <LIST>")]
    [Description("Attributes whose labels the noise gets (default: all).")]
    public string? Attributes { get; init; }

    [CommandOption("--attackers <LIST>")]
    [Description("Attackers (default: lr,lr+cal,mlp,mlp-wide,lgbm,lgbm+cal).")]
    public string? Attackers { get; init; }

    [CommandOption("--dimension <D>")]
    [DefaultValue(64)]
    public int Dimension { get; init; } = 64;

    [CommandOption("--scale <S>")]
    [Description("Standard deviation of each noise coordinate.")]
    [DefaultValue(1.0)]
    public double Scale { get; init; } = 1.0;

    [CommandOption("--draws <N>")]
    [Description("Independent noise draws to average over.")]
    [DefaultValue(3)]
    public int Draws { get; init; } = 3;

    [CommandOption("--seed <S>")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    [CommandOption("--no-original")]
    [Description("Skip the audit of the uncloaked noise.")]
    public bool NoOriginal { get; init; }

    [CommandOption("--lr <RATE>")] public double? LearningRate { get; init; }
    [CommandOption("--iterations <N>")] public int? Iterations { get; init; }
    [CommandOption("--ridge <EPS>")] public double? Ridge { get; init; }

    [CommandOption("--target <KIND>")]
    [Description("noise-matched, empirical (the slides) or shrunk.")]
    public string? Target { get; init; }

    [CommandOption("--strength <T>")]
    public double? Strength { get; init; }

    [CommandOption("--cross-fit")]
    [Description("Instead of the DF preset: two-fold cross-fitted class-mean equalisation (each half of the users is shifted by the class offsets measured on the other half), to measure cross-fitting on its own.")]
    public bool CrossFit { get; init; }

    [CommandOption("--exact-means <BOOL>")]
    public bool? ExactMeans { get; init; }

    [CommandOption("--strata <N>")]
    public int? Strata { get; init; }

    [CommandOption("--strata-everywhere")]
    [Description("With --strata: cut every attribute whose classes are large enough, even where its offsets do not vary (on noise they never do), as the CI control does.")]
    public bool StrataEverywhere { get; init; }

    [CommandOption("--covariance-strength <T>")]
    public double? CovarianceStrength { get; init; }

    public override ValidationResult Validate()
    {
        if (Draws < 1) return ValidationResult.Error("--draws must be at least 1");
        if (Dimension < 2) return ValidationResult.Error("--dimension must be at least 2");
        return ValidationResult.Success();
    }
}

/// <summary>
/// The noise control of the evaluation protocol (docs/evaluation.md): i.i.d. Gaussian embeddings with a data set's real labels, cloaked with
/// AttrCloak-DF, attacked; every attacker must stay at chance.
/// </summary>
public sealed class ControlCommand : Command<ControlSettings>
{
    public override int Execute(CommandContext context, ControlSettings s, CancellationToken cancellationToken)
    {
        var source = s.ToSource();
        var data = source.Load();
        var indices = AttributeSelection.Resolve(data, s.Attributes);
        var audited = AttributeSelection.Audited(data, indices);
        var protectedAttributes = AttributeSelection.Protected(data, indices);
        var options = CloakKnobs.Apply(CloakPresets.DataFree, s.LearningRate, s.Iterations, null, s.Ridge, null, null, null, null,
            s.Target, s.Strength);
        if (s.CovarianceStrength is not null) options = options with { CovarianceStrength = s.CovarianceStrength };
        if (s.ExactMeans is { } exact) options = options with { ExactMeans = exact };
        if (s.Strata is { } strata) options = options with { Strata = CloakKnobs.Strata(strata), StrataEverywhere = s.StrataEverywhere };
        var control = new NoiseControlOptions
        {
            Dimension = s.Dimension, Scale = s.Scale, Draws = s.Draws, Seed = s.Seed,
            Audit = AuditSettings.Options(s.Attackers, s.Seed), AuditOriginal = !s.NoOriginal,
        };
        AnsiConsole.MarkupLineInterpolated(
            $"[bold]noise control[/]: {data.UserCount} users of {source.Describe()}, N(0, {s.Scale}^2) in {s.Dimension} dims, {s.Draws} draw(s); cloak: DF target {options.Target}, strength {options.Strength}, lr {options.LearningRate}, {options.MaxIterations} it, ridge {options.Ridge.Epsilon}");
        var progress = new Progress<string>(m => AnsiConsole.MarkupLineInterpolated($"[grey]{DateTime.Now:HH:mm:ss} {m}[/]"));
        var result = NoiseControl.Run(audited, control,
            (noise, draw) =>
            {
                if (s.CrossFit) return CrossFitted(noise, protectedAttributes, s.Seed * 100 + draw);
                var r = new Cloaker().Cloak(noise, protectedAttributes, options with { TargetSeed = options.TargetSeed + draw }, ct: cancellationToken);
                AnsiConsole.MarkupLineInterpolated($"[grey]  {r.Iterations} it ({r.StopReason}), alpha {r.Final.AlphaU:F3}; mean-shift to target {string.Join(" ", r.Initial.MeanShiftPerAttribute.Select(v => v.ToString("G3")))} -> {string.Join(" ", r.Final.MeanShiftPerAttribute.Select(v => v.ToString("G3")))}; L_AU {r.Initial.LossAu:G3} -> {r.Final.LossAu:G3}[/]");
                return r.Embeddings;
            },
            progress, cancellationToken);
        AnsiConsole.Write(NoiseControlTable.Render(result));
        return 0;
    }

    /// <summary>
    /// Two-fold cross-fitting of the class means: users are split in two halves at random; each half's users of class k
    /// are shifted by minus class k's offset from the global mean MEASURED ON THE OTHER HALF (so no user's move depends on
    /// its own embedding), attribute after attribute.
    /// </summary>
    private static Core.Data.EmbeddingMatrix CrossFitted(Core.Data.EmbeddingMatrix x, IReadOnlyList<LabeledAttribute> attributes, int seed)
    {
        var y = x.Clone();
        var n = x.Rows;
        var d = x.Cols;
        var half = new int[n];
        var rng = new Random(seed);
        for (var u = 0; u < n; u++) half[u] = rng.Next(2);
        foreach (var a in attributes)
        {
            var sums = new double[2, a.ClassCount, d];
            var counts = new int[2, a.ClassCount];
            var global = new double[2, d];
            var known = new int[2];
            for (var u = 0; u < n; u++)
            {
                var c = a.Labels[u];
                if (c < 0) continue;
                counts[half[u], c]++;
                known[half[u]]++;
                for (var i = 0; i < d; i++) { sums[half[u], c, i] += x.Values[u * d + i]; global[half[u], i] += x.Values[u * d + i]; }
            }
            for (var u = 0; u < n; u++)
            {
                var c = a.Labels[u];
                var other = 1 - half[u];
                if (c < 0 || counts[other, c] == 0) continue;
                for (var i = 0; i < d; i++)
                    y.Values[u * d + i] -= (float)(sums[other, c, i] / counts[other, c] - global[other, i] / known[other]);
            }
        }
        return y;
    }
}

/// <summary>The noise control as a table: mean signed advantage per attacker and rule, before and after.</summary>
public static class NoiseControlTable
{
    public static Table Render(NoiseControlResult r)
    {
        var t = new Table().Border(TableBorder.Rounded)
            .Title(Markup.Escape($"Noise control: {r.Users} users x {r.Dimension} dims, mean of {r.Draws} draw(s); cloak {r.CloakSeconds:F1} s per draw"))
            .Caption("signed advantage = balanced accuracy - chance (mean over draws; min..max beside); the control passes within +/- 0.02");
        foreach (var c in new[] { "attribute", "attacker", "rule", "noise", "cloaked noise", "cloaked min..max" }) t.AddColumn(c);
        foreach (var a in r.Attributes)
        {
            var first = true;
            foreach (var cell in a.Cloaked)
            {
                var before = a.Original.FirstOrDefault(o => o.Attacker == cell.Attacker && o.Rule == cell.Rule);
                t.AddRow(first ? Markup.Escape($"{a.Name} (K={a.ClassCount})") : "", Markup.Escape(cell.Attacker), cell.Rule,
                    before is null ? "-" : $"{before.MeanAdvantage:+0.000;-0.000}", $"{cell.MeanAdvantage:+0.000;-0.000}",
                    $"{cell.MinAdvantage:+0.000;-0.000}..{cell.MaxAdvantage:+0.000;-0.000}");
                first = false;
            }
            t.AddRow("", "[bold]worst |mean|[/]", "", a.WorstOriginal is { } w ? $"{w:F3}" : "-", $"[bold]{a.WorstCloaked:F3}[/]", "");
            t.AddEmptyRow();
        }
        return t;
    }
}
