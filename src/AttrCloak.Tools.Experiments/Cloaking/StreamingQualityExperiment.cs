using System.Globalization;
using System.Text;
using AttrCloak.Audit;
using AttrCloak.Audit.Attackers;
using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Backbones;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Tools.Benchmarks;
using AttrCloak.Tools.Experiments.Support;

namespace AttrCloak.Tools.Experiments.Cloaking;

/// <summary>
/// <c>streaming-quality</c>: the issue's quality bar on ML-100K, in process: MF backbone (seed 1, cached in the temp
/// folder), batch AttrCloak-DF on every user as the reference, then bootstrap DF on 50% of the users and the rest
/// streamed one by one through the re-cloak (<see cref="StreamingReplay"/>). Prints worst-attacker balanced accuracy
/// per attribute and NDCG@10 of each variant next to the batch run's (about 20 s per variant with three attackers,
/// several minutes with all); also written to attrcloak-stream-experiment.txt in the temp folder.
/// <para>
/// Run: <c>dotnet run --project src/AttrCloak.Tools.Experiments -c Release -- streaming-quality</c> (ML-100K from
/// ATTRCLOAK_ML100K or ../shared/data/ml-100k beside the checkout). Environment: ATTRCLOAK_ATTACKERS (comma list,
/// default "lr,lr+cal,mlp"; "all" = the full catalog), ATTRCLOAK_CLOAK_VARIANTS (comma list of variant names below,
/// default "transport"), ATTRCLOAK_REFRESH (users between rebuilds, default 25), ATTRCLOAK_SEEDS (stream orders,
/// default 1), ATTRCLOAK_BOOTSTRAP_FRACTION, ATTRCLOAK_RESEAT_GROWTH, ATTRCLOAK_RESEAT_HELD, ATTRCLOAK_BATCH and
/// ATTRCLOAK_BATCH_STRATA (below).
/// </para>
/// </summary>
internal static class StreamingQualityExperiment
{
    private static readonly Dictionary<string, Func<IUserCloakerFactory?>> Variants = new()
    {
        ["transport"] = () => new TransportCloakerFactory(),
        // The targets before the repeated-update fix: served class and global covariances (they feed back).
        ["served-cov"] = () => new TransportCloakerFactory(new TransportCloakerOptions { CovarianceAnchor = 0, TargetCovarianceScale = 1 }),
        ["mean-only"] = () => new TransportCloakerFactory(new TransportCloakerOptions { CovarianceMaps = false }),
        ["additive"] = () => new TransportCloakerFactory(new TransportCloakerOptions { Combination = MapCombination.Additive }),
        ["additive-mean"] = () => new TransportCloakerFactory(new TransportCloakerOptions { Combination = MapCombination.Additive, CovarianceMaps = false }),
        ["equalise"] = () => new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 0 }),
        ["replicate"] = () => new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 1 }),
        ["offset07"] = () => new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 0.7 }),
        ["offset03"] = () => new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 0.3 }),
        ["damped"] = () => new TransportCloakerFactory(new TransportCloakerOptions { DeviationScale = 0.8 }),
        ["prior10"] = () => new TransportCloakerFactory(new TransportCloakerOptions { MeanPriorUsers = 10 }),
        ["prior0"] = () => new TransportCloakerFactory(new TransportCloakerOptions { MeanPriorUsers = 0 }),
        ["cov16"] = () => new TransportCloakerFactory(new TransportCloakerOptions { CovariancePriorUsers = 16 }),
        ["cov256"] = () => new TransportCloakerFactory(new TransportCloakerOptions { CovariancePriorUsers = 256 }),
        ["cov0"] = () => new TransportCloakerFactory(new TransportCloakerOptions { TargetCovarianceScale = 0 }),
        ["anchored"] = () => new TransportCloakerFactory(new TransportCloakerOptions { CovarianceAnchor = 1, TargetCovarianceScale = 0 }),
        ["anchor05"] = () => new TransportCloakerFactory(new TransportCloakerOptions { CovarianceAnchor = 0.5, TargetCovarianceScale = 0 }),
        ["anchor025"] = () => new TransportCloakerFactory(new TransportCloakerOptions { CovarianceAnchor = 0.25, TargetCovarianceScale = 0 }),
        ["anchor01"] = () => new TransportCloakerFactory(new TransportCloakerOptions { CovarianceAnchor = 0.1, TargetCovarianceScale = 0 }),
        ["prior256"] = () => new TransportCloakerFactory(new TransportCloakerOptions { CovariancePriorUsers = 256 }),
        ["replicate-mean"] = () => new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 1, CovarianceMaps = false }),
        ["replicate-mean-js"] = () => new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 1, CovarianceMaps = false, ClassShiftShrinkage = 1 }),
        ["replicate-mean-js2"] = () => new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 1, CovarianceMaps = false, ClassShiftShrinkage = 2 }),
        ["replicate-mean-js05"] = () => new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 1, CovarianceMaps = false, ClassShiftShrinkage = 0.5 }),
        ["transport-js"] = () => new TransportCloakerFactory(new TransportCloakerOptions { ClassShiftShrinkage = 1 }),
        // The class shift weights measured per dimension (before they were whitened like the batch's).
        ["js-per-dimension"] = () => new TransportCloakerFactory(new TransportCloakerOptions { ShiftShrinkageMetric = ShiftShrinkageMetric.PerDimension }),
        ["half-mean"] = () => new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 0.5, CovarianceMaps = false }),
        ["cold"] = () => new TransportCloakerFactory(),
        ["identity"] = () => null,
    };

    public static void Run(ExperimentContext output)
    {
        var dir = MovieLensData.Require();
        var ct = output.CancellationToken;
        var attackers = Environment.GetEnvironmentVariable("ATTRCLOAK_ATTACKERS") is { Length: > 0 } list
            ? list == "all" ? AttackerCatalog.DefaultNames : list.Split(',', StringSplitOptions.TrimEntries)
            : ["lr", "lr+cal", "mlp"];
        var variants = (Environment.GetEnvironmentVariable("ATTRCLOAK_CLOAK_VARIANTS") ?? "transport").Split(',', StringSplitOptions.TrimEntries);
        var refresh = int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_REFRESH"), out var r) ? r : 25;
        var seeds = int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_SEEDS"), out var s) ? s : 1;
        // ATTRCLOAK_BOOTSTRAP_FRACTION: share of users seated by the batch before the rest stream (default 0.5): small
        // shares are a generation seated early, from few users, then filled through the maps.
        var bootstrapFraction = double.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_BOOTSTRAP_FRACTION"), CultureInfo.InvariantCulture, out var f) ? f : 0.5;
        // ATTRCLOAK_RESEAT_GROWTH: re-seat the stream whenever it reaches that many times its last seating (default 0,
        // never; the worker's ReseatGrowth); ATTRCLOAK_RESEAT_HELD=0: re-seatings without the class offset caps.
        var reseatGrowth = double.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_RESEAT_GROWTH"), CultureInfo.InvariantCulture, out var g) ? g : 0;
        var reseatHeld = Environment.GetEnvironmentVariable("ATTRCLOAK_RESEAT_HELD") != "0";
        // ATTRCLOAK_BATCH: "v1" (the DF defaults before issue 13), or a strength in [0, 1] for the DF preset of
        // issue 13 at that strength on every attribute, or "name=mean[:covariance],..." per attribute (e.g. "gender=1,age=1:1,occupation=1");
        // unset = the preset as it is (full strength, covariances held).
        var batchOptions = Environment.GetEnvironmentVariable("ATTRCLOAK_BATCH") switch
        {
            "v1" => AttrCloak.Learning.Unlearning.CloakPresets.DataFreeV1,
            { Length: > 0 } b when b.Contains('=', StringComparison.Ordinal) => LoopStrengths(b),
            { Length: > 0 } b => StreamingReplay.NoiseMatchedPreset(double.Parse(b, CultureInfo.InvariantCulture)),
            _ => StreamingReplay.DataFreePreset,
        };
        // ATTRCLOAK_BATCH_STRATA: the batch (and the bootstrap) equalise class means within that many principal strata,
        // as the privacy-target loop does; the stream's maps stay per class.
        if (int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_BATCH_STRATA"), out var strata))
            batchOptions = batchOptions with { Strata = strata };

        var data = DatasetLoader.Load(DatasetKind.MovieLens100K, dir);
        var split = LeaveOneOutSplit.Create(data, 99, 2025);
        var model = CachedModel(data, split);
        var audited = data.Attributes.Select((a, i) => new AuditedAttribute(a.Name, a.ClassCount, data.Labels[i])).ToArray();
        var audit = new AuditOptions { Seed = 1, Attackers = attackers };
        var lines = new StringBuilder();
        void Print(string line)
        {
            output.WriteLine(line);
            lines.AppendLine(line);
        }

        string Row(string name, EmbeddingMatrix users, string extra = "")
        {
            var privacy = PrivacyAudit.Run(users, audited, audit);
            var ndcg = UtilityEvaluator.Evaluate(users, model.Items, split.TestCandidates).Ndcg10;
            var ba = string.Join(" ", privacy.Attributes.Select(a => a.WorstBalancedAccuracy.ToString("F4", CultureInfo.InvariantCulture)))
                + "  |adv| " + string.Join(" ", privacy.Attributes.Select(a => a.MaxAbsAdvantage.ToString("F4", CultureInfo.InvariantCulture)));
            return string.Create(CultureInfo.InvariantCulture, $"{name,-28} {ba}   {ndcg:F4} {extra}");
        }

        Print($"ML-100K MF d={model.Dim}, attackers {string.Join(",", attackers)}; refresh every {refresh} users; bootstrap share {bootstrapFraction:P0}; columns: worst BA {string.Join("/", data.Attributes.Select(a => a.Name))}, NDCG@10");
        Print(Row("original", model.Users));
        var replay0 = new StreamingReplay { Attributes = data.Attributes, BatchOptions = batchOptions };
        var batch = replay0.Batch(model.Users, data.Labels);
        Print(Row("batch DF (all users)", batch, $"msd {StreamingReplay.MeanSquaredDisplacement(batch, model.Users):F4}"));
        for (var seed = 1; seed <= seeds; seed++)
        {
            foreach (var variant in variants)
            {
                ct.ThrowIfCancellationRequested();
                if (!Variants.TryGetValue(variant, out var make))
                    throw new ArgumentException($"unknown variant '{variant}'; known: {string.Join(", ", Variants.Keys)}");
                var replay = new StreamingReplay
                {
                    Attributes = data.Attributes,
                    RefreshEvery = refresh,
                    Seed = seed,
                    BootstrapFraction = variant == "cold" ? 0 : bootstrapFraction,
                    BatchOptions = batchOptions,
                    ReseatGrowth = reseatGrowth,
                    ReseatCapsClassOffsets = reseatHeld,
                };
                var factory = make();
                var result = factory is null
                    ? new StreamingReplay.Result(IdentityStream(replay, model.Users, data.Labels), 0, 0, 0, 0, 0, 0)
                    : replay.Run(model.Users, data.Labels, factory);
                Print(Row($"stream {variant} s{seed}", result.Served,
                    string.Create(CultureInfo.InvariantCulture,
                        $"msd {StreamingReplay.MeanSquaredDisplacement(result.Served, model.Users):F4}; {result.Builds} builds {result.BuildMilliseconds:F1} ms; {result.CloakMicroseconds:F1} us/user; unprotected {result.UnprotectedCalls}")));
            }
        }
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "attrcloak-stream-experiment.txt"), lines.ToString());
    }

    /// <summary>
    /// "gender=0.72,age=0.278,occupation=0.383": the strengths a privacy-target run chose (`cloak --privacy-target`
    /// prints them), as the loop applies them (noise-matched, exact means, no covariance stage).
    /// </summary>
    private static AttrCloak.Learning.Unlearning.CloakOptions LoopStrengths(string spec)
    {
        var pairs = spec.Split(',', StringSplitOptions.TrimEntries).Select(p => p.Split('=')).ToArray();
        return AttrCloak.Learning.Unlearning.TargetedCloaker.CandidateOptions(StreamingReplay.DataFreePreset, pairs.Select(p => p[0]).ToArray(),
            pairs.Select(p =>
            {
                var mc = p[1].Split(':');
                return new AttrCloak.Learning.Unlearning.AttributeStrength(double.Parse(mc[0], CultureInfo.InvariantCulture),
                    mc.Length > 1 ? double.Parse(mc[1], CultureInfo.InvariantCulture) : 0);
            }).ToArray(), strata: 1);
    }

    /// <summary>Bootstrap DF as usual but streamed users served uncloaked: shows the gap the re-cloak must close.</summary>
    private static EmbeddingMatrix IdentityStream(StreamingReplay replay, EmbeddingMatrix original, int[][] labels)
    {
        var n = original.Rows;
        var order = Enumerable.Range(0, n).ToArray();
        new Random(replay.Seed).Shuffle(order);
        var bootstrap = order[..(n / 2)];
        var bootServed = new AttrCloak.Learning.Unlearning.Cloaker().Cloak(original.SelectRows(bootstrap),
            replay.Attributes.Select((a, i) => new LabeledAttribute(a, bootstrap.Select(u => labels[i][u]).ToArray())).ToArray(),
            replay.BatchOptions).Embeddings;
        var served = original.Clone();
        for (var i = 0; i < bootstrap.Length; i++) bootServed.Row(i).CopyTo(served.Row(bootstrap[i]));
        return served;
    }

    /// <summary>The MF backbone of seed 1, trained once and kept in the temp folder across runs.</summary>
    private static TrainedModel CachedModel(RecDataset data, LeaveOneOutSplit split)
    {
        var cache = Path.Combine(Path.GetTempPath(), "attrcloak-cloak-experiment", "mf-ml100k-seed1");
        if (File.Exists(Path.Combine(cache, TrainedModel.MetadataFile))) return TrainedModel.Load(cache);
        var model = new MfTrainer(new BackboneTrainingOptions { Seed = 1 }).Train(data, split);
        model.Save(cache);
        return model;
    }
}
