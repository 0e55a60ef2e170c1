using System.Diagnostics;
using AttrCloak.Audit;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Core.IO;
using AttrCloak.Learning.Backbones;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;

namespace AttrCloak.Cli.Experiments;

/// <summary>What `attrcloak reproduce` runs.</summary>
public sealed record ReproduceOptions
{
    public required DataSource Source { get; init; }
    public int Seeds { get; init; } = 5;
    public int FirstSeed { get; init; } = 1;
    public BackboneKind Backbone { get; init; } = BackboneKind.Mf;
    public BackboneTrainingOptions? Training { get; init; }
    public required CloakOptions DataFree { get; init; }
    public required CloakOptions DataDependent { get; init; }
    public AuditOptions Audit { get; init; } = new();
    public string? AttributeNames { get; init; }
    public bool SkipDataDependent { get; init; }

    /// <summary>
    /// Privacy as a target (issue 13): DF and DD run the closed loop of <see cref="TargetedCloaker"/> with these goals
    /// (epsilon, utility floor) instead of their fixed strength. Null = the fixed options.
    /// </summary>
    public PrivacyGoal? DataFreeGoal { get; init; }

    public PrivacyGoal? DataDependentGoal { get; init; }

    /// <summary>The loop's shadow audits (their own seed; never the final audit's folds).</summary>
    public ShadowAuditOptions Shadow { get; init; } = new();

    /// <summary>
    /// Also run AttrCloak-OT (the worker's per-class Gaussian maps cross-fitted over the batch, <see cref="CrossFittedTransport"/>):
    /// under <see cref="DataFreeGoal"/> when it is set (its loop and floor), else at full strength on every attribute.
    /// </summary>
    public bool Transport { get; init; } = true;

    /// <summary>Also run the defaults from before issue 13 (<see cref="CloakPresets.DataFreeV1"/>, <see cref="CloakPresets.DataDependentV1"/>) as extra rows.</summary>
    public bool CompareOldDefaults { get; init; }
}

/// <summary>One method's outcome for one seed.</summary>
public sealed record MethodRun(
    string Method, int Seed, RankingMetrics Utility, AuditResult Privacy, double CloakSeconds,
    [property: System.Text.Json.Serialization.JsonIgnore] CloakResult? Cloak)
{
    public CloakStopReason? StopReason => Cloak?.StopReason;
    public int? Iterations => Cloak?.Iterations;
    public IReadOnlyList<CloakIteration>? Trace => Cloak?.Trace;

    /// <summary>How the privacy-target loop ended (null for fixed-strength runs).</summary>
    public string? Target { get; init; }

    /// <summary>Cloaked (or original) user vectors; kept for export and plots, not serialised.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public EmbeddingMatrix? Embeddings { get; init; }
}

/// <summary>Wall time per phase, summed over seeds.</summary>
public sealed class PhaseTimer
{
    private readonly Dictionary<string, double> _seconds = new();
    public IReadOnlyDictionary<string, double> Seconds => _seconds;

    public T Time<T>(string phase, Func<T> work)
    {
        var sw = Stopwatch.StartNew();
        try { return work(); }
        finally { _seconds[phase] = _seconds.GetValueOrDefault(phase) + sw.Elapsed.TotalSeconds; }
    }
}

/// <summary>Everything `reproduce` measured.</summary>
public sealed record ReproduceResult(
    string Dataset, string Source, int Users, int Items, int Interactions, BackboneKind Backbone,
    IReadOnlyList<string> Attributes, IReadOnlyList<int> Seeds, IReadOnlyList<MethodRun> Runs,
    IReadOnlyDictionary<string, double> PhaseSeconds, CloakOptions DataFreeOptions, CloakOptions DataDependentOptions)
{
    public const string Original = MethodNames.Original;
    public const string Dd = MethodNames.Dd;
    public const string Df = MethodNames.Df;
    public const string Ot = MethodNames.Ot;
    public const string DdOld = MethodNames.Dd + " (old defaults)";
    public const string DfOld = MethodNames.Df + " (old defaults)";

    /// <summary>The model and data of the first seed, for export and plots.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public RecDataset? Data { get; init; }
}

