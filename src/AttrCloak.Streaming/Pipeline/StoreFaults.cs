using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// Which state-store faults the loop waits out. The store classifies its client's exceptions
/// (<see cref="IGenerationStore.ClassifyFault"/>); this is the one place that decides what each kind means.
/// </summary>
internal sealed class StoreFaults(IGenerationStore store)
{
    /// <summary>The store is unreachable or slow: retrying the same call may succeed.</summary>
    public bool IsUnreachable(Exception e) => store.ClassifyFault(e) == StoreFault.Unreachable;

    /// <summary>A batch's store work that is retried whole (unreachable, or another writer won a compare-and-set).</summary>
    public bool IsRetryable(Exception e) => IsUnreachable(e) || e is StateStoreConflictException;

    /// <summary>A sweep step that failed this way is postponed, not fatal.</summary>
    public bool PostponesSweeps(Exception e) =>
        store.ClassifyFault(e) != StoreFault.None
        || e is StateStoreConflictException or StateStoreLostException or TimeoutException or InvalidDataException;
}
