using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Cloaking;

/// <summary>
/// How far a re-seating's batch cloak may move each class's mean (issue 11, bounded influence, for seatings): a seating
/// removes each class's offset from the global mean, and a coalition that joins a class after a seating makes that
/// offset whatever it likes; a re-seating over its statistics would move the class's honest users, together, in the
/// coalition's direction. So each seating records per class the signal it saw, S_k = (1 + <see cref="Growth"/>)
/// max(0, |Delta_k|^2 - d / n_k): the squared offset whitened by the pooled within-class covariance (the metric a class
/// mean's sampling noise d / n_k is isotropic in) less that noise, with room for an honest estimate to come out larger.
/// A re-seating removes a class's offset as a seating does while |Delta_k|^2 is within S_k + d / n_k (its signal and
/// the noise of its estimate now); beyond that the class keeps the excess share (<see cref="KeepFloors"/>). The signal
/// a re-seating records is never larger than before (<see cref="Carried"/>), so a coalition cannot raise it by
/// triggering re-seatings; a class whose offset is all noise (S_k = 0) is moved no further than its noise.
/// </summary>
public static class ClassOffsetCaps
{
    /// <summary>How much larger a class's squared signal may come out at the next seating, honestly: the sampling noise
    /// of the estimate, a class whose offset grows slowly.</summary>
    public const double Growth = 0.5;

    /// <summary>Each attribute's recorded signal S_k (per class, class order) from the ORIGINAL statistics of a seating.</summary>
    public static IReadOnlyDictionary<string, double[]> Measure(StatisticsSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var d = snapshot.Dimension;
        return snapshot.Originals.ToDictionary(o => o.Attribute, o =>
        {
            var lengths = OffsetLengths(o, d);
            return lengths.Select((l, k) => o.Counts[k] > 0 ? (1 + Growth) * Math.Max(0, l - (double)d / o.Counts[k]) : 0).ToArray();
        }, StringComparer.Ordinal);
    }

    /// <summary>
    /// Per attribute and class, the least share of its offset a re-seating's batch cloak keeps (what
    /// <c>CloakOptions.ClassKeepFloors</c> takes): 0 while |Delta_k|^2 is within S_k + d / n_k, else 1 - sqrt of that
    /// over |Delta_k|^2. Attributes or classes without a recorded signal get none.
    /// </summary>
    public static IReadOnlyDictionary<string, double[]> KeepFloors(StatisticsSnapshot snapshot, IReadOnlyDictionary<string, double[]> caps)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(caps);
        var floors = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var o in snapshot.Originals)
        {
            if (!caps.TryGetValue(o.Attribute, out var cap) || cap.Length != o.Counts.Length) continue;
            var lengths = OffsetLengths(o, snapshot.Dimension);
            floors[o.Attribute] = lengths.Select((l, k) =>
            {
                var allowed = Math.Max(0, cap[k]);
                return l > allowed ? 1 - Math.Sqrt(allowed / l) : 0;
            }).ToArray();
        }
        return floors;
    }

    /// <summary>What a re-seating records: per class at most what was recorded before (<paramref name="previous"/>; null: a first seating).</summary>
    public static IReadOnlyDictionary<string, double[]>? Carried(IReadOnlyDictionary<string, double[]>? measured, IReadOnlyDictionary<string, double[]>? previous)
    {
        if (measured is null || previous is null) return measured;
        return measured.ToDictionary(p => p.Key,
            p => previous.TryGetValue(p.Key, out var before) && before.Length == p.Value.Length ? p.Value.Zip(before, Math.Min).ToArray() : p.Value,
            StringComparer.Ordinal);
    }

    /// <summary>|mu_k - mu_g|^2 whitened by the pooled within-class covariance, per class (0 for an empty class).</summary>
    private static double[] OffsetLengths(ClassStatisticsSnapshot original, int d) =>
        ClassShiftWeights.WhitenedLengths(original, ClassShiftWeights.Offsets(original, d), d);
}
