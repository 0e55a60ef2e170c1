using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Serialization;
using AttrCloak.Cli.Experiments;
using AttrCloak.Cli.Plots;
using AttrCloak.Cli.Rendering;
using AttrCloak.Core.Evaluation;
using AttrCloak.Core.IO;
using AttrCloak.Learning.Backbones;
using AttrCloak.Learning.Unlearning;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

public sealed class CloakCommandSettings : CloakSettings
{
    [CommandOption("--out <DIR>")]
    [Description("Folder for the cloaked embeddings (users.npy) and the run's record (cloak.json).")]
    public string Out { get; init; } = "";

    [CommandOption("--export <DIR>")]
    [Description("Also write users.csv, embeddings_original.npy and embeddings_cloaked.npy for outside attackers.")]
    public string? Export { get; init; }

    [CommandOption("--plots <DIR>")]
    [Description("Write PNG figures: per-class distributions before/after, alpha_u and loss curves.")]
    public string? Plots { get; init; }

    [CommandOption("--seed <S>")]
    [Description("Seed for DD's negative sampling and the noise-matched targets' draw.")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    public override ValidationResult Validate()
    {
        var baseResult = base.Validate();
        if (!baseResult.Successful) return baseResult;
        return string.IsNullOrWhiteSpace(Out) ? ValidationResult.Error("--out DIR is required") : ValidationResult.Success();
    }
}

/// <summary>Cloaks a saved model's user embeddings post-training, in either mode.</summary>
public sealed class CloakCommand : Command<CloakCommandSettings>
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };

    public override int Execute(CommandContext context, CloakCommandSettings s, CancellationToken cancellationToken)
    {
        if (s.IsTransport) return TransportCloakRun.Execute(s, Json, cancellationToken);
        var mode = s.ParsedMode;
        if (s.CovariancePrior is not null) throw new UsageException("--covariance-prior tunes the Gaussian maps of --mode ot; df and dd have no covariance maps");
        var options = CloakKnobs.Apply(CloakPresets.For(mode), s.LearningRate, s.Iterations, s.Optimizer, s.Ridge,
            s.AlphaMin, s.AlphaMax, s.Tolerance, s.TargetReduction, s.Target, s.Strength);
        if (s.CovarianceStrength is not null) options = options with { CovarianceStrength = s.CovarianceStrength };
        if (s.ExactMeans is { } exact) options = options with { ExactMeans = exact };
        if (s.Strata is { } strata) options = options with { Strata = CloakKnobs.Strata(strata) };
        options = options with { TargetSeed = options.TargetSeed + s.Seed };
        var (model, _, data, indices, split) = ModelInputs.Load(s, s.Attributes);
        var attributes = AttributeSelection.Protected(data, indices);

        using var recLoss = mode == CloakMode.DataDependent ? RecommendationLosses.For(model, split, s.Seed, options.RecommendationReduction) : null;
        var method = MethodNames.For(mode);
        CloakResult result;
        TargetedCloakResult? targeted = null;
        if (s.PrivacyTarget is { } eps)
        {
            var goal = new PrivacyGoal(eps, s.UtilityFloor) { Strata = CloakKnobs.Strata(s.Strata ?? CloakPresets.TargetStrata) };
            try { goal.Validate(); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
            var audited = AttributeSelection.Audited(data, indices);
            var names = attributes.Select(a => a.Name).ToArray();
            AnsiConsole.MarkupLineInterpolated($"[bold]{method}[/] with privacy target {eps} (utility floor {(s.UtilityFloor is { } f ? f.ToString("0.###") : "none")}): shadow audits with their own folds");
            targeted = TargetedCloaking.Run(model, split, attributes, audited, options with { Mode = mode }, goal, new Audit.ShadowAuditOptions(), s.Seed,
                TargetLoopConsole.Rounds(names),
                cancellationToken);
            TargetLoopConsole.Outcome(targeted);
            result = targeted.Cloak ?? new Cloaker().Cloak(model.Users, attributes, options with { MaxIterations = 0, Strength = 0, CovarianceStrength = 0 }, null, null, cancellationToken);
        }
        else
            result = ConsoleProgress.RunCloak(method, p => new Cloaker().Cloak(model.Users, attributes, options, recLoss, p, cancellationToken));

        Directory.CreateDirectory(s.Out);
        NpyFile.Write(Path.Combine(s.Out, "users.npy"), result.Embeddings);
        var before = UtilityEvaluator.Evaluate(model.Users, model.Items, split.TestCandidates);
        var after = UtilityEvaluator.Evaluate(result.Embeddings, model.Items, split.TestCandidates);
        File.WriteAllText(Path.Combine(s.Out, "cloak.json"), JsonSerializer.Serialize(new
        {
            method, model = Path.GetFullPath(s.Model), options, result.StopReason, result.Iterations,
            seconds = result.WallTime.TotalSeconds, result.AlphaMin, result.AlphaMax, result.AttributeNames,
            utilityBefore = before, utilityAfter = after, result.Strata, result.Trace,
            privacyTarget = targeted is null ? null : new { s.PrivacyTarget, s.UtilityFloor, targeted.Outcome, targeted.Strengths, targeted.Thresholds, targeted.StillLeaking, targeted.Steps },
        }, Json));

        var t = new Table().Border(TableBorder.Rounded)
            .Title($"{method}: {result.Iterations} iterations in {result.WallTime.TotalSeconds:F2} s, stopped: {result.StopReason}");
        foreach (var c in new[] { "", "L_AU", "L_R", "alpha_u", "HR@10", "NDCG@10" }) t.AddColumn(c);
        t.AddRow("before", $"{result.Initial.LossAu:F4}", $"{result.Initial.LossR:G4}", $"{result.Initial.AlphaU:F3}", $"{before.Hr10:F4}", $"{before.Ndcg10:F4}");
        t.AddRow("after", $"{result.Final.LossAu:F4}", $"{result.Final.LossR:G4}", $"{result.Final.AlphaU:F3}", $"{after.Hr10:F4}", $"{after.Ndcg10:F4}");
        AnsiConsole.Write(t);
        for (var j = 0; j < result.AttributeNames.Count; j++)
            AnsiConsole.MarkupLineInterpolated($"  L_AU[[{result.AttributeNames[j]}]]: {result.Initial.LossAuPerAttribute[j]:F4} -> {result.Final.LossAuPerAttribute[j]:F4}");
        if (result.Strata is { } decisions)
            AnsiConsole.MarkupLineInterpolated($"  class means equalised within principal strata: {string.Join(", ", decisions)}");
        AnsiConsole.MarkupLineInterpolated($"cloaked embeddings: [blue]{Path.Combine(s.Out, "users.npy")}[/]; audit them with `attrcloak audit --model {s.Model} --embeddings {Path.Combine(s.Out, "users.npy")}`");

        if (s.Export is not null)
        {
            EmbeddingExport.Write(s.Export, data, model.Users, result.Embeddings);
            AnsiConsole.MarkupLineInterpolated($"exported [blue]{s.Export}[/]");
        }
        if (s.Plots is not null)
            foreach (var file in CloakPlots.WriteRun(data, model.Users, result, s.Plots, method))
                AnsiConsole.MarkupLineInterpolated($"plot [blue]{file}[/]");
        return 0;
    }
}
