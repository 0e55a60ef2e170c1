namespace AttrCloak.Streaming.State;

/// <summary>
/// A batch could not be applied because other writers kept changing its users or the statistics between read and
/// write (every attempt of <see cref="StateStoreOptions.MaxApplyAttempts"/>). Nothing of the batch was written; retry it.
/// </summary>
public sealed class StateStoreConflictException(string message) : Exception(message);

/// <summary>The store cannot be reached (its message names where it was looked for, never a password).</summary>
public sealed class StateStoreUnavailableException(string message) : Exception(message);

/// <summary>Redis holds data of another layout (dimension, attributes or reference point) under this prefix.</summary>
public sealed class StateStoreLayoutException(string message) : Exception(message);

/// <summary>
/// The deployment's meta key (<c>{prefix}:meta</c>) vanished after this store instance had seen it: Redis lost the
/// state (restarted without its data, flushed, keys evicted). The store does not re-create it, since carrying on would
/// build class statistics of a partial population and forget every user's history; nothing of the call was written.
/// Once the state is rebuilt (<c>attrcloak bootstrap</c> re-creates the meta key), the same instance works again.
/// </summary>
public sealed class StateStoreLostException(string prefix, string? key = null)
    : Exception($"the Redis state under prefix '{prefix}' is gone: its key '{key ?? prefix + ":meta"}' vanished (Redis restarted without its data, was flushed, or evicted keys)")
{
    /// <summary>The deployment's key prefix.</summary>
    public string Prefix { get; } = prefix;
}
