using System.Diagnostics;
using AttrCloak.Audit;
using AttrCloak.Cli.Rendering;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Backbones;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;

namespace AttrCloak.Cli.Experiments;

/// <summary>One data set of the generalization family.</summary>
/// <param name="Name">Short name for the table.</param>
/// <param name="Source">Where the data comes from (null for the noise control).</param>
/// <param name="Backbone">The backbone trained on it.</param>
/// <param name="Dimension">Embedding dimension of the backbone (and of the noise).</param>
/// <param name="NoiseControl">True for the noise control: i.i.d. Gaussian embeddings with <paramref name="Source"/>'s labels.</param>
public sealed record HarnessMember(string Name, DataSource Source, BackboneKind Backbone, int Dimension, bool NoiseControl = false)
{
    public string Describe() => NoiseControl
        ? $"noise control: N(0, 1) in {Dimension} dims with the labels of {Source.Describe()}"
        : $"{Source.Describe()}{(Source.SyntheticStrength is { } s ? $", strength {s}" : "")}{(Source.SyntheticImbalance is { } i ? $", imbalance {i}" : "")}{(Source.SyntheticClasses is { } k ? $", {k} occupations" : "")}, {Backbone} d={Dimension}";
}

/// <summary>What `attrcloak harness` runs.</summary>
public sealed record HarnessOptions
{
    public required IReadOnlyList<HarnessMember> Members { get; init; }

    /// <summary>The privacy target the cloaks aim for (the loop's epsilon).</summary>
    public double Epsilon { get; init; } = 0.03;

    /// <summary>A member passes when every attribute's worst |advantage| is at most this (issue 13: 0.05).</summary>
    public double PassEpsilon { get; init; } = 0.05;

    /// <summary>Noise control passes when every attacker's mean signed advantage is within this of chance.</summary>
    public double NoiseEpsilon { get; init; } = 0.02;

    public double DataFreeFloor { get; init; } = 0.97;
    public double DataDependentFloor { get; init; } = 0.98;

    /// <summary>The final audit's attackers (default: all six).</summary>
    public IReadOnlyList<string> Attackers { get; init; } = AttrCloak.Audit.Attackers.AttackerCatalog.DefaultNames;

    /// <summary>The loop's shadow audits.</summary>
    public ShadowAuditOptions Shadow { get; init; } = new();

    /// <summary>The final audit scores a fixed random subset of at most this many users (all of them when fewer).</summary>
    public int AuditMaxUsers { get; init; } = 4000;

    public int Seed { get; init; } = 1;
    public bool SkipDataDependent { get; init; }

    /// <summary>Also run AttrCloak-OT (<see cref="CrossFittedTransport"/>) under the same loop, with the data-free floor.</summary>
    public bool Transport { get; init; } = true;

    /// <summary>Also run the production rollout (<see cref="ServedStream"/>) and audit what the guard serves.</summary>
    public bool ServedStream { get; init; } = true;

    /// <summary>The served population may leak at most this much more than batch DF, per attribute (issue 13: +0.02).</summary>
    public double StreamTolerance { get; init; } = Experiments.ServedStream.Tolerance;
    public int NoiseDraws { get; init; } = 3;

    /// <summary>Strata of the leading principal component the cloaks equalise class means within (<see cref="PrincipalStrata"/>).</summary>
    public int Strata { get; init; } = CloakPresets.TargetStrata;
}

/// <summary>Headline figures of one attribute under one method.</summary>
/// <param name="Attribute">Attribute name.</param>
/// <param name="WorstAbsAdvantage">The largest |balanced accuracy - chance| over attackers and decision rules.</param>
/// <param name="SignedAdvantage">The signed value that reached it (negative: systematically wrong).</param>
/// <param name="Attacker">Who reached it.</param>
/// <param name="MaxAuc">The highest AUC over attackers (chance 0.5).</param>
public sealed record AttributeFigure(string Attribute, double WorstAbsAdvantage, double SignedAdvantage, string Attacker, double? MaxAuc);

/// <summary>
/// One method (Original, AttrCloak-DF, AttrCloak-DD) on one member; test NDCG@10, its ratio to the original's and the
/// ratio's paired standard error over users (one test item each).
/// </summary>
public sealed record MethodFigures(string Method, IReadOnlyList<AttributeFigure> Attributes, double Ndcg10, double Ndcg10Ratio,
    double? Floor, string? Loop, double Seconds, double Ndcg10RatioStandardError = 0)
{
    public double Worst => Attributes.Max(a => a.WorstAbsAdvantage);
}

