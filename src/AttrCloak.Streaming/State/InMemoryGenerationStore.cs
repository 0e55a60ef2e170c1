using System.Security.Cryptography;
using AttrCloak.Streaming.Generations;

namespace AttrCloak.Streaming.State;

/// <summary>
/// <see cref="IGenerationStore"/> in process memory (the demo, tests without Redis): the registry under a lock, one
/// <see cref="InMemoryStateStore"/> per generation, the forget tombstones shared by them. Nothing survives the process.
/// </summary>
public sealed class InMemoryGenerationStore : IGenerationStore
{
    private readonly StateStoreOptions _options;
    private readonly TimeProvider? _time;
    private readonly InMemoryTombstones _tombstones;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, InMemoryStateStore> _stores = new(StringComparer.Ordinal);
    private GenerationRegistry _registry = GenerationRegistry.Empty;

    /// <param name="options">dimension, attributes, reference point as for Redis; an empty tombstone secret draws a random one.</param>
    /// <param name="timeProvider">clock of the tombstone expiry (tests).</param>
    public InMemoryGenerationStore(StateStoreOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _time = timeProvider;
        var secret = options.TombstoneSecret is { Length: > 0 } s ? s : RandomNumberGenerator.GetBytes(32);
        _tombstones = new InMemoryTombstones(secret, options.TombstoneTtl, timeProvider);
    }

    /// <inheritdoc />
    public Task<GenerationRegistry> ReadRegistryAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock) return Task.FromResult(_registry);
    }

    /// <inheritdoc />
    public Task<long> RegistryVersionAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock) return Task.FromResult(_registry.Version);
    }

    /// <inheritdoc />
    public Task<bool> TryWriteRegistryAsync(long expectedVersion, IReadOnlyList<Generation> changed, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changed);
        lock (_lock)
        {
            if (_registry.Version != expectedVersion) return Task.FromResult(false);
            var merged = _registry.Generations.Where(g => changed.All(c => c.ModelVersion != g.ModelVersion)).Concat(changed)
                .OrderBy(g => g.Order).ToList();
            _registry = new GenerationRegistry(expectedVersion + 1, merged);
            return Task.FromResult(true);
        }
    }

    /// <inheritdoc />
    public IStateStore StoreOf(string modelVersion) => Store(modelVersion);

    /// <summary><see cref="StoreOf"/> with the concrete type (tests: statistics verification, dumps).</summary>
    public InMemoryStateStore Store(string modelVersion)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelVersion);
        lock (_lock)
        {
            if (!_stores.TryGetValue(modelVersion, out var store))
                _stores[modelVersion] = store = new InMemoryStateStore(_options, _time, _tombstones);
            return store;
        }
    }

    /// <inheritdoc />
    public void Release(string modelVersion)
    {
        lock (_lock) _stores.Remove(modelVersion);
    }

    /// <inheritdoc />
    public string Describe(string modelVersion) => $"in-process store of '{modelVersion}'";

    /// <summary>Tests: the tombstone names (to look for traces of a forgotten user).</summary>
    internal IReadOnlyList<string> TombstoneNamesForTests() => _tombstones.NamesForTests();

    public void Dispose()
    {
    }
}
