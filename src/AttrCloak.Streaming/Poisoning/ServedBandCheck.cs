using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Generations;

namespace AttrCloak.Streaming.Poisoning;

/// <summary>One user outside the band, and why.</summary>
public sealed record BandOutlier(string UserId, string Why);

/// <summary>What <see cref="ServedBandCheck"/> found in one generation.</summary>
/// <param name="Users">Users scanned.</param>
/// <param name="Cap">The generation's displacement cap (infinite: never seated).</param>
/// <param name="ServedOutliers">Users served an embedding beyond the cap or far from their original's norm.</param>
/// <param name="DomainOutliers">Users whose stored original lies outside the learned input domain.</param>
/// <param name="MapsBeyondCap">Users the current maps would move further than the cap (before capping).</param>
public sealed record ServedBandReport(long Users, double Cap, IReadOnlyList<BandOutlier> ServedOutliers, IReadOnlyList<BandOutlier> DomainOutliers, long MapsBeyondCap)
{
    /// <summary>More than this share of users beyond the cap under the current maps: the maps are out of band.</summary>
    public const double MapsOutOfBandShare = 0.01;

    public bool MapsOutOfBand => Users > 0 && MapsBeyondCap > MapsOutOfBandShare * Users;

    public bool Healthy => ServedOutliers.Count == 0 && DomainOutliers.Count == 0 && !MapsOutOfBand;
}

/// <summary>
/// Checks a generation's served states against its band (docs/threat-model.md), for <c>attrcloak stats verify</c>: every
/// served embedding within the displacement cap of its original and within <see cref="MaxNormRatio"/> of its norm, every
/// stored original inside the input domain, and the current maps moving at most 1 % of the users beyond the cap (more
/// means poisoned statistics or a drifted model).
/// </summary>
public static class ServedBandCheck
{
    /// <summary>A served norm beyond this multiple of the original's is out of band (as the ServedNormOutOfBand alert).</summary>
    public const double MaxNormRatio = 3;

    /// <summary>
    /// Checks <paramref name="users"/> of <paramref name="generation"/>; <paramref name="maps"/> are its current maps (null
    /// when its statistics cannot be read: the maps are then not checked).
    /// </summary>
    public static async Task<ServedBandReport> RunAsync(IAsyncEnumerable<UserState> users, Generation generation, InputOptions input, IUserCloaker? maps,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(users);
        ArgumentNullException.ThrowIfNull(generation);
        ArgumentNullException.ThrowIfNull(input);
        var cap = input.DisplacementCapOf(generation.Displacement);
        var served = new List<BandOutlier>();
        var domain = new List<BandOutlier>();
        long scanned = 0, beyond = 0;
        float[]? mapped = null;
        await foreach (var u in users.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            scanned++;
            if (input.Refuses(u.Original, generation.Domain) is { } why) domain.Add(new BandOutlier(u.UserId, why));
            var displacement = DisplacementCap.Distance(u.Original, u.Cloaked);
            var originalNorm = DisplacementCap.Norm(u.Original);
            var normRatio = originalNorm > 0 ? DisplacementCap.Norm(u.Cloaked) / originalNorm : 1;
            // The cap writes float32 values: a capped state may lie a rounding error beyond it.
            if (displacement > cap * 1.001 + 1e-6)
                served.Add(new BandOutlier(u.UserId, $"served {displacement:G3} from the original, beyond the cap {cap:G3}"));
            else if (!(normRatio <= MaxNormRatio))
                served.Add(new BandOutlier(u.UserId, $"served norm {normRatio:G3} x the original's (at most {MaxNormRatio})"));
            if (maps is null) continue;
            mapped ??= new float[u.Original.Length];
            maps.Cloak(u.Original, u.Classes, mapped);
            if (DisplacementCap.Distance(u.Original, mapped) > cap) beyond++;
        }
        return new ServedBandReport(scanned, cap, served, domain, beyond);
    }
}