/// <summary>One member's outcome.</summary>
/// <param name="Member">The member.</param>
/// <param name="Users">Users in the data set (the noise control: after repeating the labels).</param>
/// <param name="AuditedUsers">Users the final audit scored.</param>
/// <param name="Methods">Original and each cloak, with their figures (empty for the noise control).</param>
/// <param name="Noise">The noise control's figures (noise-control member only).</param>
/// <param name="Pass">Whether the member passed.</param>
/// <param name="Verdict">Why, in one line.</param>
/// <param name="Seconds">Wall time.</param>
/// <param name="StreamNoise">The noise control through the served stream (half seeded, half streamed), when it ran.</param>
/// <param name="TransportNoise">The noise control through AttrCloak-OT at full strength, when it ran.</param>
/// <param name="Chance">The final audit of the original embeddings with every attribute's labels permuted: what the
/// same attackers read on labels that carry nothing, the audit's resolution on this member (not for the noise control).</param>
public sealed record MemberResult(HarnessMember Member, int Users, int AuditedUsers, IReadOnlyList<MethodFigures> Methods,
    NoiseControlResult? Noise, bool Pass, string Verdict, double Seconds, NoiseControlResult? StreamNoise = null,
    NoiseControlResult? TransportNoise = null, IReadOnlyList<AttributeFigure>? Chance = null)
{
    /// <summary>The noise control's worst |mean advantage| over the preset, the served stream and OT; null for other members.</summary>
    public double? WorstNoise => Noise is null ? null
        : new[] { Noise, StreamNoise, TransportNoise }.Where(n => n is not null).Max(n => n!.Worst);
}

/// <summary>Progress of the harness, one line at a time.</summary>
public interface IHarnessProgress
{
    void Report(string line);
}

/// <summary>
/// The generalization harness of issue 13: the whole evaluation (train, audit, privacy-target DF and DD, audit, NDCG)
/// over a family of data sets, one pass/fail row per member. The headline per attribute is the worst |advantage|
/// over every attacker and decision rule in both directions, with the best AUC beside it. Nothing here is tuned to a
/// member: every cloak runs the same privacy-target loop with the same epsilon and floors.
/// </summary>
public sealed class Harness(IHarnessProgress progress)
{
    public const string Original = MethodNames.Original;
    public const string Df = MethodNames.Df;
    public const string Dd = MethodNames.Dd;
    public const string Ot = MethodNames.Ot;
    public const string Served = "Served stream (DF)";
    public const string ServedOt = "Served stream (OT)";

    /// <summary>The small family CI runs: one synthetic member, 600 users, d = 32.</summary>
    public static IReadOnlyList<HarnessMember> SmallFamily() =>
    [
        new("synth-600-d32", new DataSource("synthetic", null, 600), BackboneKind.Mf, 32),
    ];

    /// <summary>
    /// The full family: ML-100K with MF and LightGCN when <paramref name="ml100k"/> is given, synthetic sets varying
    /// users (500 to 20,000), dimension (32 to 128), attribute strength, class imbalance and class count, and the noise
    /// control (ML-100K's labels when present, else synthetic ones).
    /// </summary>
    public static IReadOnlyList<HarnessMember> FullFamily(string? ml100k)
    {
        var members = new List<HarnessMember>();
        if (ml100k is not null)
        {
            var source = new DataSource("ml-100k", ml100k);
            members.Add(new("ml100k-mf", source, BackboneKind.Mf, 64));
            members.Add(new("ml100k-lightgcn", source, BackboneKind.LightGcn, 64));
        }
        var synthetic = new DataSource("synthetic", null, 2000);
        members.Add(new("synth-500", synthetic with { SyntheticUsers = 500 }, BackboneKind.Mf, 64));
        members.Add(new("synth-2000", synthetic, BackboneKind.Mf, 64));
        members.Add(new("synth-20000", synthetic with { SyntheticUsers = 20000 }, BackboneKind.Mf, 64));
        members.Add(new("synth-d32", synthetic, BackboneKind.Mf, 32));
        members.Add(new("synth-d128", synthetic, BackboneKind.Mf, 128));
        members.Add(new("synth-strong", synthetic with { SyntheticStrength = 0.5 }, BackboneKind.Mf, 64));
        members.Add(new("synth-weak", synthetic with { SyntheticStrength = 0.12 }, BackboneKind.Mf, 64));
        members.Add(new("synth-imbalanced", synthetic with { SyntheticImbalance = 2.0 }, BackboneKind.Mf, 64));
        members.Add(new("synth-k5", synthetic with { SyntheticClasses = 5 }, BackboneKind.Mf, 64));
        members.Add(new("synth-k40", synthetic with { SyntheticClasses = 40, SyntheticUsers = 4000 }, BackboneKind.Mf, 64));
        members.Add(new("noise-control", ml100k is not null ? new DataSource("ml-100k", ml100k) : synthetic with { SyntheticUsers = 1000 },
            BackboneKind.Mf, 64, NoiseControl: true));
        return members;
    }

