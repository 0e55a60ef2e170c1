using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using AttrCloak.Streaming.Redis.Scripts;
using StackExchange.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Generations;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// <see cref="IGenerationStore"/> on Redis. Keys: the registry hash <c>{prefix}:generations</c> (field <c>version</c>,
/// and <c>g:{model version}</c> = the generation's record as JSON), every generation's own
/// <see cref="RedisStateStore"/> under <c>{prefix}:g:{percent-encoded model version}</c>, and the forget tombstones
/// of all generations under <c>{prefix}:tomb:</c>. Thread-safe.
/// </summary>
public sealed class RedisGenerationStore : IGenerationStore
{
    private const string VersionField = "version";
    private const string GenerationFieldPrefix = "g:";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly IConnectionMultiplexer _redis;
    private readonly IDatabase _db;
    private readonly StateStoreOptions _options;
    private readonly RedisKey _registryKey;
    private readonly ConcurrentDictionary<string, RedisStateStore> _stores = new(StringComparer.Ordinal);
    private volatile bool _seen;

    /// <param name="redis">the shared connection.</param>
    /// <param name="options">the deployment's options: <see cref="StateStoreOptions.Prefix"/> is the deployment's prefix.</param>
    public RedisGenerationStore(IConnectionMultiplexer redis, StateStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _redis = redis;
        _db = redis.GetDatabase();
        _options = options;
        _registryKey = StoreLayout.RegistryKey(options.Prefix);
    }

    /// <summary>The deployment's options (the prefix is the deployment's; each generation's store gets its own).</summary>
    public StateStoreOptions Options => _options;

    /// <inheritdoc />
    public async Task<GenerationRegistry> ReadRegistryAsync(CancellationToken cancellationToken = default)
    {
        var entries = await _db.HashGetAllAsync(_registryKey).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (entries.Length == 0)
        {
            if (_seen) throw Lost();
            await RefuseOlderFormatAsync(cancellationToken).ConfigureAwait(false);
            return GenerationRegistry.Empty;
        }
        _seen = true;
        long version = 0;
        var generations = new List<Generation>();
        foreach (var e in entries)
        {
            var name = (string)e.Name!;
            if (name == VersionField) version = (long)e.Value;
            else if (name.StartsWith(GenerationFieldPrefix, StringComparison.Ordinal))
                generations.Add(JsonSerializer.Deserialize<Generation>((string)e.Value!, Json)
                    ?? throw new InvalidDataException($"the generation registry {_registryKey} holds an empty record"));
        }
        return new GenerationRegistry(version, generations.OrderBy(g => g.Order).ToList());
    }

    /// <inheritdoc />
    public async Task<long> RegistryVersionAsync(CancellationToken cancellationToken = default)
    {
        var v = await _db.HashGetAsync(_registryKey, VersionField).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (v.IsNull && _seen) throw Lost();
        return v.IsNull ? 0 : (long)v;
    }

    /// <inheritdoc />
    public async Task<bool> TryWriteRegistryAsync(long expectedVersion, IReadOnlyList<Generation> changed, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changed);
        // Read at version 0 by an instance that saw a registry since: stale (a read would say lost, or the new version).
        if (expectedVersion == 0 && _seen) return false;
        var args = new RedisValue[1 + 2 * changed.Count];
        args[0] = expectedVersion.ToString(CultureInfo.InvariantCulture);
        for (var i = 0; i < changed.Count; i++)
        {
            args[1 + 2 * i] = GenerationFieldPrefix + changed[i].ModelVersion;
            args[2 + 2 * i] = JsonSerializer.Serialize(changed[i], Json);
        }
        var r = (long)(await _db.ScriptEvaluateAsync(LuaScripts.WriteRegistry, [_registryKey], args).WaitAsync(cancellationToken).ConfigureAwait(false));
        if (r < 0) return false;
        _seen = true;
        return true;
    }

    /// <inheritdoc />
    public IStateStore StoreOf(string modelVersion) =>
        _stores.GetOrAdd(modelVersion, m => new RedisStateStore(_redis, GenerationOptions(m)));

    /// <summary><see cref="StoreOf"/> with the concrete type (maintenance: statistics verification).</summary>
    public StateStoreOptions GenerationOptions(string modelVersion)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelVersion);
        return new StateStoreOptions
        {
            Prefix = GenerationPrefix(_options.Prefix, modelVersion),
            TombstonePrefix = _options.Prefix,
            Dimension = _options.Dimension,
            Attributes = _options.Attributes,
            ReferencePoint = _options.ReferencePoint,
            TombstoneSecret = _options.TombstoneSecret,
            TombstoneTtl = _options.TombstoneTtl,
            MaxApplyAttempts = _options.MaxApplyAttempts,
            VerifyRelativeTolerance = _options.VerifyRelativeTolerance,
        };
    }

    /// <inheritdoc />
    public void Release(string modelVersion)
    {
        if (_stores.TryRemove(modelVersion, out var store)) store.Dispose();
    }

    /// <inheritdoc />
    public string Describe(string modelVersion) => GenerationPrefix(_options.Prefix, modelVersion);

    /// <inheritdoc/>
    public StoreFault ClassifyFault(Exception exception) => exception switch
    {
        RedisConnectionException or RedisTimeoutException => StoreFault.Unreachable,
        RedisException => StoreFault.Failed,
        _ => StoreFault.None,
    };

    /// <summary>A generation's key prefix (see <see cref="StoreLayout.GenerationPrefix"/>).</summary>
    public static string GenerationPrefix(string deploymentPrefix, string modelVersion) => StoreLayout.GenerationPrefix(deploymentPrefix, modelVersion);

    public void Dispose()
    {
        foreach (var store in _stores.Values) store.Dispose();
        _stores.Clear();
    }

    private StateStoreLostException Lost() => new(_options.Prefix, (string)_registryKey!);

    /// <summary>A prefix written by a build before generations (its meta key at the top) cannot be read as one.</summary>
    private async Task RefuseOlderFormatAsync(CancellationToken cancellationToken)
    {
        var layout = await _db.HashGetAsync(StoreLayout.MetaKeyOf(_options.Prefix), "layout").WaitAsync(cancellationToken).ConfigureAwait(false);
        if (layout.IsNull) return;
        throw new StateStoreLayoutException(
            $"Redis prefix '{_options.Prefix}' holds a state store of an earlier format (layout {(string?)layout}) without model generations; " +
            $"this build keeps one store per model generation (format {StoreLayout.FormatVersion}). Point the worker at a new prefix, " +
            "or delete the prefix's keys and bootstrap again");
    }
}
