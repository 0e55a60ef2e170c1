using System.Text.Json;
using AttrCloak.Audit;
using AttrCloak.Cli.Experiments;
using AttrCloak.Cli.Rendering;
using AttrCloak.Cli.Plots;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Core.IO;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;
using Spectre.Console;

namespace AttrCloak.Cli.Commands;

/// <summary>
/// `cloak --mode ot`: AttrCloak-OT, the streaming guard's per-class Gaussian maps cross-fitted over the batch
/// (<see cref="CrossFittedTransport"/>), at <c>--strength</c> or with the strength of each attribute set by the
/// privacy-target loop. It has no learning rate or iterations: the DF/DD knobs are refused. Its own two, the target
/// (global fit or null population) and the covariance shrinkage, reproduce docs/evaluation.md ("Why OT trails on gender").
/// </summary>
internal static class TransportCloakRun
{
    public const string Method = MethodNames.Ot;

    public static int Execute(CloakCommandSettings s, JsonSerializerOptions json, CancellationToken ct)
    {
        RefuseGradientKnobs(s);
        var strength = s.Strength ?? 1;
        if (!(strength is >= 0 and <= 1)) throw new UsageException($"--strength must be in 0..1 for --mode ot, got {strength}");
        var nullTargets = s.Target?.ToLowerInvariant() switch
        {
            null or "global" => false,
            "null" => true,
            _ => throw new UsageException($"--target '{s.Target}' is not a target of --mode ot; expected global or null"),
        };
        if (s.CovariancePrior is { } prior && !(prior >= 0 && double.IsFinite(prior)))
            throw new UsageException($"--covariance-prior must be finite and >= 0, got {prior}");
        var (model, _, data, indices, split) = ModelInputs.Load(s, s.Attributes);
        var attributes = AttributeSelection.Protected(data, indices);
        var names = attributes.Select(a => a.Name).ToArray();
        CrossFittedTransport transport;
        var options = CrossFittedTransport.DefaultOptions(nullTargets);
        if (s.CovariancePrior is { } users) options = options with { CovariancePriorUsers = users };
        try { transport = new CrossFittedTransport(model.Users, attributes, seed: s.Seed, options: options, nullTargets: nullTargets); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }

        EmbeddingMatrix cloaked;
        AttributeStrength[] strengths;
        TargetedCloakResult? targeted = null;
        if (s.PrivacyTarget is { } eps)
        {
            var goal = new PrivacyGoal(eps, s.UtilityFloor);
            try { goal.Validate(); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
            AnsiConsole.MarkupLineInterpolated($"[bold]{Method}[/] ({transport.Folds}-fold cross-fitted maps) with privacy target {eps} (utility floor {(s.UtilityFloor is { } f ? f.ToString("0.###") : "none")}): shadow audits with their own folds");
            targeted = TargetedCloaking.Run(model, split, names, AttributeSelection.Audited(data, indices), transport, goal, new ShadowAuditOptions(), s.Seed,
                TargetLoopConsole.Rounds(names), ct);
            TargetLoopConsole.Outcome(targeted);
            (cloaked, strengths) = (targeted.Embeddings, targeted.Strengths.ToArray());
        }
        else
        {
            strengths = names.Select(_ => new AttributeStrength(strength, 0)).ToArray();
            cloaked = transport.Run(strengths, ct).Embeddings;
        }

        Directory.CreateDirectory(s.Out);
        NpyFile.Write(Path.Combine(s.Out, "users.npy"), cloaked);
        var before = UtilityEvaluator.Evaluate(model.Users, model.Items, split.TestCandidates);
        var after = UtilityEvaluator.Evaluate(cloaked, model.Items, split.TestCandidates);
        var displacement = model.Users.MeanSquaredDistanceTo(cloaked);
        var scales = names.Select((n, j) => (n, strengths[j].Mean)).ToDictionary(p => p.n, p => p.Mean);
        File.WriteAllText(Path.Combine(s.Out, "cloak.json"), JsonSerializer.Serialize(new
        {
            method = Method, model = Path.GetFullPath(s.Model), folds = transport.Folds, s.Seed, targets = nullTargets ? "null" : "global",
            covariancePriorUsers = options.CovariancePriorUsers, attributeDeviationScales = scales,
            meanSquaredDisplacement = displacement, utilityBefore = before, utilityAfter = after,
            privacyTarget = targeted is null ? null : new { s.PrivacyTarget, s.UtilityFloor, targeted.Outcome, targeted.Strengths, targeted.Thresholds, targeted.StillLeaking, targeted.Steps },
        }, json));

        var t = new Table().Border(TableBorder.Rounded)
            .Title($"{Method}: {transport.Folds}-fold cross-fitted maps, strengths {string.Join(" ", scales.Select(p => $"{p.Key}={p.Value:0.###}"))}");
        foreach (var c in new[] { "", "HR@10", "NDCG@10", "mean squared displacement" }) t.AddColumn(c);
        t.AddRow("before", $"{before.Hr10:F4}", $"{before.Ndcg10:F4}", "0");
        t.AddRow("after", $"{after.Hr10:F4}", $"{after.Ndcg10:F4}", $"{displacement:F4}");
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLineInterpolated($"cloaked embeddings: [blue]{Path.Combine(s.Out, "users.npy")}[/]; audit them with `attrcloak audit --model {s.Model} --embeddings {Path.Combine(s.Out, "users.npy")}`");
        if (s.Export is not null)
        {
            EmbeddingExport.Write(s.Export, data, model.Users, cloaked);
            AnsiConsole.MarkupLineInterpolated($"exported [blue]{s.Export}[/]");
        }
        if (s.Plots is not null)
            foreach (var file in CloakPlots.WriteDistributions(data, names, model.Users, cloaked, s.Plots, Method))
                AnsiConsole.MarkupLineInterpolated($"plot [blue]{file}[/]");
        return 0;
    }

    /// <summary>The maps have no step size, iterations, targets or strata: a DF/DD knob given with --mode ot is a mistake, said so.</summary>
    private static void RefuseGradientKnobs(CloakSettings s)
    {
        var given = new (string Option, bool Set)[]
        {
            ("--lr", s.LearningRate is not null), ("--iterations", s.Iterations is not null), ("--optimizer", s.Optimizer is not null),
            ("--ridge", s.Ridge is not null), ("--alpha-min", s.AlphaMin is not null), ("--alpha-max", s.AlphaMax is not null),
            ("--tolerance", s.Tolerance is not null), ("--target-reduction", s.TargetReduction is not null),
            ("--covariance-strength", s.CovarianceStrength is not null), ("--strata", s.Strata is not null), ("--exact-means", s.ExactMeans is not null),
        }.Where(k => k.Set).Select(k => k.Option).ToArray();
        if (given.Length > 0)
            throw new UsageException($"{string.Join(", ", given)} tune{(given.Length == 1 ? "s" : "")} the gradient cloaks (--mode df or dd); --mode ot takes --strength, or --privacy-target with --utility-floor");
    }
}