    public IReadOnlyList<MemberResult> Run(HarnessOptions options, CancellationToken ct = default)
    {
        var results = new List<MemberResult>();
        foreach (var member in options.Members)
        {
            ct.ThrowIfCancellationRequested();
            progress.Report($"member {member.Name}: {member.Describe()}");
            var result = member.NoiseControl ? RunNoise(member, options, ct) : RunMember(member, options, ct);
            progress.Report($"member {member.Name}: {(result.Pass ? "PASS" : "FAIL")} ({result.Verdict}) in {result.Seconds:F0} s");
            results.Add(result);
        }
        return results;
    }

    private MemberResult RunMember(HarnessMember member, HarnessOptions options, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var data = member.Source.Load();
        var indices = AttributeSelection.Resolve(data, null);
        var protectedAttributes = AttributeSelection.Protected(data, indices);
        var audited = AttributeSelection.Audited(data, indices);
        var split = member.Source.Split(data);
        var training = BackboneTrainingOptions.DefaultsFor(member.Backbone) with { Seed = options.Seed, Dim = member.Dimension };
        progress.Report($"  training {member.Backbone} (d={member.Dimension}) on {data.UserCount} users, {data.Interactions.Count} interactions");
        var model = BackboneTrainers.Create(member.Backbone, training).Train(data, split, null, ct);

        var subset = Subset(data.UserCount, options.AuditMaxUsers, options.Seed);
        var auditedSubset = subset is null ? audited : audited.Select(a => a with { Labels = subset.Select(u => a.Labels[u]).ToArray() }).ToArray();
        var audit = new AuditOptions { Attackers = options.Attackers, Seed = options.Seed };
        var originalNdcg = UtilityEvaluator.Ndcg10PerUser(model.Users, model.Items, split.TestCandidates);

        MethodFigures Measure(string method, EmbeddingMatrix users, double? floor, string? loop, double seconds)
        {
            progress.Report($"  auditing {method} ({(subset?.Length ?? users.Rows)} users, {options.Attackers.Count} attackers)");
            var x = subset is null ? users : users.SelectRows(subset);
            var result = PrivacyAudit.Run(x, auditedSubset, audit, ct: ct);
            var ndcg = UtilityEvaluator.Ndcg10PerUser(users, model.Items, split.TestCandidates);
            var ratio = PairedRatio.Of(originalNdcg, ndcg);
            return new MethodFigures(method, result.Attributes.Select(Figure).ToArray(), ndcg.Where(v => !double.IsNaN(v)).DefaultIfEmpty(0).Average(),
                ratio.Ratio, floor, loop, seconds, ratio.StandardError);
        }

        var methods = new List<MethodFigures> { Measure(Original, model.Users, null, null, 0) };
        // The audit's resolution: the same attackers on the original embeddings with labels that carry nothing. At a few
        // hundred users the worst of a dozen cells reads several hundredths on chance alone, and the bar reads against it.
        progress.Report("  auditing the original with permuted labels (the audit's resolution)");
        var permutation = new Random(options.Seed + 31);
        var chance = PrivacyAudit.Run(subset is null ? model.Users : model.Users.SelectRows(subset),
            auditedSubset.Select(a => a.Permuted(permutation)).ToArray(), audit, ct: ct).Attributes.Select(Figure).ToArray();
        var names = protectedAttributes.Select(a => a.Name).ToArray();
        foreach (var (method, preset, floor) in new[]
                 {
                     (Df, CloakPresets.DataFree, options.DataFreeFloor),
                     (Dd, CloakPresets.DataDependent, options.DataDependentFloor),
                 })
        {
            if (method == Dd && options.SkipDataDependent) continue;
            progress.Report($"  {method}: privacy target {options.Epsilon}, utility floor {floor}");
            var targeted = TargetedCloaking.Run(model, split, protectedAttributes, audited, preset, new PrivacyGoal(options.Epsilon, floor) { Strata = options.Strata },
                options.Shadow, options.Seed, new InlineProgress<TargetStep>(s => progress.Report("    " + TargetedCloaking.Describe(s, names))), ct);
            progress.Report($"    {targeted.Describe()}");
            methods.Add(Measure(method, targeted.Embeddings, floor, targeted.Describe(), targeted.WallTime.TotalSeconds));
            if (method == Df && options.ServedStream)
            {
                progress.Report($"  {Served}: half the users seeded with that cloak, the rest streamed through the worker's maps");
                var stream = ServedStream.Run(model.Users, protectedAttributes, TargetedCloaker.CandidateOptions(preset, names, targeted.Strengths, options.Strata),
                    options.Seed, ct);
                var loop = $"{stream.BootstrapUsers} bootstrapped with DF's strengths, {stream.StreamedUsers} streamed";
                methods.Add(Measure(Served, stream.Served, floor, loop, stream.Seconds));
            }
        }

        if (options.Transport)
        {
            progress.Report($"  {Ot}: the worker's maps cross-fitted over {CrossFittedTransport.DefaultFolds} folds; privacy target {options.Epsilon}, utility floor {options.DataFreeFloor}");
            var targeted = TargetedCloaking.RunTransport(model, split, protectedAttributes, audited, new PrivacyGoal(options.Epsilon, options.DataFreeFloor) { Strata = options.Strata },
                options.Shadow, options.Seed, new InlineProgress<TargetStep>(s => progress.Report("    " + TargetedCloaking.Describe(s, names))), ct);
            progress.Report($"    {targeted.Describe()}");
            methods.Add(Measure(Ot, targeted.Embeddings, options.DataFreeFloor, targeted.Describe(), targeted.WallTime.TotalSeconds));
            if (options.ServedStream)
            {
                progress.Report($"  {ServedOt}: half the users seeded with that cloak, the rest streamed through the worker's maps at its strengths");
                var stream = ServedStream.RunTransport(model.Users, protectedAttributes, targeted.Embeddings, targeted.Strengths, options.Seed, ct);
                var loop = $"{stream.BootstrapUsers} bootstrapped with OT's rows, {stream.StreamedUsers} streamed at its strengths";
                methods.Add(Measure(ServedOt, stream.Served, options.DataFreeFloor, loop, stream.Seconds));
            }
        }

        var failures = Failures(methods, options);
        return new MemberResult(member, data.UserCount, subset?.Length ?? data.UserCount, methods, null, failures.Count == 0,
            failures.Count == 0 ? "every attribute within the bar, utility above the floors" : string.Join("; ", failures), clock.Elapsed.TotalSeconds,
            Chance: chance);
    }