/// <summary>
/// Original, AttrCloak-DD, AttrCloak-DF and AttrCloak-OT end to end for each seed: train the backbone, audit and evaluate
/// the original embeddings, cloak them each way, audit and evaluate again. The seed drives backbone training,
/// negative sampling and the attackers' folds; the leave-one-out candidate lists are fixed by the data source so
/// that every method and seed is ranked on the same lists.
/// </summary>
public sealed class ReproducePipeline(IReproduceProgress progress)
{
    public ReproduceResult Run(ReproduceOptions options, CancellationToken ct = default)
    {
        var timer = new PhaseTimer();
        var data = timer.Time("load data", () => options.Source.Load());
        var attributeIndices = AttributeSelection.Resolve(data, options.AttributeNames);
        var protectedAttributes = AttributeSelection.Protected(data, attributeIndices);
        var audited = AttributeSelection.Audited(data, attributeIndices);
        var split = timer.Time("split", () => options.Source.Split(data));
        var seeds = Enumerable.Range(options.FirstSeed, options.Seeds).ToArray();
        var runs = new List<MethodRun>();
        var methodsPerSeed = (options.SkipDataDependent ? 2 : 3) + (options.Transport ? 1 : 0) + (options.CompareOldDefaults ? (options.SkipDataDependent ? 1 : 2) : 0);
        progress.Started(seeds.Length, methodsPerSeed);

        foreach (var seed in seeds)
        {
            ct.ThrowIfCancellationRequested();
            var training = (options.Training ?? BackboneTrainingOptions.DefaultsFor(options.Backbone)) with { Seed = seed };
            var trainer = BackboneTrainers.Create(options.Backbone, training);
            var model = timer.Time("train backbone", () =>
                trainer.Train(data, split, progress.Training(seed), ct));
            var audit = options.Audit with { Seed = seed };

            runs.Add(Measure(ReproduceResult.Original, seed, model.Users, null, 0));

            if (!options.SkipDataDependent)
            {
                var ddOptions = options.DataDependent with { Mode = CloakMode.DataDependent };
                if (options.DataDependentGoal is { } ddGoal)
                {
                    var dd = timer.Time("cloak dd", () => TargetedCloaking.Run(model, split, protectedAttributes, audited, ddOptions, ddGoal,
                        options.Shadow, seed, progress.Targeting(seed, ReproduceResult.Dd), ct));
                    runs.Add(Measure(ReproduceResult.Dd, seed, dd.Embeddings, dd.Cloak, dd.WallTime.TotalSeconds) with { Target = dd.Describe() });
                }
                else
                {
                    using var recLoss = RecommendationLosses.For(model, split, seed, ddOptions.RecommendationReduction);
                    var dd = timer.Time("cloak dd", () => new Cloaker().Cloak(model.Users, protectedAttributes,
                        ddOptions, recLoss, progress.Cloaking(seed, ReproduceResult.Dd), ct));
                    runs.Add(Measure(ReproduceResult.Dd, seed, dd.Embeddings, dd, dd.WallTime.TotalSeconds));
                }
            }

            var dfOptions = options.DataFree with { Mode = CloakMode.DataFree };
            if (options.DataFreeGoal is { } dfGoal)
            {
                var df = timer.Time("cloak df", () => TargetedCloaking.Run(model, split, protectedAttributes, audited, dfOptions, dfGoal,
                    options.Shadow, seed, progress.Targeting(seed, ReproduceResult.Df), ct));
                runs.Add(Measure(ReproduceResult.Df, seed, df.Embeddings, df.Cloak, df.WallTime.TotalSeconds) with { Target = df.Describe() });
            }
            else
            {
                var df = timer.Time("cloak df", () => new Cloaker().Cloak(model.Users, protectedAttributes,
                    dfOptions, null, progress.Cloaking(seed, ReproduceResult.Df), ct));
                runs.Add(Measure(ReproduceResult.Df, seed, df.Embeddings, df, df.WallTime.TotalSeconds));
            }

            if (options.Transport)
            {
                if (options.DataFreeGoal is { } otGoal)
                {
                    var ot = timer.Time("cloak ot", () => TargetedCloaking.RunTransport(model, split, protectedAttributes, audited, otGoal,
                        options.Shadow, seed, progress.Targeting(seed, ReproduceResult.Ot), ct));
                    runs.Add(Measure(ReproduceResult.Ot, seed, ot.Embeddings, null, ot.WallTime.TotalSeconds) with { Target = ot.Describe() });
                }
                else
                {
                    var clock = Stopwatch.StartNew();
                    var full = protectedAttributes.Select(_ => new AttributeStrength(1, 0)).ToArray();
                    var ot = timer.Time("cloak ot", () => new CrossFittedTransport(model.Users, protectedAttributes, seed: seed).Run(full, ct));
                    runs.Add(Measure(ReproduceResult.Ot, seed, ot.Embeddings, null, clock.Elapsed.TotalSeconds));
                }
            }

            if (options.CompareOldDefaults)
            {
                if (!options.SkipDataDependent)
                {
                    using var summed = RecommendationLosses.For(model, split, seed);
                    var ddOld = timer.Time("cloak dd (old)", () => new Cloaker().Cloak(model.Users, protectedAttributes,
                        CloakPresets.DataDependentV1, summed, progress.Cloaking(seed, ReproduceResult.DdOld), ct));
                    runs.Add(Measure(ReproduceResult.DdOld, seed, ddOld.Embeddings, ddOld, ddOld.WallTime.TotalSeconds));
                }
                var dfOld = timer.Time("cloak df (old)", () => new Cloaker().Cloak(model.Users, protectedAttributes,
                    CloakPresets.DataFreeV1, null, progress.Cloaking(seed, ReproduceResult.DfOld), ct));
                runs.Add(Measure(ReproduceResult.DfOld, seed, dfOld.Embeddings, dfOld, dfOld.WallTime.TotalSeconds));
            }

            MethodRun Measure(string method, int s, EmbeddingMatrix users, CloakResult? cloak, double seconds)
            {
                var utility = timer.Time("evaluate utility", () => UtilityEvaluator.Evaluate(users, model.Items, split.TestCandidates));
                var privacy = timer.Time("audit", () => PrivacyAudit.Run(users, audited, audit, progress.Auditing(s, method), ct));
                progress.MethodDone(s, method);
                return new MethodRun(method, s, utility, privacy, seconds, cloak) { Embeddings = users };
            }
        }

        return new ReproduceResult(data.Name, options.Source.Describe(), data.UserCount, data.ItemCount,
            data.Interactions.Count, options.Backbone, audited.Select(a => a.Name).ToArray(), seeds, runs,
            timer.Seconds, options.DataFree, options.DataDependent) { Data = data };
    }

