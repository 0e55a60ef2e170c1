using StackExchange.Redis;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>Which state-store faults the loop waits out (the one place that names the store client's exceptions).</summary>
internal static class StoreFaults
{
    /// <summary>The store is unreachable or slow: retrying the same call may succeed.</summary>
    public static bool IsUnreachable(Exception e) => e is RedisConnectionException or RedisTimeoutException;

    /// <summary>A batch's store work that is retried whole (unreachable, or another writer won a compare-and-set).</summary>
    public static bool IsRetryable(Exception e) => IsUnreachable(e) || e is StateStoreConflictException;

    /// <summary>A sweep step that failed this way is postponed, not fatal.</summary>
    public static bool PostponesSweeps(Exception e) =>
        e is RedisException or StateStoreConflictException or StateStoreLostException or TimeoutException or InvalidDataException;
}
