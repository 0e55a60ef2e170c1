using AttrCloak.Streaming.Redis.Scripts;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Redis.Statistics;

/// <summary>One (attribute, class) slot compared with its recomputation from the user states.</summary>
/// <param name="Attribute">attribute name.</param>
/// <param name="ClassIndex">class index within the attribute.</param>
/// <param name="ClassName">class name.</param>
/// <param name="StoredCount">count stored in Redis (-1 when malformed).</param>
/// <param name="RecomputedCount">count of users with this class.</param>
/// <param name="CountDifference">stored count - recomputed count (must be 0).</param>
/// <param name="MaxAbsSumDifference">max |stored - recomputed| over the sum vector S.</param>
/// <param name="MaxAbsCoMomentDifference">max |stored - recomputed| over the co-moment matrix M (upper triangle).</param>
/// <param name="Tolerance">the allowed absolute difference: relative tolerance x the summed magnitudes of the terms.</param>
/// <param name="Malformed">the stored value is not a float64 vector of the expected length.</param>
public sealed record ClassStatisticsDifference(
    string Attribute,
    int ClassIndex,
    string ClassName,
    long StoredCount,
    long RecomputedCount,
    long CountDifference,
    double MaxAbsSumDifference,
    double MaxAbsCoMomentDifference,
    double Tolerance,
    bool Malformed)
{
    /// <summary>The stored statistics agree with the recomputation.</summary>
    public bool IsConsistent => !Malformed && CountDifference == 0 && MaxAbsSumDifference <= Tolerance && MaxAbsCoMomentDifference <= Tolerance;
}

/// <summary>
/// The result of <see cref="StatisticsVerifier.VerifyAsync"/> or <see cref="StatisticsVerifier.RebuildAsync"/>.
/// <see cref="Version"/> is the statistics version the comparison (or the rebuilt values) refer to.
/// </summary>
public sealed record StatisticsVerificationReport(
    long UsersScanned,
    StatisticsVersion Version,
    IReadOnlyList<ClassStatisticsDifference> Classes,
    bool Rebuilt,
    int Attempts)
{
    /// <summary>Every class agrees with the recomputation (before a rebuild, when <see cref="Rebuilt"/>).</summary>
    public bool IsConsistent => Classes.All(c => c.IsConsistent);

    /// <summary>The classes that disagree.</summary>
    public IEnumerable<ClassStatisticsDifference> Inconsistent => Classes.Where(c => !c.IsConsistent);
}

/// <summary>
/// Redis is a rebuildable cache: this recomputes every class's statistics from all user states (SCAN over
/// <c>{prefix}:user:*</c>, O(n d^2), a maintenance operation, never on the event path), compares them with the stored
/// ones (<see cref="VerifyAsync"/>, <c>attrcloak stats verify</c>) or replaces them (<see cref="RebuildAsync"/>,
/// <c>attrcloak stats rebuild</c>).
/// <para>
/// SCAN is not a snapshot. The statistics version is read before the scan and checked after it (verify) or by the
/// rebuild script (rebuild): if a worker changed the statistics meanwhile, the pass is repeated (up to
/// <c>maxAttempts</c>), so run it with the worker paused on a busy deployment. A change that leaves the statistics
/// alone (original embedding only) does not bump the version and does not matter here. On Redis Cluster the scan has to
/// run per node; single-node Redis is the target.
/// </para>
/// </summary>
public sealed class StatisticsVerifier(IConnectionMultiplexer redis, StateStoreOptions options)
{
    private readonly StoreLayout _layout = new(options);
    private readonly IDatabase _db = redis.GetDatabase();
    private readonly double _relativeTolerance = options.VerifyRelativeTolerance;

