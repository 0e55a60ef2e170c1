using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Generations;

/// <summary>
/// A deployment's state: the registry of its model generations (<see cref="GenerationRegistry"/>) and one
/// <see cref="IStateStore"/> per generation (its users and class statistics, apart from every other generation's).
/// Forget tombstones are shared by the generations. Implemented on Redis by <c>RedisGenerationStore</c> (AttrCloak.Streaming.Redis) and in
/// process by <c>InMemoryGenerationStore</c> (AttrCloak.Streaming.State).
/// </summary>
public interface IGenerationStore : IDisposable
{
    /// <summary>
    /// The registry as it is now. Throws <see cref="StateStoreLostException"/> when a registry this instance saw has
    /// vanished (Redis lost the state), <see cref="StateStoreLayoutException"/> when the prefix holds a store of an
    /// earlier format (without generations).
    /// </summary>
    Task<GenerationRegistry> ReadRegistryAsync(CancellationToken cancellationToken = default);

    /// <summary>The registry's version (one small read): read the registry again when it differs.</summary>
    Task<long> RegistryVersionAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes <paramref name="changed"/> (whole records, by model version) and adds one to the version, only if the
    /// registry is still at <paramref name="expectedVersion"/>. False: someone else wrote; read again and retry.
    /// </summary>
    Task<bool> TryWriteRegistryAsync(long expectedVersion, IReadOnlyList<Generation> changed, CancellationToken cancellationToken = default);

    /// <summary>The state store of <paramref name="modelVersion"/>'s generation (one instance per generation and process).</summary>
    IStateStore StoreOf(string modelVersion);

    /// <summary>Drops this process's store instance of a retired generation (its keys are gone).</summary>
    void Release(string modelVersion);

    /// <summary>Where <paramref name="modelVersion"/>'s keys live, for operators (e.g. <c>attrcloak:g:mf-2</c>).</summary>
    string Describe(string modelVersion);

    /// <summary>
    /// What a failed call's exception means for the loop: the store names its own client's exceptions, so the core
    /// decides what to wait out without knowing which store it runs on (see <c>StoreFaults</c>).
    /// </summary>
    StoreFault ClassifyFault(Exception exception) => StoreFault.None;
}

/// <summary>What an exception thrown by a store means (<see cref="IGenerationStore.ClassifyFault"/>).</summary>
public enum StoreFault
{
    /// <summary>Not the store's: the loop's own handling applies.</summary>
    None,
    /// <summary>The store is unreachable or slow: the same call may succeed later.</summary>
    Unreachable,
    /// <summary>The store refused or failed the call (e.g. a script error): not retried in the event path.</summary>
    Failed,
}

/// <summary>Registry updates with optimistic concurrency, and reads across generations.</summary>
public static class GenerationStoreExtensions
{
    /// <summary>
    /// The served users of the serving generation (see <see cref="IStateStore.ScanServedAsync"/>); nothing before the
    /// first generation. For seeding the shadow audit's sample, which audits the serving generation only.
    /// </summary>
    public static async IAsyncEnumerable<ServedUser> ScanServingAsync(this IGenerationStore store,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var registry = await store.ReadRegistryAsync(cancellationToken).ConfigureAwait(false);
        if (registry.Serving is not { } serving) yield break;
        await foreach (var user in store.StoreOf(serving.ModelVersion).ScanServedAsync(cancellationToken).ConfigureAwait(false))
            yield return user;
    }

    /// <summary>
    /// Reads the registry, asks <paramref name="change"/> what to write and writes it if nobody wrote in between,
    /// else starts over (registry writes are rare: a conflict means another worker moved a generation meanwhile).
    /// Returns the registry after the write (or as read, when there was nothing to write).
    /// </summary>
    public static async Task<GenerationRegistry> UpdateRegistryAsync(this IGenerationStore store,
        Func<GenerationRegistry, IReadOnlyList<Generation>> change, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(change);
        for (var attempt = 1; ; attempt++)
        {
            var registry = await store.ReadRegistryAsync(cancellationToken).ConfigureAwait(false);
            var changed = change(registry);
            if (changed.Count == 0) return registry;
            if (await store.TryWriteRegistryAsync(registry.Version, changed, cancellationToken).ConfigureAwait(false))
            {
                var merged = registry.Generations.Where(g => changed.All(c => c.ModelVersion != g.ModelVersion)).Concat(changed)
                    .OrderBy(g => g.Order).ToList();
                return new GenerationRegistry(registry.Version + 1, merged);
            }
            if (attempt >= 20) throw new StateStoreConflictException($"the generation registry kept changing during {attempt} attempts to write it");
        }
    }
}
