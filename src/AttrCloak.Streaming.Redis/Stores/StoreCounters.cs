namespace AttrCloak.Streaming.Redis;

/// <summary>Counts of what a <see cref="RedisStateStore"/> did (tests, benchmarks, metrics).</summary>
public sealed class StoreCounters
{
    public long Batches { get; internal set; }
    public long AbsoluteWrites { get; internal set; }
    public long DeltaWrites { get; internal set; }
    public long Conflicts { get; internal set; }
    public long CacheReloads { get; internal set; }
    public long UserReads { get; internal set; }
    public long UserCacheHits { get; internal set; }
    /// <summary>Stopwatch ticks spent folding, computing deltas and encoding (client CPU), and waiting for the apply script.</summary>
    public long ClientTicks { get; internal set; }
    /// <summary>The part of <see cref="ClientTicks"/> spent folding events and summing the statistics deltas.</summary>
    public long PlanTicks { get; internal set; }
    public long WriteTicks { get; internal set; }
}