    /// <summary>
    /// Why a member fails, empty when it passes: every cloak (DF, DD, OT, the served streams) within the bar on every
    /// attribute and at or above its utility floor on the test split, and each served stream within
    /// <see cref="HarnessOptions.StreamTolerance"/> of its batch cloak (DF's, OT's) on every attribute.
    /// </summary>
    public static IReadOnlyList<string> Failures(IReadOnlyList<MethodFigures> methods, HarnessOptions options)
    {
        ArgumentNullException.ThrowIfNull(methods);
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        foreach (var m in methods.Where(m => m.Method != Original))
        {
            foreach (var a in m.Attributes.Where(a => a.WorstAbsAdvantage > options.PassEpsilon))
                failures.Add($"{m.Method} {a.Attribute} |adv| {a.WorstAbsAdvantage:F3}");
            if (m.Floor is { } f && m.Ndcg10Ratio < f) failures.Add($"{m.Method} NDCG@10 {m.Ndcg10Ratio:F3}x < {f}x");
        }
        foreach (var (stream, batchMethod) in new[] { (Served, Df), (ServedOt, Ot) })
        {
            if (methods.FirstOrDefault(m => m.Method == stream) is not { } served || methods.FirstOrDefault(m => m.Method == batchMethod) is not { } batch) continue;
            foreach (var a in served.Attributes)
            {
                var reference = batch.Attributes.First(b => b.Attribute == a.Attribute).WorstAbsAdvantage;
                if (a.WorstAbsAdvantage > reference + options.StreamTolerance)
                    failures.Add($"{stream} {a.Attribute} |adv| {a.WorstAbsAdvantage:F3} > batch {reference:F3} + {options.StreamTolerance}");
            }
        }
        return failures;
    }

