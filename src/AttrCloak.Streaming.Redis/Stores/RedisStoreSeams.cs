namespace AttrCloak.Streaming.Redis;

/// <summary>Behaviour injected into a <see cref="RedisStateStore"/> by tests and benchmarks; production passes none.</summary>
public sealed record RedisStoreSeams
{
    /// <summary>No injected behaviour.</summary>
    public static RedisStoreSeams None { get; } = new();

    /// <summary>Always let the script do the float64 additions (the fallback path), to test or time it.</summary>
    public bool ServerSideArithmetic { get; init; }

    /// <summary>Runs between the read and the write of each attempt (1, 2, ...): interleaves another writer deterministically.</summary>
    public Func<int, Task>? BeforeWrite { get; init; }
}
