using System.Security.Cryptography;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.State;

/// <summary>
/// <see cref="IStateStore"/> in process memory, for the demo and single-process runs without Redis: same semantics as
/// the Redis store (it runs the same batch planner: per-user version folding, Applied / Duplicate /
/// Stale / Rejected, forget tombstones, served and original class statistics as float64 sums about the reference
/// point, a <see cref="StatisticsVersion"/> with a random epoch and a sequence that grows by one per statistics write),
/// but nothing survives the process. Thread-safe: a batch is applied under a lock, all or nothing.
/// <para>
/// Tombstones are named like Redis's, by HMAC-SHA256(secret, user id) (a random per-instance secret unless
/// <see cref="StateStoreOptions.TombstoneSecret"/> is set), and expire after <see cref="StateStoreOptions.TombstoneTtl"/>;
/// after a forget no structure of the store holds the user's id or embeddings. Arrays passed in are copied and arrays
/// handed out are copies, so callers may reuse their buffers.
/// </para>
/// </summary>
public sealed class InMemoryStateStore : IStateStore
{
    private readonly ApplyFold _planner;
    private readonly StatisticsShape _shape;
    private readonly InMemoryTombstones _tombstones;
    private readonly double _verifyTolerance;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, UserState> _users = new(StringComparer.Ordinal);
    private bool _deleted;
    private readonly double[][] _slots;
    private readonly string _epoch = Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
    private long _sequence;

    /// <param name="options">
    /// Dimension, attributes and reference point as for Redis; <see cref="StateStoreOptions.TombstoneSecret"/> may be
    /// empty (a random secret is drawn: tombstones die with the process anyway). Prefix, cache and retry settings do
    /// not apply.
    /// </param>
    /// <param name="timeProvider">clock of the tombstone expiry (tests); the system clock by default.</param>
    /// <param name="tombstones">the deployment's forget tombstones, shared by its generations; a store of its own by default.</param>
    public InMemoryStateStore(StateStoreOptions options, TimeProvider? timeProvider = null, InMemoryTombstones? tombstones = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var secret = options.TombstoneSecret is { Length: > 0 } s ? s : RandomNumberGenerator.GetBytes(32);
        var validated = new StateStoreOptions
        {
            Dimension = options.Dimension,
            Attributes = options.Attributes,
            ReferencePoint = options.ReferencePoint,
            TombstoneSecret = secret,
            TombstoneTtl = options.TombstoneTtl,
            VerifyRelativeTolerance = options.VerifyRelativeTolerance,
        };
        _shape = StatisticsShape.Of(validated);
        _planner = new ApplyFold(_shape);
        _verifyTolerance = options.VerifyRelativeTolerance;
        _time = timeProvider ?? TimeProvider.System;
        _tombstones = tombstones ?? new InMemoryTombstones(secret, options.TombstoneTtl, _time);
        _slots = new double[_shape.SlotCount][];
        for (var i = 0; i < _slots.Length; i++) _slots[i] = new double[_shape.StatsLength];
    }

    /// <summary>Users with state (not counting tombstones).</summary>
    public int UserCount
    {
        get { lock (_lock) return _users.Count; }
    }

    /// <inheritdoc />
    public Task<ApplyResult[]> ApplyConsumedAsync(IReadOnlyList<UserStateChange> batch, IReadOnlyList<ConsumedOffset> consumed, CancellationToken cancellationToken = default) =>
        ApplyConsumed(batch, consumed, null, cancellationToken);

