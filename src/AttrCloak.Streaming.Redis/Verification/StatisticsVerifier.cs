using AttrCloak.Streaming.Redis.Scripts;
using StackExchange.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// Redis is a rebuildable cache: this recomputes every class's statistics, of the served (cloaked) and of the original
/// embeddings, from all user states (SCAN over
/// <c>{prefix}:user:*</c>, O(n d^2), a maintenance operation, never on the event path), compares them with the stored
/// ones (<see cref="VerifyAsync"/>, <c>attrcloak stats verify</c>) or replaces them (<see cref="RebuildAsync"/>,
/// <c>attrcloak stats rebuild</c>).
/// <para>
/// SCAN is not a snapshot. The statistics version is read before the scan and checked after it (verify) or by the
/// rebuild script (rebuild): if a worker changed the statistics meanwhile, the pass is repeated (up to
/// <c>maxAttempts</c>), so run it with the worker paused on a busy deployment. A change that leaves the statistics
/// alone (a new event id and version only) does not bump the version and does not matter here. On Redis Cluster the scan has to
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
        // A prefix without a meta key has no data (nothing to compare); one of another layout or format is an error.
        await EnsureLayoutAsync(allowMissing: true).ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            var before = await VersionAsync().ConfigureAwait(false);
            var recomputed = await RecomputeAsync(cancellationToken).ConfigureAwait(false);
            var stored = await RawStatistics.ReadAsync(_db, _layout).ConfigureAwait(false);
            if (stored.Version == before || attempt >= maxAttempts)
            {
                if (stored.Version != before)
                    throw new InvalidOperationException(
                        $"the statistics changed during each of {attempt} verification passes; pause the worker and verify again");
                return new StatisticsVerificationReport(recomputed.Users, stored.Version,
                    recomputed.Compare(stored.Slots, stored.Malformed, _relativeTolerance), false, attempt);
            }
        }
    }

    /// <summary>
    /// Replaces every class's statistics with the recomputation (atomically, and only if no writer changed them since
    /// the scan began; otherwise it scans again). The report's differences are those found before the rebuild.
    /// </summary>
    public async Task<StatisticsVerificationReport> RebuildAsync(int maxAttempts = 5, CancellationToken cancellationToken = default)
    {
        await EnsureLayoutAsync(allowMissing: false).ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            var before = await VersionAsync().ConfigureAwait(false);
            var recomputation = await RecomputeAsync(cancellationToken).ConfigureAwait(false);
            var stored = await RawStatistics.ReadAsync(_db, _layout).ConfigureAwait(false);
            var differences = recomputation.Compare(stored.Slots, stored.Malformed, _relativeTolerance);
            var recomputed = recomputation.Sums;

            var keys = new RedisKey[1 + _layout.SlotCount];
            var args = new RedisValue[3 + _layout.SlotCount];
            keys[0] = _layout.MetaKey;
            args[0] = _layout.Fingerprint;
            args[1] = before.ToString();
            args[2] = recomputation.Users;
            for (var s = 0; s < _layout.SlotCount; s++)
            {
                keys[1 + s] = _layout.StatsKeys[s];
                args[3 + s] = recomputed[s][0] == 0 ? RedisValue.EmptyString : Codec.DoublesToBytes(recomputed[s]);
            }
            var r = (RedisValue[])(await _db.ScriptEvaluateAsync(LuaScripts.Rebuild, keys, args).ConfigureAwait(false))!;
            switch ((string?)r[0])
            {
                case "OK":
                    return new StatisticsVerificationReport(recomputation.Users, new StatisticsVersion((string)r[1]!, (long)r[2]), differences, true, attempt);
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

    private async Task EnsureLayoutAsync(bool allowMissing)
    {
        var meta = await _db.HashGetAsync(_layout.MetaKey, ["layout", "dimension", "catalog"]).ConfigureAwait(false);
        var layout = (string?)meta[0];
        if (layout == _layout.Fingerprint || (layout is null && allowMissing)) return;
        throw new StateStoreLayoutException(layout is null
            ? $"Redis prefix '{_layout.Prefix}' has no meta key: nothing to rebuild (the worker creates it)"
            : _layout.DescribeMismatch(layout, (string?)meta[1] ?? "", (string?)meta[2] ?? ""));
    }

    private async Task<StatisticsVersion> VersionAsync()
    {
        var v = await _db.HashGetAsync(_layout.MetaKey, ["epoch", "seq"]).ConfigureAwait(false);
        return new StatisticsVersion((string?)v[0] ?? "", v[1].IsNull ? 0 : (long)v[1]);
    }

    /// <summary>Recomputes both populations' sums of every slot from all user states (SCAN).</summary>
    private async Task<StatisticsRecomputation> RecomputeAsync(CancellationToken cancellationToken)
    {
        var d = _layout.Dimension;
        var recomputation = new StatisticsRecomputation(_layout.Shape);
        await foreach (var keys in _layout.ScanUserKeysAsync(_db, 1000, cancellationToken).ConfigureAwait(false))
        {
            var reads = keys.Select(k => _db.HashGetAsync(k, ["o", "c", "a"])).ToArray();
            var values = await Task.WhenAll(reads).ConfigureAwait(false);
            foreach (var v in values)
            {
                if (v[1].IsNull) continue; // deleted between SCAN and HMGET
                var original = v[0].IsNull ? [] : Codec.BytesToFloats((byte[])v[0]!);
                var cloaked = Codec.BytesToFloats((byte[])v[1]!);
                var classes = v[2].IsNull ? [] : Codec.BytesToClasses((byte[])v[2]!);
                if (original.Length != d || cloaked.Length != d || classes.Length != _layout.Attributes.Length)
                    throw new InvalidDataException($"a stored user record under '{_layout.Prefix}' is malformed; it cannot be counted");
                recomputation.Add(original, cloaked, classes);
            }
        }
        return recomputation;
    }
}
