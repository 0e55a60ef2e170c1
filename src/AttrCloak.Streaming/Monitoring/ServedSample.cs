namespace AttrCloak.Streaming.Monitoring;

/// <summary>
/// A bounded, uniform sample of the served population for the shadow audit: the <c>capacity</c> users with the
/// smallest keyed hash of their id (a bottom-k sketch). Unlike reservoir sampling it is uniform over distinct users
/// however often each one is re-served, a sampled user's entry follows their latest served embedding, and a forgotten
/// user simply leaves (the next served users below the threshold fill the place). Memory: capacity x (d floats +
/// classes + id). Thread-safe; <see cref="OnServed"/> is O(1) for users outside the sample once it is full.
/// <para>
/// It samples the serving model generation only (<see cref="OnServingGeneration"/>): embeddings of two trainings
/// live in unrelated spaces, so an audit over a mix would measure nothing. After a promotion it starts empty and the
/// promotion's sweep, which publishes every user of the new generation, fills it again.
/// </para>
/// </summary>
public sealed class ServedSample : IServedPopulationObserver
{
    private readonly int _capacity;
    private readonly int _dimension;
    private readonly int _attributes;
    private readonly ulong _hashKey;
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    // Max-heap on hash: the root is the entry that leaves when a smaller hash arrives.
    private readonly PriorityQueue<string, (ulong Hash, string Id)> _largestFirst = new(Comparer<(ulong Hash, string Id)>.Create(
        (a, b) => b.Hash != a.Hash ? b.Hash.CompareTo(a.Hash) : string.CompareOrdinal(b.Id, a.Id)));
    private readonly Lock _lock = new();
    private long _version;
    private string? _generation;

    public ServedSample(int capacity, int dimension, int attributes, ulong? hashKey = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(attributes, 1);
        _capacity = capacity;
        _dimension = dimension;
        _attributes = attributes;
        _hashKey = hashKey ?? (ulong)Random.Shared.NextInt64();
    }

    /// <summary>Users currently in the sample.</summary>
    public int Count
    {
        get { lock (_lock) return _entries.Count; }
    }

    /// <summary>Grows with every change; lets the auditor skip a run when nothing was served since the last one.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>The generation sampled (null until the pipeline names it: then every served user is taken).</summary>
    public string? Generation
    {
        get { lock (_lock) return _generation; }
    }

    public void OnServed(string userId, string modelVersion, ReadOnlySpan<float> cloaked, ReadOnlySpan<int> classes)
    {
        ArgumentNullException.ThrowIfNull(modelVersion);
        lock (_lock)
        {
            _generation ??= modelVersion;
            if (modelVersion != _generation)
            {
                // Served from another generation (a superseded one): not part of the audited population.
                RemoveLocked(userId);
                return;
            }
        }
        Offer(userId, cloaked, classes, seeded: false);
    }

    /// <summary>The serving generation changed: the sample starts again with users of <paramref name="modelVersion"/> only.</summary>
    public void OnServingGeneration(string modelVersion)
    {
        ArgumentNullException.ThrowIfNull(modelVersion);
        lock (_lock)
        {
            if (_generation == modelVersion) return;
            var switched = _generation is not null;
            _generation = modelVersion;
            if (!switched) return;
            _entries.Clear();
            _largestFirst.Clear();
            _version++;
        }
    }

    /// <summary>
    /// Offers a user read from the store at start-up (see <see cref="BeginSeeding"/>): ignored when the pipeline has
    /// already served a newer state of that user or forgotten them since seeding began.
    /// </summary>
    public void OnSeeded(string userId, ReadOnlySpan<float> cloaked, ReadOnlySpan<int> classes) => Offer(userId, cloaked, classes, seeded: true);

    /// <summary>Starts remembering forgets, so that a user read from the store before their forget is not added back.</summary>
    public void BeginSeeding()
    {
        lock (_lock) _forgottenWhileSeeding = new HashSet<string>(StringComparer.Ordinal);
    }

    /// <summary>Ends <see cref="BeginSeeding"/>.</summary>
    public void EndSeeding()
    {
        lock (_lock) _forgottenWhileSeeding = null;
    }

    private HashSet<string>? _forgottenWhileSeeding;

    private void Offer(string userId, ReadOnlySpan<float> cloaked, ReadOnlySpan<int> classes, bool seeded)
    {
        ArgumentNullException.ThrowIfNull(userId);
        if (cloaked.Length != _dimension)
            throw new ArgumentException($"expected {_dimension} values, got {cloaked.Length}", nameof(cloaked));
        if (classes.Length != _attributes)
            throw new ArgumentException($"expected {_attributes} classes, got {classes.Length}", nameof(classes));
        var hash = Hash(userId);
        lock (_lock)
        {
            if (seeded && (_entries.ContainsKey(userId) || _forgottenWhileSeeding?.Contains(userId) == true))
                return;
            if (_entries.TryGetValue(userId, out var entry))
            {
                cloaked.CopyTo(entry.Embedding);
                classes.CopyTo(entry.Classes);
            }
            else
            {
                if (_entries.Count >= _capacity)
                {
                    _largestFirst.TryPeek(out _, out var largest);
                    if (largest.Hash < hash || (largest.Hash == hash && string.CompareOrdinal(largest.Id, userId) < 0))
                        return;
                    var evicted = _largestFirst.Dequeue();
                    _entries.Remove(evicted);
                }
                _entries.Add(userId, new Entry(cloaked.ToArray(), classes.ToArray()));
                _largestFirst.Enqueue(userId, (hash, userId));
            }
            _version++;
        }
    }

    public void OnForgotten(string userId)
    {
        ArgumentNullException.ThrowIfNull(userId);
        lock (_lock)
        {
            _forgottenWhileSeeding?.Add(userId);
            RemoveLocked(userId);
        }
    }

    private void RemoveLocked(string userId)
    {
        if (!_entries.Remove(userId))
            return;
        // O(k) search of the heap; forgets are rare next to updates.
        _largestFirst.Remove(userId, out _, out _);
        _version++;
    }

    /// <summary>True when the user is in the sample (tests; the forget path must leave nothing behind).</summary>
    public bool Contains(string userId)
    {
        lock (_lock) return _entries.ContainsKey(userId);
    }

    /// <summary>A copy of the sample: embeddings row-major [n, d] and classes [n, attributes], in no particular order; no ids.</summary>
    public (float[] Embeddings, int[] Classes, int Users) Snapshot()
    {
        lock (_lock)
        {
            var n = _entries.Count;
            var embeddings = new float[n * _dimension];
            var classes = new int[n * _attributes];
            var row = 0;
            // Dictionary order depends on insertion history, not on the ids: fine for an audit that shuffles anyway.
            foreach (var entry in _entries.Values)
            {
                entry.Embedding.CopyTo(embeddings.AsSpan(row * _dimension));
                entry.Classes.CopyTo(classes.AsSpan(row * _attributes));
                row++;
            }
            return (embeddings, classes, n);
        }
    }

    private ulong Hash(string userId)
    {
        // Keyed so that an adversary choosing ids cannot steer users into or out of the audit sample.
        var h = System.IO.Hashing.XxHash64.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(userId.AsSpan()), (long)_hashKey);
        return h;
    }

    private sealed record Entry(float[] Embedding, int[] Classes);
}
