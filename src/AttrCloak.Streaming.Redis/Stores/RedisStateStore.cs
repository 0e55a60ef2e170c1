using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using AttrCloak.Streaming.Redis.Scripts;
using StackExchange.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// <see cref="IStateStore"/> on Redis (see <see cref="StoreLayout"/> for the keys and README.md for the design).
/// <para>
/// One batch is one script call when the caller hands its <see cref="UserCache"/> with the batch's users in it (the
/// worker: the users it planned on, read or written recently), two otherwise (a read script fetches the missing users
/// first). The store keeps no user cache of its own: the caller's is the only one, and the store records in it what it
/// read and wrote. The client folds each user's events, validates them and computes the
/// statistics delta of the whole batch (float64, in process, O(d^2) per changed user); the apply script checks that
/// every user is still at the version the client started from (compare-and-set, so a stale cache or another writer
/// costs a retry, never a wrong delta) and writes all user states, tombstones and statistics at once.
/// </para>
/// <para>
/// The statistics are sent as new absolute values computed from an in-process copy of the stored sums when that copy
/// is current (the script checks the statistics version; Redis then only stores bytes), and as deltas that the script
/// adds in float64 when another writer is active (after a statistics conflict, on the last attempt, or with
/// <see cref="RedisStoreSeams.ServerSideArithmetic"/>). Adding the same delta to the same bytes gives the same bytes in C# and in
/// Lua, so both paths store identical values. Redis-side arithmetic costs far more per class touched than the
/// absolute path (docs/performance.md), hence absolute writes whenever no other writer is active.
/// </para>
/// Calls of one instance are serialised (it keeps those copies); share one instance per process.
/// </summary>
public sealed class RedisStateStore : IStateStore, IDisposable
{
    private readonly IDatabase _db;
    private readonly StoreLayout _layout;
    private readonly ApplyFold _planner;
    private readonly StateStoreOptions _options;
    private readonly RedisStoreSeams _seams;
    private readonly string _ttlMilliseconds;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly StatisticsCopy _statistics;
    private volatile bool _initialized;
    /// <summary>The meta key existed (or was created) once: from then on a missing one means the state was lost.</summary>
    private volatile bool _metaSeen;
    private int _deltaBatchesLeft;

    /// <summary>
    /// After another writer moved the statistics under a batch, the next batches send deltas straight away instead of
    /// reloading the copy and racing again: several active writers cost Redis-side arithmetic, not retries.
    /// </summary>
    private const int DeltaBatchesAfterContention = 16;

    /// <param name="redis">The connection (one per process).</param>
    /// <param name="options">The deployment's layout and limits.</param>
    /// <param name="seams">Behaviour injected by tests and benchmarks (none in production).</param>
    public RedisStateStore(IConnectionMultiplexer redis, StateStoreOptions options, RedisStoreSeams? seams = null)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(options);
        _layout = new StoreLayout(options);
        _planner = new ApplyFold(_layout.Shape);
        _options = options;
        _seams = seams ?? RedisStoreSeams.None;
        _statistics = new StatisticsCopy(_layout);
        _db = redis.GetDatabase();
        _ttlMilliseconds = ((long)Math.Ceiling(options.TombstoneTtl.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>What the store did so far (tests, benchmarks, metrics).</summary>
    public StoreCounters Counters { get; } = new();

    internal StoreLayout Layout => _layout;

    /// <summary>
    /// Creates the deployment's meta key, or checks that the data under the prefix has this store's layout (dimension,
    /// attribute catalog, reference point); throws <see cref="StateStoreLayoutException"/> otherwise. Other methods
    /// call it on first use. Only a store instance that never saw the meta key creates it: once seen, a missing meta
    /// key means Redis lost the state, and this (like every other call) throws <see cref="StateStoreLostException"/>
    /// until the state is rebuilt (e.g. by <c>attrcloak bootstrap</c>, whose own store instance creates it).
    /// </summary>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        var epoch = Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
        var r = (RedisValue[])(await _db.ScriptEvaluateAsync(LuaScripts.Init, [_layout.MetaKey],
            [_layout.Fingerprint, _layout.Dimension, _layout.Catalog, _layout.ReferenceBytes, epoch, _metaSeen ? "1" : "0"])
            .WaitAsync(cancellationToken).ConfigureAwait(false))!;
        switch ((string?)r[0])
        {
            case "OK":
                // The script returns the epoch given when it created the meta hash now, the stored one otherwise.
                if (!_metaSeen && (string?)r[1] == epoch) CreatedEmpty = true;
                break;
            case "MISSING":
                throw Lost();
            default:
                throw new StateStoreLayoutException(_layout.DescribeMismatch((string?)r[1] ?? "", (string?)r[2] ?? "", (string?)r[3] ?? ""));
        }
        _metaSeen = true;
        _initialized = true;
    }

    /// <inheritdoc />
    public bool CreatedEmpty { get; private set; }

    /// <summary>Forgets the statistics remembered of the lost state and says what happened (the caller drops its users).</summary>
    private StateStoreLostException Lost()
    {
        _statistics.Invalidate();
        return new StateStoreLostException(_layout.Prefix);
    }

    /// <inheritdoc />
    public Task<ApplyResult[]> ApplyAsync(IReadOnlyList<UserStateChange> batch, CancellationToken cancellationToken = default) =>
        ApplyConsumedAsync(batch, [], cancellationToken);

    /// <inheritdoc />
    public Task<ApplyResult[]> ApplyConsumedAsync(IReadOnlyList<UserStateChange> batch, IReadOnlyList<ConsumedOffset> consumed, CancellationToken cancellationToken = default) =>
        ApplyCoreAsync(batch, consumed, null, cancellationToken);

    /// <inheritdoc />
    public Task<ApplyResult[]> ApplyConsumedAsync(IReadOnlyList<UserStateChange> batch, IReadOnlyList<ConsumedOffset> consumed, UserCache cache,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cache);
        return ApplyCoreAsync(batch, consumed, cache, cancellationToken);
    }

