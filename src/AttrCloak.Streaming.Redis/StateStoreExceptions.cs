namespace AttrCloak.Streaming.Redis;

/// <summary>
/// A batch could not be applied because other writers kept changing its users or the statistics between read and
/// write (every attempt of <see cref="StateStoreOptions.MaxApplyAttempts"/>). Nothing of the batch was written; retry it.
/// </summary>
public sealed class StateStoreConflictException(string message) : Exception(message);

/// <summary>Redis holds data of another layout (dimension, attributes or reference point) under this prefix.</summary>
public sealed class StateStoreLayoutException(string message) : Exception(message);