    private MemberResult RunNoise(HarnessMember member, HarnessOptions options, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var data = member.Source.Load();
        var indices = AttributeSelection.Resolve(data, null);
        // Fewer than 2,000 users: every user's label triple repeated, so that one audit's chance spread (about 0.02 at
        // ML-100K's 943 users) does not drown the +/- 0.02 bar; the joint label distribution is the data set's.
        var repeat = data.UserCount < 2000 ? (int)Math.Ceiling(2000.0 / data.UserCount) : 1;
        var protectedAttributes = AttributeSelection.Protected(data, indices)
            .Select(a => a with { Labels = Enumerable.Repeat(a.Labels, repeat).SelectMany(l => l).ToArray() }).ToArray();
        var audited = AttributeSelection.Audited(data, indices)
            .Select(a => a with { Labels = Enumerable.Repeat(a.Labels, repeat).SelectMany(l => l).ToArray() }).ToArray();
        // The preset at FULL strength on every attribute: the strongest cloak the loop can ever choose, so the
        // control bounds what the loop may create anywhere (on noise the loop itself would stop at strength 0).
        var options0 = CloakPresets.DataFree with { Strata = options.Strata };
        var controlOptions = new NoiseControlOptions
        {
            Dimension = member.Dimension, Draws = options.NoiseDraws, Seed = options.Seed,
            Audit = new AuditOptions { Attackers = options.Attackers, Seed = options.Seed }, AuditOriginal = true,
        };
        var report = new InlineProgress<string>(m => progress.Report("  " + m));
        var control = NoiseControl.Run(audited, controlOptions,
            (noise, draw) => new Cloaker().Cloak(noise, protectedAttributes, options0 with { TargetSeed = options0.TargetSeed + draw }, ct: ct).Embeddings,
            report, ct);
        // The same through the guard: half seeded with the preset, half streamed through the worker's maps.
        NoiseControlResult? stream = null;
        if (options.ServedStream)
        {
            progress.Report($"  {Served}: the same noise, half seeded with the preset, half streamed through the worker's maps");
            stream = NoiseControl.Run(audited, controlOptions with { AuditOriginal = false },
                (noise, draw) => ServedStream.Run(noise, protectedAttributes, options0 with { TargetSeed = options0.TargetSeed + draw }, options.Seed + draw, ct).Served,
                report, ct);
        }
        // And through AttrCloak-OT at full strength on every attribute (the strongest the loop can choose).
        NoiseControlResult? transport = null;
        if (options.Transport)
        {
            progress.Report($"  {Ot}: the same noise, every attribute at full strength");
            var full = protectedAttributes.Select(_ => new AttributeStrength(1, 0)).ToArray();
            transport = NoiseControl.Run(audited, controlOptions with { AuditOriginal = false },
                (noise, draw) => new CrossFittedTransport(noise, protectedAttributes, seed: options.Seed + draw).Run(full, ct).Embeddings,
                report, ct);
        }
        var verdict = $"worst |mean advantage| of the cloaked noise {control.Worst:F3}"
            + (stream is null ? "" : $", through the served stream {stream.Worst:F3}")
            + (transport is null ? "" : $", through {Ot} {transport.Worst:F3}")
            + $" (uncloaked noise {control.Attributes.Max(a => a.WorstOriginal):F3}) over {control.Draws} draws";
        var result = new MemberResult(member, data.UserCount * repeat, data.UserCount * repeat, [], control, false, verdict, clock.Elapsed.TotalSeconds, stream, transport);
        return result with { Pass = result.WorstNoise <= options.NoiseEpsilon };
    }

    private static AttributeFigure Figure(AttributeAudit a)
    {
        var (who, signed) = a.WorstCell();
        var auc = a.Attackers.Where(s => s.Auc is not null).Select(s => s.Auc!.Value).DefaultIfEmpty(double.NaN).Max();
        return new AttributeFigure(a.Name, Math.Abs(signed), signed, who, double.IsNaN(auc) ? null : auc);
    }

    /// <summary>A fixed random subset of the users (sorted), or null when all of them fit.</summary>
    private static int[]? Subset(int users, int max, int seed)
    {
        if (users <= max) return null;
        var order = Enumerable.Range(0, users).ToArray();
        new Random(seed + 4242).Shuffle(order);
        return order.Take(max).Order().ToArray();
    }
}