    /// <summary>Writes users.csv and the original/cloaked .npy files of the first seed (one folder per method).</summary>
    public static IReadOnlyList<string> Export(ReproduceResult result, string dir)
    {
        var data = result.Data ?? throw new InvalidOperationException("the result holds no data set");
        var first = result.Seeds[0];
        var original = result.Runs.First(r => r.Seed == first && r.Method == ReproduceResult.Original).Embeddings!;
        var written = new List<string>();
        foreach (var run in result.Runs.Where(r => r.Seed == first && r.Method != ReproduceResult.Original))
        {
            var target = Path.Combine(dir, run.Method.ToLowerInvariant().Replace(" (old defaults)", "-old", StringComparison.Ordinal));
            EmbeddingExport.Write(target, data, original, run.Embeddings);
            written.Add(target);
        }
        return written;
    }
}

/// <summary>Progress sink for the pipeline (console bars in the CLI, nothing in tests).</summary>
public interface IReproduceProgress
{
    void Started(int seeds, int methodsPerSeed);
    IProgress<TrainingProgress>? Training(int seed);
    IProgress<CloakIteration>? Cloaking(int seed, string method);
    IProgress<AuditProgress>? Auditing(int seed, string method);
    void MethodDone(int seed, string method);

    /// <summary>Rounds of the privacy-target loop.</summary>
    IProgress<TargetStep>? Targeting(int seed, string method) => null;
}

/// <summary>Reports nothing.</summary>
public sealed class SilentProgress : IReproduceProgress
{
    public void Started(int seeds, int methodsPerSeed) { }
    public IProgress<TrainingProgress>? Training(int seed) => null;
    public IProgress<CloakIteration>? Cloaking(int seed, string method) => null;
    public IProgress<AuditProgress>? Auditing(int seed, string method) => null;
    public void MethodDone(int seed, string method) { }
}
