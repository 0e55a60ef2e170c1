using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Audit;

/// <summary>Knobs of <see cref="ShadowAuditProbe"/>.</summary>
public sealed record ShadowAuditOptions
{
    /// <summary>
    /// Attackers of the loop's audits: the linear floor and its calibrated variant (below-chance leakage) and the
    /// paper's MLP, the three that found the most on ML-100K and on the noise control. The final audit adds the wide
    /// MLP and the boosted trees (four times slower on 21 classes).
    /// </summary>
    public IReadOnlyList<string> Attackers { get; init; } = ["lr", "lr+cal", "mlp"];

    /// <summary>Folds of the loop's audits (every user is scored by attackers that never saw it).</summary>
    public int Folds { get; init; } = 5;

    /// <summary>
    /// Seed of the loop's folds and fits. Distinct from any final audit's seed on purpose: the loop must not stop on
    /// the very folds it is later judged by.
    /// </summary>
    public int Seed { get; init; } = 7919;

    /// <summary>Audit at most this many users (a fixed stratified-by-chance random subset) to bound the loop's cost on large populations.</summary>
    public int MaxUsers { get; init; } = 3000;

    /// <summary>Label permutations averaged for the noise floor.</summary>
    public int NoisePermutations { get; init; } = 2;

    public int MaxThreads { get; init; } = Environment.ProcessorCount;
}

/// <summary>
/// The privacy-target loop's probe (<see cref="IPrivacyProbe"/>): the user-disjoint k-fold audit of
/// <see cref="PrivacyAudit"/> with its own seed, reduced to each attribute's worst |advantage| over attackers and
/// decision rules (both directions). Its noise floor is the same statistic with the attribute's labels permuted among
/// the labelled users (embeddings unchanged), measured once on the first matrix it sees (the original).
/// </summary>
public sealed class ShadowAuditProbe : IPrivacyProbe
{
    private readonly IReadOnlyList<AuditedAttribute> _attributes;
    private readonly ShadowAuditOptions _options;
    private readonly int[]? _subset;
    private double[]? _noiseFloor;

    public ShadowAuditProbe(IReadOnlyList<AuditedAttribute> attributes, ShadowAuditOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        if (attributes.Count == 0) throw new ArgumentException("the probe needs at least one attribute");
        _options = options ?? new ShadowAuditOptions();
        var n = attributes[0].Labels.Length;
        if (n > _options.MaxUsers)
        {
            var rng = new Random(_options.Seed);
            var order = Enumerable.Range(0, n).ToArray();
            rng.Shuffle(order);
            _subset = order.Take(_options.MaxUsers).Order().ToArray();
            _attributes = attributes.Select(a => a with { Labels = _subset.Select(u => a.Labels[u]).ToArray() }).ToArray();
        }
        else _attributes = attributes;
    }

    /// <summary>Audits run so far (for reports).</summary>
    public int Audits { get; private set; }

    public PrivacyReading Measure(EmbeddingMatrix embeddings, CancellationToken ct) => Measure(embeddings, _options.Seed, ct);

    /// <summary>
    /// The same audit on other folds with other fits (its own seed, never the final audit's). Same attackers: the
    /// loop's thresholds come from their noise floor, and more attackers would read a higher maximum on noise alone.
    /// </summary>
    public PrivacyReading Confirm(EmbeddingMatrix embeddings, CancellationToken ct) => Measure(embeddings, _options.Seed + ConfirmationSeedOffset, ct);

    /// <summary>Added to the seed for the second audit (<see cref="Confirm"/>); a prime, so it meets no other seed offset.</summary>
    public const int ConfirmationSeedOffset = 104729;

    private PrivacyReading Measure(EmbeddingMatrix embeddings, int seed, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        var x = _subset is null ? embeddings : embeddings.SelectRows(_subset);
        var audit = new AuditOptions { Attackers = _options.Attackers, Folds = _options.Folds, Seed = seed, MaxThreads = _options.MaxThreads };
        _noiseFloor ??= NoiseFloor(x, audit with { Seed = _options.Seed }, ct);
        var result = PrivacyAudit.Run(x, _attributes, audit, ct: ct);
        Audits++;
        var cells = result.Attributes.Select(a => a.WorstCell()).ToArray();
        return new PrivacyReading(
            result.Attributes.Select(a => a.MaxAbsAdvantage).ToArray(),
            _noiseFloor,
            cells.Select(c => c.Attacker).ToArray())
        {
            WorstSignedAdvantage = cells.Select(c => c.SignedAdvantage).ToArray(),
        };
    }

    private double[] NoiseFloor(EmbeddingMatrix x, AuditOptions audit, CancellationToken ct)
    {
        var floor = new double[_attributes.Count];
        var rng = new Random(_options.Seed + 1);
        for (var p = 0; p < _options.NoisePermutations; p++)
        {
            var permuted = _attributes.Select(a => a.Permuted(rng)).ToArray();
            var result = PrivacyAudit.Run(x, permuted, audit with { Seed = audit.Seed + 17 * (p + 1) }, ct: ct);
            Audits++;
            for (var j = 0; j < floor.Length; j++) floor[j] += result.Attributes[j].MaxAbsAdvantage / _options.NoisePermutations;
        }
        return floor;
    }
}