    /// <summary>Compares the stored statistics with a recomputation from the user states.</summary>
    public async Task<StatisticsVerificationReport> VerifyAsync(int maxAttempts = 5, CancellationToken cancellationToken = default)
    {
        for (var attempt = 1; ; attempt++)
        {
            var before = await VersionAsync().ConfigureAwait(false);
            var (recomputed, magnitudes, users) = await RecomputeAsync(cancellationToken).ConfigureAwait(false);
            var stored = await RawStatistics.ReadAsync(_db, _layout).ConfigureAwait(false);
            if (stored.Version == before || attempt >= maxAttempts)
            {
                if (stored.Version != before)
                    throw new InvalidOperationException(
                        $"the statistics changed during each of {attempt} verification passes; pause the worker and verify again");
                return new StatisticsVerificationReport(users, stored.Version, Compare(stored, recomputed, magnitudes), false, attempt);
            }
        }
    }

    /// <summary>
    /// Replaces every class's statistics with the recomputation (atomically, and only if no writer changed them since
    /// the scan began; otherwise it scans again). The report's differences are those found before the rebuild.
    /// </summary>
    public async Task<StatisticsVerificationReport> RebuildAsync(int maxAttempts = 5, CancellationToken cancellationToken = default)
    {
        await EnsureLayoutAsync().ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            var before = await VersionAsync().ConfigureAwait(false);
            var (recomputed, magnitudes, users) = await RecomputeAsync(cancellationToken).ConfigureAwait(false);
            var stored = await RawStatistics.ReadAsync(_db, _layout).ConfigureAwait(false);
            var differences = Compare(stored, recomputed, magnitudes);

            var keys = new RedisKey[1 + _layout.SlotCount];
            var args = new RedisValue[2 + _layout.SlotCount];
            keys[0] = _layout.MetaKey;
            args[0] = _layout.Fingerprint;
            args[1] = before.ToString();
            for (var s = 0; s < _layout.SlotCount; s++)
            {
                keys[1 + s] = _layout.StatsKeys[s];
                args[2 + s] = recomputed[s][0] == 0 ? RedisValue.EmptyString : Codec.DoublesToBytes(recomputed[s]);
            }
            var r = (RedisValue[])(await _db.ScriptEvaluateAsync(LuaScripts.Rebuild, keys, args).ConfigureAwait(false))!;
            switch ((string?)r[0])
            {
                case "OK":
                    return new StatisticsVerificationReport(users, new StatisticsVersion((string)r[1]!, (long)r[2]), differences, true, attempt);
                case "CONFLICT" when attempt < maxAttempts:
                    continue;
                case "CONFLICT":
                    throw new InvalidOperationException(
                        $"the statistics changed during each of {attempt} rebuild passes; pause the worker and rebuild again");
                default:
                    throw new StateStoreLayoutException(
                        $"Redis prefix '{_layout.Prefix}' has no meta key of layout {_layout.Fingerprint}; nothing was rebuilt");
            }
        }
    }

    private async Task EnsureLayoutAsync()
    {
        var layout = (string?)await _db.HashGetAsync(_layout.MetaKey, "layout").ConfigureAwait(false);
        if (layout != _layout.Fingerprint)
            throw new StateStoreLayoutException(layout is null
                ? $"Redis prefix '{_layout.Prefix}' has no meta key: nothing to verify or rebuild (the worker creates it)"
                : $"Redis prefix '{_layout.Prefix}' holds layout {layout}, these options describe {_layout.Fingerprint}");
    }

    private async Task<StatisticsVersion> VersionAsync()
    {
        var v = await _db.HashGetAsync(_layout.MetaKey, ["epoch", "seq"]).ConfigureAwait(false);
        return new StatisticsVersion((string?)v[0] ?? "", v[1].IsNull ? 0 : (long)v[1]);
    }

    /// <summary>
    /// Sums of every slot over all users, and per slot the summed magnitudes of the terms (for S: sum of max|y|,
    /// for M: sum of max|y|^2), which bound the rounding error of any order of summation.
    /// </summary>
    private async Task<(double[][] Sums, (double S, double M)[] Magnitudes, long Users)> RecomputeAsync(CancellationToken cancellationToken)
    {
        var d = _layout.Dimension;
        var length = SufficientStatistics.Length(d);
        var sums = new double[_layout.SlotCount][];
        for (var s = 0; s < sums.Length; s++) sums[s] = new double[length];
        var magnitudes = new (double S, double M)[_layout.SlotCount];
        long users = 0;
        RedisValue cursor = 0;
        do
        {
            cancellationToken.ThrowIfCancellationRequested();
            var page = (RedisResult[])(await _db.ExecuteAsync("SCAN", cursor, "MATCH", _layout.UserKeyPattern, "COUNT", 1000).ConfigureAwait(false))!;
            cursor = (RedisValue)page[0];
            var keys = (RedisKey[])page[1]!;
            var reads = keys.Select(k => _db.HashGetAsync(k, ["c", "a"])).ToArray();
            var values = await Task.WhenAll(reads).ConfigureAwait(false);
            foreach (var v in values)
            {
                if (v[0].IsNull) continue; // deleted between SCAN and HMGET
                var cloaked = Codec.BytesToFloats((byte[])v[0]!);
                var classes = Codec.BytesToClasses((byte[])v[1]!);
                if (cloaked.Length != d || classes.Length != _layout.Attributes.Length)
                    throw new InvalidDataException($"a stored user record under '{_layout.Prefix}' is malformed; it cannot be counted");
                users++;
                var y = SufficientStatistics.Centre(cloaked, _layout.Reference);
                var yMax = 0.0;
                foreach (var e in y) yMax = Math.Max(yMax, Math.Abs(e));
                for (var a = 0; a < classes.Length; a++)
                {
                    if (classes[a] < 0) continue;
                    var slot = _layout.SlotOffsets[a] + classes[a];
                    SufficientStatistics.AddOuter(sums[slot], y, 1.0);
                    magnitudes[slot].S += yMax;
                    magnitudes[slot].M += yMax * yMax;
                }
            }
        }
        while ((string?)cursor != "0");
        return (sums, magnitudes, users);
    }

    private List<ClassStatisticsDifference> Compare(RawStatistics stored, double[][] recomputed, (double S, double M)[] magnitudes)
    {
        var d = _layout.Dimension;
        var differences = new List<ClassStatisticsDifference>(_layout.SlotCount);
        for (var slot = 0; slot < _layout.SlotCount; slot++)
        {
            var (a, k) = _layout.SlotOwner(slot);
            var spec = _layout.Attributes[a];
            var r = recomputed[slot];
            var recomputedCount = (long)Math.Round(r[0]);
            // The tolerance grows with the magnitudes summed; the floor keeps an empty class's zeros exact-ish.
            var tolerance = _relativeTolerance * Math.Max(1.0, Math.Max(magnitudes[slot].S, magnitudes[slot].M));
            if (stored.Malformed[slot])
            {
                differences.Add(new ClassStatisticsDifference(spec.Name, k, spec.ClassNames[k], -1, recomputedCount, -1 - recomputedCount,
                    double.PositiveInfinity, double.PositiveInfinity, tolerance, true));
                continue;
            }
            var s = stored.Slots[slot];
            double maxS = 0, maxM = 0;
            for (var i = 1; i <= d; i++) maxS = Math.Max(maxS, Diff(s[i], r[i]));
            for (var i = 1 + d; i < r.Length; i++) maxM = Math.Max(maxM, Diff(s[i], r[i]));
            // A stored count that is not a finite integer is reported as an (infinite) count difference.
            var countIsIntegral = double.IsFinite(s[0]) && s[0] == Math.Round(s[0]) && Math.Abs(s[0]) < 1e15;
            var storedCount = countIsIntegral ? (long)s[0] : -1;
            var countDifference = countIsIntegral ? storedCount - recomputedCount : long.MaxValue;
            differences.Add(new ClassStatisticsDifference(spec.Name, k, spec.ClassNames[k], storedCount, recomputedCount,
                countDifference, maxS, maxM, tolerance, false));
        }
        return differences;
    }

    private static double Diff(double a, double b)
    {
        var x = Math.Abs(a - b);
        return double.IsNaN(x) ? double.PositiveInfinity : x;
    }
}
