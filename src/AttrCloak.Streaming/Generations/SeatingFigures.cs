using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Generations;

/// <summary>
/// What the poisoning defences learn about a seated generation from its stored users (docs/threat-model.md): the input
/// domain of their originals, each class's shift weight (the ceiling of the maps' weights until the next seating), and how
/// far the maps of its seated statistics move them (the displacement cap's base:
/// the maps are what the cap bounds, and right after a seating they are built from the seated population only).
/// One place for both, used at each seating and for a bootstrapped generation that has neither yet. A re-seating of a
/// generation that has figures already never widens its band nor raises a class's shift weight (<see cref="Reseating"/>):
/// the statistics it is computed from may be poisoned by then, the first seating's are what the band trusts.
/// </summary>
internal static class SeatingFigures
{
    /// <summary>
    /// Whether seating <paramref name="generation"/> now is a re-seating: it has its figures from an earlier seating (or
    /// its bootstrap), which bound this one (<see cref="CapReseating"/>, <see cref="Carried(SeatedDisplacement, SeatedDisplacement?)"/>,
    /// <see cref="Carried(IReadOnlyDictionary{string, double[]}?, IReadOnlyDictionary{string, double[]}?)"/>; its batch
    /// cloak removes no class offset beyond the class's cap, <see cref="ReseatingKeepFloors"/>).
    /// </summary>
    public static bool Reseating(Generation generation) => generation is { Displacement: not null };

    /// <summary>
    /// The keep floors of a re-seating of <paramref name="generation"/> over <paramref name="snapshot"/> (its statistics
    /// now): each class keeps the share of its offset beyond the cap its last seating recorded
    /// (<see cref="ClassOffsetCaps.KeepFloors"/>). Null when this is no re-seating or no caps were recorded.
    /// </summary>
    public static IReadOnlyDictionary<string, double[]>? ReseatingKeepFloors(Generation generation, Statistics.StatisticsSnapshot snapshot) =>
        Reseating(generation) && generation.OffsetCaps is { } caps ? ClassOffsetCaps.KeepFloors(snapshot, caps) : null;

    /// <summary>
    /// Pulls each of a re-seating's <paramref name="cloaked"/> rows back within the displacement cap its generation had
    /// before it (<paramref name="previous"/>; null: a first seating, nothing to bound); returns how many it had to.
    /// </summary>
    public static int CapReseating(SeatedDisplacement? previous, Poisoning.InputOptions input, IReadOnlyList<float[]> originals, float[][] cloaked)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(originals);
        ArgumentNullException.ThrowIfNull(cloaked);
        var cap = input.DisplacementCapOf(previous);
        if (double.IsPositiveInfinity(cap)) return 0;
        var capped = 0;
        for (var u = 0; u < cloaked.Length; u++)
            if (DisplacementCap.Apply(originals[u], cloaked[u], cap)) capped++;
        return capped;
    }

    /// <summary>
    /// The seated displacement a seating records: <paramref name="measured"/> for a first seating, and for a re-seating
    /// never more than the generation had (<paramref name="previous"/>), so that a flood that triggers re-seatings cannot
    /// raise the cap either (the seating's own cloaks are within the previous cap already: <see cref="CapReseating"/>).
    /// </summary>
    public static SeatedDisplacement Carried(SeatedDisplacement measured, SeatedDisplacement? previous)
    {
        ArgumentNullException.ThrowIfNull(measured);
        return previous is { MapsP99: > 0 } p
            ? measured with { MapsP99 = Math.Min(measured.MapsP99, p.MapsP99) }
            : measured;
    }

    /// <summary>
    /// The class shift weights a re-seating records: per class never more than the generation had (<paramref name="previous"/>,
    /// null: a first seating, <paramref name="measured"/> as they are). A weight is learned at a generation's first seating
    /// and can only fall within it (as without re-seatings): a coalition that joins a class after it cannot raise the
    /// weight the maps hold it to by triggering a re-seating.
    /// </summary>
    public static IReadOnlyDictionary<string, double[]>? Carried(IReadOnlyDictionary<string, double[]>? measured, IReadOnlyDictionary<string, double[]>? previous) =>
        ClassOffsetCaps.Carried(measured, previous);

    /// <summary>Users the figures are learned from at most (the first ones a scan returns: SCAN order is a hash order).</summary>
    public const int Sample = 20_000;

    /// <summary>
    /// Learns both figures from <paramref name="users"/> (the generation's stored users; their <see cref="UserState.Cloaked"/>
    /// is the seating's own cloak) and the maps the workers build from the generation's statistics as they are now, and
    /// records them in the registry.
    /// </summary>
    public static async Task RecordAsync(IGenerationStore store, IUserCloakerFactory cloakerFactory, string modelVersion, IReadOnlyList<UserState> users,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        var seatedMax = users.Count == 0 ? 0 : users.Max(u => DisplacementCap.Distance(u.Original, u.Cloaked));
        var sample = users.Take(Sample).ToList();
        var originals = sample.Select(u => u.Original).ToList();
        var domain = InputDomainEstimator.Learn(originals, now);
        var snapshot = await store.StoreOf(modelVersion).ReadStatisticsAsync(cancellationToken).ConfigureAwait(false);
        var cloaker = cloakerFactory.Build(snapshot);
        var mapped = sample.Select(u =>
        {
            var y = new float[u.Original.Length];
            cloaker.Cloak(u.Original, u.Classes, y);
            return y;
        }).ToList();
        var displacement = DisplacementCap.Percentile99(originals, mapped);
        var weights = (cloakerFactory as TransportCloakerFactory)?.ShiftWeights(snapshot);
        var caps = snapshot.Originals.Count > 0 ? ClassOffsetCaps.Measure(snapshot) : null;
        await store.UpdateRegistryAsync(r =>
        {
            var changed = domain is null ? [] : r.WithDomain(modelVersion, domain);
            var g = changed.Count > 0 ? changed[0] : r.Find(modelVersion);
            return g is { Live: true } && displacement is { } p99 && double.IsFinite(p99) && double.IsFinite(seatedMax)
                ? [g with
                {
                    Displacement = Carried(new SeatedDisplacement(p99, seatedMax), g.Displacement),
                    ShiftWeights = Reseating(g) ? Carried(weights, g.ShiftWeights) : weights,
                    OffsetCaps = Reseating(g) ? ClassOffsetCaps.Carried(caps, g.OffsetCaps) : caps,
                }]
                : changed;
        }, cancellationToken).ConfigureAwait(false);
    }
}