    /// <summary>
    /// The batch, with the priors from <paramref name="cache"/> where it has them (null: every user is read). What is
    /// read and written is recorded there; a user found changed by someone else is dropped from it and read again.
    /// </summary>
    private async Task<ApplyResult[]> ApplyCoreAsync(IReadOnlyList<UserStateChange> batch, IReadOnlyList<ConsumedOffset> consumed, UserCache? cache,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(consumed);
        var results = new ApplyResult[batch.Count];
        var grouped = _planner.Group(batch, results);
        var users = grouped.Users;
        if (users.Count == 0)
        {
            await RaiseConsumedOffsetsAsync(consumed, cancellationToken).ConfigureAwait(false);
            return results;
        }
        if (!_initialized) await InitializeAsync(cancellationToken).ConfigureAwait(false);

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var statsContended = false;
            var readAll = false;
            for (var attempt = 1; ; attempt++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var lastAttempt = attempt >= _options.MaxApplyAttempts;

                // Prior records: from the caller's user cache where possible, one read script for the rest.
                var priors = new UserRecord[users.Count];
                var fromCache = new bool[users.Count];
                var missing = new List<int>();
                for (var u = 0; u < users.Count; u++)
                {
                    if (!readAll && cache is not null && cache.TryGet(users[u], out var known))
                    {
                        priors[u] = UserRecord.Of(known);
                        fromCache[u] = true;
                    }
                    else missing.Add(u);
                }
                StatisticsVersion? seen = null;
                if (missing.Count > 0)
                {
                    var read = await ReadUsersAsync(missing.Select(u => users[u]).ToList()).ConfigureAwait(false);
                    if (read.Layout != _layout.Fingerprint)
                    {
                        // The meta key vanished (state lost: InitializeAsync throws StateStoreLostException, never
                        // re-creates it) or was replaced (the layout error, or a rebuilt state with a new epoch).
                        cache?.Clear();
                        await InitializeAsync(cancellationToken).ConfigureAwait(false);
                        if (lastAttempt) throw new StateStoreConflictException("the Redis meta key kept changing during the batch");
                        continue;
                    }
                    for (var j = 0; j < missing.Count; j++)
                    {
                        priors[missing[j]] = read.Users[j];
                        cache?.Set(users[missing[j]], read.Users[j].Prior);
                    }
                    seen = read.Version;
                    Counters.UserReads += missing.Count;
                }
                Counters.UserCacheHits += users.Count - missing.Count;

                var planStart = Stopwatch.GetTimestamp();
                var plan = _planner.Plan(batch, grouped, priors.Select(p => new PriorUser(p.State, p.TombstoneVersion)).ToArray(), results);
                Counters.PlanTicks += Stopwatch.GetTimestamp() - planStart;
                var writes = ApplyCall.Writes(plan, priors, fromCache);
                if (writes.Count == 0)
                {
                    // Nothing to write: the outcomes were decided on what Redis holds; only the watermarks move.
                    await RaiseConsumedOffsetsAsync(consumed, cancellationToken).ConfigureAwait(false);
                    return results;
                }

                char mode;
                var expected = "";
                if (plan.Slots.Length == 0) mode = 'N';
                else if (_seams.ServerSideArithmetic || lastAttempt || statsContended || _deltaBatchesLeft > 0) mode = 'D';
                else
                {
                    mode = 'A';
                    if (!_statistics.IsCurrent(seen)) await ReloadStatisticsAsync().ConfigureAwait(false);
                    expected = _statistics.Version!.Value.ToString();
                }
                var (keys, args, absolute) = ApplyCall.Build(_layout, _statistics, _ttlMilliseconds, plan, writes, mode, expected, consumed);
                Counters.ClientTicks += Stopwatch.GetTimestamp() - planStart;
                if (_seams.BeforeWrite is { } hook) await hook(attempt).ConfigureAwait(false);
                var writeStart = Stopwatch.GetTimestamp();
                var r = (RedisValue[])(await _db.ScriptEvaluateAsync(LuaScripts.Apply, keys, args).ConfigureAwait(false))!;
                Counters.WriteTicks += Stopwatch.GetTimestamp() - writeStart;
                var status = (string?)r[0];
                switch (status)
                {
                    case "OK":
                        Counters.Batches++;
                        if (mode == 'A') Counters.AbsoluteWrites++;
                        else if (mode == 'D') Counters.DeltaWrites++;
                        if (mode == 'D' && !statsContended && _deltaBatchesLeft > 0) _deltaBatchesLeft--;
                        _statistics.Committed(plan, mode, absolute, new StatisticsVersion((string)r[1]!, (long)r[2]));
                        if (cache is not null)
                            foreach (var w in writes.Where(w => w.Op != 'N'))
                                cache.Set(w.UserId, new PriorUser(w.Final, w.Final is null ? w.Version : null));
                        return results;
                    case "CONFLICT":
                        Counters.Conflicts++;
                        if ((string?)r[1] == "stats")
                        {
                            _statistics.Invalidate();
                            statsContended = true;
                            _deltaBatchesLeft = DeltaBatchesAfterContention;
                        }
                        else
                        {
                            // Another writer changed a user (or the cache was wiped): forget what we knew, read again.
                            if (cache is not null)
                                foreach (var user in users) cache.Remove(user);
                            readAll = true;
                        }
                        if (lastAttempt)
                            throw new StateStoreConflictException(
                                $"another writer changed the batch's {(string?)r[1]} state on each of {attempt} attempts; nothing was written");
                        continue;
                    case "LAYOUT":
                        cache?.Clear();
                        readAll = true;
                        await InitializeAsync(cancellationToken).ConfigureAwait(false);
                        if (lastAttempt) throw new StateStoreConflictException("the Redis meta key kept changing during the batch");
                        continue;
                    case "BADARGS":
                        throw new InvalidOperationException("the apply script rejected its arguments (a store bug); nothing was written");
                    case "CORRUPT":
                        throw new InvalidDataException(
                            $"statistics key {_layout.StatsKeys[plan.Slots[(int)r[1] - 1]]} has a wrong length; run `attrcloak stats verify` and `stats rebuild`");
                    default:
                        throw new InvalidOperationException($"unexpected reply '{status}' from the apply script");
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<long[]?> ReadConsumedOffsetsAsync(IReadOnlyList<ConsumedOffset> partitions, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        if (partitions.Count == 0) return [];
        var values = await _db.HashGetAsync(_layout.ConsumedKey, partitions.Select(p => (RedisValue)StoreLayout.ConsumedField(p)).ToArray())
            .WaitAsync(cancellationToken).ConfigureAwait(false);
        return values.Select(v => v.IsNull ? -1L : (long)v).ToArray();
    }

    /// <summary>Raises the watermarks alone (a batch that writes no user): one small script, a maximum per field.</summary>
    private async Task RaiseConsumedOffsetsAsync(IReadOnlyList<ConsumedOffset> consumed, CancellationToken cancellationToken)
    {
        if (consumed.Count == 0) return;
        var args = new RedisValue[2 * consumed.Count];
        for (var c = 0; c < consumed.Count; c++)
        {
            args[2 * c] = StoreLayout.ConsumedField(consumed[c]);
            args[2 * c + 1] = consumed[c].Offset;
        }
        await _db.ScriptEvaluateAsync(LuaScripts.RaiseConsumed, [_layout.ConsumedKey], args).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<UserState?> GetUserAsync(string userId, CancellationToken cancellationToken = default) =>
        (await GetUsersAsync([userId], cancellationToken).ConfigureAwait(false))[0];

    /// <inheritdoc />
    public Task<UserState?[]> GetUsersAsync(IReadOnlyList<string> userIds, CancellationToken cancellationToken = default) =>
        GetUsersCoreAsync(userIds, null, cancellationToken);

    /// <inheritdoc />
    public Task<UserState?[]> GetUsersAsync(IReadOnlyList<string> userIds, UserCache cache, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cache);
        return GetUsersCoreAsync(userIds, cache, cancellationToken);
    }

    private async Task<UserState?[]> GetUsersCoreAsync(IReadOnlyList<string> userIds, UserCache? cache, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(userIds);
        if (userIds.Count == 0) return [];
        var read = await ReadUsersAsync(userIds).WaitAsync(cancellationToken).ConfigureAwait(false);
        // "No such user" from a Redis that lost everything would be a lie: the caller would treat them as new.
        if (read.Layout.Length == 0 && _metaSeen) throw Lost();
        if (cache is not null && read.Layout == _layout.Fingerprint)
            for (var i = 0; i < userIds.Count; i++) cache.Set(userIds[i], read.Users[i].Prior);
        // Copies: the cached records are what the next batch's statistics delta is computed from, so a caller writing
        // into the arrays it got must not reach them.
        return read.Users.Select(u => u.State is { } s
            ? s with { Original = (float[])s.Original.Clone(), Cloaked = (float[])s.Cloaked.Clone(), Classes = (int[])s.Classes.Clone() }
            : null).ToArray();
    }

    /// <inheritdoc />
    public async Task<StatisticsSnapshot> ReadStatisticsAsync(CancellationToken cancellationToken = default)
    {
        if (!_initialized) await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var current = await StatisticsSequenceAsync(cancellationToken).ConfigureAwait(false);
            if (_statistics.Version != current) await ReloadStatisticsAsync().ConfigureAwait(false);
            return _statistics.Snapshot();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<StatisticsVersion> StatisticsSequenceAsync(CancellationToken cancellationToken = default)
    {
        var v = await _db.HashGetAsync(_layout.MetaKey, ["epoch", "seq"]).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (v[0].IsNull && _metaSeen) throw Lost();
        return new StatisticsVersion((string?)v[0] ?? "", v[1].IsNull ? 0 : (long)v[1]);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ServedUser> ScanServedAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var keys in _layout.ScanUserKeysAsync(_db, 500, cancellationToken).ConfigureAwait(false))
        {
            // One pipelined HMGET per key of the page; only the served fields are read.
            var reads = keys.Select(k => _db.HashGetAsync(k, ["c", "a"])).ToArray();
            for (var i = 0; i < keys.Length; i++)
            {
                var v = await reads[i].ConfigureAwait(false);
                if (v[0].IsNull || v[1].IsNull) continue; // deleted between SCAN and HMGET
                var cloaked = Codec.BytesToFloats((byte[])v[0]!);
                var classes = Codec.BytesToClasses((byte[])v[1]!);
                if (cloaked.Length != _layout.Dimension || classes.Length != _layout.Attributes.Length) continue; // `stats verify` reports malformed records
                yield return new ServedUser(_layout.UserIdOf(keys[i]), cloaked, classes);
            }
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<UserState> ScanStatesAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var keys in _layout.ScanUserKeysAsync(_db, 500, cancellationToken).ConfigureAwait(false))
        {
            var reads = keys.Select(k => _db.HashGetAsync(k, ["v", "e", "o", "c", "a", "p", "s"])).ToArray();
            for (var i = 0; i < keys.Length; i++)
            {
                var v = await reads[i].ConfigureAwait(false);
                if (v[0].IsNull || v[2].IsNull || v[3].IsNull || v[4].IsNull) continue; // deleted between SCAN and HMGET
                yield return DecodeUser(_layout.UserIdOf(keys[i]), v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
            }
        }
    }

    /// <inheritdoc />
    public async Task<UserSweepPage> ScanSweepAsync(string cursor, int count, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var (next, keys) = await StoreLayout.ScanPageAsync(_db, cursor, _layout.UserKeyPattern, count).WaitAsync(cancellationToken).ConfigureAwait(false);
        var reads = keys.Select(k => _db.HashGetAsync(k, ["p", "s", "v"])).ToArray();
        var users = new List<SweepEntry>(keys.Length);
        for (var i = 0; i < keys.Length; i++)
        {
            var v = await reads[i].ConfigureAwait(false);
            if (v[2].IsNull) continue; // deleted between SCAN and HMGET
            users.Add(new SweepEntry(_layout.UserIdOf(keys[i]), v[0].IsNull ? -1 : (int)v[0], v[1].IsNull ? 0 : (int)v[1]));
        }
        return new UserSweepPage((string)next!, users);
    }

    /// <inheritdoc />
    public async Task MarkSweptAsync(IReadOnlyList<string> userIds, int epoch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userIds);
        if (userIds.Count == 0) return;
        await _db.ScriptEvaluateAsync(LuaScripts.MarkSwept, userIds.Select(_layout.UserKey).ToArray(), [epoch])
            .WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<long> CountUsersAsync(CancellationToken cancellationToken = default)
    {
        var v = await _db.HashGetAsync(_layout.MetaKey, "users").WaitAsync(cancellationToken).ConfigureAwait(false);
        return v.IsNull ? 0 : (long)v;
    }

    /// <inheritdoc />
    public async Task<bool[]> ContainsAsync(IReadOnlyList<string> userIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userIds);
        var checks = userIds.Select(id => _db.KeyExistsAsync(_layout.UserKey(id))).ToArray();
        return await Task.WhenAll(checks).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task DeleteAllAsync(CancellationToken cancellationToken = default)
    {
        await _db.KeyDeleteAsync(_layout.MetaKey).WaitAsync(cancellationToken).ConfigureAwait(false);
        _statistics.Invalidate();
        await foreach (var keys in StoreLayout.ScanAsync(_db, _layout.AllKeysPattern, 1000, cancellationToken).ConfigureAwait(false))
            if (keys.Length > 0) await _db.KeyDeleteAsync(keys, CommandFlags.None).ConfigureAwait(false);
    }

    public void Dispose() => _gate.Dispose();

    private async Task ReloadStatisticsAsync()
    {
        await _statistics.ReloadAsync(_db).ConfigureAwait(false);
        Counters.CacheReloads++;
    }

    // ---- reading users ----------------------------------------------------------------------------------------

    private sealed record PriorRead(string Layout, StatisticsVersion Version, UserRecord[] Users);

    private async Task<PriorRead> ReadUsersAsync(IReadOnlyList<string> userIds)
    {
        var n = userIds.Count;
        var keys = new RedisKey[1 + 2 * n];
        keys[0] = _layout.MetaKey;
        for (var i = 0; i < n; i++)
        {
            if (string.IsNullOrEmpty(userIds[i])) throw new ArgumentException("a user id is empty", nameof(userIds));
            keys[1 + i] = _layout.UserKey(userIds[i]);
            keys[1 + n + i] = _layout.TombKey(userIds[i]);
        }
        var r = (RedisValue[])(await _db.ScriptEvaluateAsync(LuaScripts.ReadUsers, keys).ConfigureAwait(false))!;
        var users = new UserRecord[n];
        for (var i = 0; i < n; i++)
        {
            var o = 3 + 8 * i;
            users[i] = (string?)r[o] switch
            {
                "U" => UserRecord.ForState(DecodeUser(userIds[i], r[o + 1], r[o + 2], r[o + 3], r[o + 4], r[o + 5], r[o + 6], r[o + 7])),
                "T" => UserRecord.ForTombstone(ParseVersion(r[o + 1])),
                _ => UserRecord.Nothing,
            };
        }
        return new PriorRead((string?)r[0] ?? "", new StatisticsVersion((string?)r[1] ?? "", (long)r[2]), users);
    }

    private UserState DecodeUser(string userId, RedisValue version, RedisValue eventId, RedisValue original, RedisValue cloaked, RedisValue classes, RedisValue partition,
        RedisValue sweepMark)
    {
        // Messages name the field, never the user: user ids stay out of logs.
        var o = Codec.BytesToFloats((byte[])original!);
        var c = Codec.BytesToFloats((byte[])cloaked!);
        var a = Codec.BytesToClasses((byte[])classes!);
        if (o.Length != _layout.Dimension || c.Length != _layout.Dimension || a.Length != _layout.Attributes.Length)
            throw new InvalidDataException(
                $"a stored user record under '{_layout.Prefix}' is malformed ({o.Length}/{c.Length} values, {a.Length} classes; " +
                $"expected {_layout.Dimension} and {_layout.Attributes.Length})");
        var p = partition.IsNullOrEmpty ? -1
            : int.TryParse((string?)partition, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) && parsed >= 0 ? parsed
            : throw new InvalidDataException("a stored partition is not a non-negative integer");
        var s = sweepMark.IsNullOrEmpty ? 0
            : int.TryParse((string?)sweepMark, NumberStyles.Integer, CultureInfo.InvariantCulture, out var mark) ? mark
            : throw new InvalidDataException("a stored sweep mark is not an integer");
        return new UserState(userId, ParseVersion(version), (string?)eventId ?? "", o, c, a) { Partition = p, SweepMark = s };
    }

    private static long ParseVersion(RedisValue value) =>
        long.TryParse((string?)value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new InvalidDataException("a stored version is not an integer");
}