    /// <inheritdoc />
    /// <remarks>The priors are all here, so none is taken from <paramref name="cache"/>; it only learns what was written.</remarks>
    public Task<ApplyResult[]> ApplyConsumedAsync(IReadOnlyList<UserStateChange> batch, IReadOnlyList<ConsumedOffset> consumed, UserCache cache,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cache);
        return ApplyConsumed(batch, consumed, cache, cancellationToken);
    }

    private Task<ApplyResult[]> ApplyConsumed(IReadOnlyList<UserStateChange> batch, IReadOnlyList<ConsumedOffset> consumed, UserCache? cache, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(consumed);
        lock (_lock)
        {
            var results = Apply(batch, cache, cancellationToken); // the lock is re-entrant
            foreach (var c in consumed)
                if (!_consumed.TryGetValue((c.Topic, c.Partition), out var mark) || mark < c.Offset) _consumed[(c.Topic, c.Partition)] = c.Offset;
            return Task.FromResult(results);
        }
    }

    /// <inheritdoc />
    public Task<long[]?> ReadConsumedOffsetsAsync(IReadOnlyList<ConsumedOffset> partitions, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        lock (_lock) return Task.FromResult<long[]?>(partitions.Select(p => _consumed.GetValueOrDefault((p.Topic, p.Partition), -1)).ToArray());
    }

    private readonly Dictionary<(string Topic, int Partition), long> _consumed = [];

    /// <inheritdoc />
    public Task<ApplyResult[]> ApplyAsync(IReadOnlyList<UserStateChange> batch, CancellationToken cancellationToken = default) =>
        Task.FromResult(Apply(batch, null, cancellationToken));

    /// <summary>Applies the batch; records the users it changed in <paramref name="cache"/> (copies: the caller may keep them).</summary>
    private ApplyResult[] Apply(IReadOnlyList<UserStateChange> batch, UserCache? cache, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        var results = new ApplyResult[batch.Count];
        var grouped = _planner.Group(batch, results);
        if (grouped.Users.Count == 0) return results;
        lock (_lock)
        {
            ThrowIfDeleted();
            var priors = new PriorUser[grouped.Users.Count];
            for (var u = 0; u < priors.Length; u++)
            {
                var id = grouped.Users[u];
                priors[u] = _users.TryGetValue(id, out var state) ? new PriorUser(state, null)
                    : _tombstones.Version(id) is { } t ? new PriorUser(null, t)
                    : PriorUser.Nothing;
            }

            // Planning cannot fail half way (it only reads); everything below is plain assignments.
            var plan = _planner.Plan(batch, grouped, priors, results);
            for (var s = 0; s < plan.Slots.Length; s++) SufficientStatistics.AddInPlace(_slots[plan.Slots[s]], plan.Deltas[s]);
            if (plan.Slots.Length > 0) _sequence++;
            for (var u = 0; u < plan.Users.Length; u++)
            {
                var p = plan.Users[u];
                switch (p.Op)
                {
                    case 'F':
                        _users.Remove(p.UserId);
                        _tombstones.Set(p.UserId, p.Version);
                        break;
                    case 'C':
                        // The tombstone stays until it expires (shared by the generations; see apply.lua).
                        _users[p.UserId] = p.Final!;
                        break;
                    case 'U':
                        _users[p.UserId] = p.Final!;
                        break;
                }
                if (p.Op != 'N') cache?.Set(p.UserId, new PriorUser(Copy(p.Final), p.Final is null ? p.Version : null));
            }
        }
        return results;
    }

    /// <inheritdoc />
    public Task<UserState?> GetUserAsync(string userId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        lock (_lock)
        {
            ThrowIfDeleted();
            return Task.FromResult(Copy(_users.GetValueOrDefault(userId)));
        }
    }

    /// <inheritdoc />
    public Task<UserState?[]> GetUsersAsync(IReadOnlyList<string> userIds, UserCache cache, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cache);
        return Task.FromResult(GetUsers(userIds, cache));
    }

    /// <inheritdoc />
    public Task<UserState?[]> GetUsersAsync(IReadOnlyList<string> userIds, CancellationToken cancellationToken = default) =>
        Task.FromResult(GetUsers(userIds, null));

    private UserState?[] GetUsers(IReadOnlyList<string> userIds, UserCache? cache)
    {
        ArgumentNullException.ThrowIfNull(userIds);
        if (userIds.Any(string.IsNullOrEmpty)) throw new ArgumentException("a user id is empty", nameof(userIds));
        lock (_lock)
        {
            ThrowIfDeleted();
            var states = userIds.Select(id => Copy(_users.GetValueOrDefault(id))).ToArray();
            if (cache is not null)
                for (var i = 0; i < states.Length; i++)
                    cache.Set(userIds[i], new PriorUser(Copy(states[i]), states[i] is null ? _tombstones.Version(userIds[i]) : null));
            return states;
        }
    }

    /// <inheritdoc />
    public Task<StatisticsSnapshot> ReadStatisticsAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            ThrowIfDeleted();
            return Task.FromResult(_shape.ToSnapshot(new StatisticsVersion(_epoch, _sequence), _slots));
        }
    }

    /// <inheritdoc />
    public Task<StatisticsVersion> StatisticsSequenceAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            ThrowIfDeleted();
            return Task.FromResult(new StatisticsVersion(_epoch, _sequence));
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ServedUser> ScanServedAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ServedUser[] users;
        lock (_lock)
            users = _users.Values.Select(u => new ServedUser(u.UserId, (float[])u.Cloaked.Clone(), (int[])u.Classes.Clone())).ToArray();
        foreach (var user in users)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return user;
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<UserState> ScanStatesAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        UserState[] users;
        lock (_lock)
        {
            ThrowIfDeleted();
            users = _users.Values.Select(u => Copy(u)!).ToArray();
        }
        foreach (var user in users)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return user;
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>The cursor is a position in the users ordered by id: users created or forgotten meanwhile may shift it
    /// (a user present throughout can be seen twice, never missed, since ids only move up when others go).</remarks>
    public Task<UserSweepPage> ScanSweepAsync(string cursor, int count, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        lock (_lock)
        {
            ThrowIfDeleted();
            var after = cursor == "0" ? null : cursor[1..]; // "k{last id}" continues after that id
            var page = _users.Keys.Where(id => after is null || string.CompareOrdinal(id, after) > 0)
                .Order(StringComparer.Ordinal).Take(count).ToList();
            var users = page.Select(id => new SweepEntry(id, _users[id].Partition, _users[id].SweepMark)).ToList();
            var next = page.Count < count ? "0" : "k" + page[^1];
            return Task.FromResult(new UserSweepPage(next, users));
        }
    }

    /// <inheritdoc />
    public Task MarkSweptAsync(IReadOnlyList<string> userIds, int epoch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userIds);
        lock (_lock)
        {
            ThrowIfDeleted();
            foreach (var id in userIds)
                if (_users.TryGetValue(id, out var state)) _users[id] = state with { SweepMark = epoch };
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<long> CountUsersAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            ThrowIfDeleted();
            return Task.FromResult((long)_users.Count);
        }
    }

    /// <inheritdoc />
    public Task<bool[]> ContainsAsync(IReadOnlyList<string> userIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userIds);
        lock (_lock)
        {
            ThrowIfDeleted();
            return Task.FromResult(userIds.Select(_users.ContainsKey).ToArray());
        }
    }

    /// <inheritdoc />
    public Task DeleteAllAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _deleted = true;
            _users.Clear();
            foreach (var slot in _slots) Array.Clear(slot);
        }
        return Task.CompletedTask;
    }

    /// <summary>A deleted (retired) store behaves like a lost one: nothing is read or written any more.</summary>
    private void ThrowIfDeleted()
    {
        if (_deleted) throw new StateStoreLostException("in-memory");
    }

    /// <summary>
    /// Compares the running statistics with a recomputation from all user states (both populations; the same
    /// comparison and tolerance as the Redis adapter's <c>StatisticsVerifier</c>). O(n d^2) under the lock: a maintenance call.
    /// </summary>
    public StatisticsVerificationReport VerifyStatistics()
    {
        lock (_lock)
        {
            var recomputation = new StatisticsRecomputation(_shape);
            foreach (var user in _users.Values) recomputation.Add(user.Original, user.Cloaked, user.Classes);
            var differences = recomputation.Compare(_slots, new bool[_slots.Length], _verifyTolerance);
            return new StatisticsVerificationReport(recomputation.Users, new StatisticsVersion(_epoch, _sequence), differences, false, 1);
        }
    }

    /// <summary>Tests: corrupts one stored sum, so that verification can be shown to catch it.</summary>
    internal void CorruptForTests(StatisticsPopulation population, int attribute, int cls, int index, double delta)
    {
        lock (_lock) _slots[_shape.Slot(population, attribute, cls)][index] += delta;
    }

    /// <summary>Tests: every stored float32 vector and string (user ids, event ids, tombstone names), to look for traces of a user.</summary>
    internal (List<float[]> Vectors, List<string> Strings) DumpForTests()
    {
        lock (_lock)
        {
            var vectors = _users.Values.SelectMany(u => new[] { u.Original, u.Cloaked }).ToList();
            var strings = _users.Keys.Concat(_users.Values.SelectMany(u => new[] { u.UserId, u.EventId })).Concat(_tombstones.NamesForTests()).ToList();
            return (vectors, strings);
        }
    }

    private static UserState? Copy(UserState? s) =>
        s is null ? null : s with { Original = (float[])s.Original.Clone(), Cloaked = (float[])s.Cloaked.Clone(), Classes = (int[])s.Classes.Clone() };
}
