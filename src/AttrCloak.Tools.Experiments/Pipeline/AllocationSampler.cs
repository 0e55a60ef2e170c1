using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace AttrCloak.Tools.Experiments.Pipeline;

/// <summary>
/// Where the benchmark allocates: listens to the runtime's GCAllocationTick events (one per ~100 KB allocated, naming
/// the type of the object that crossed the mark), so the sampled bytes per type approximate the allocation profile.
/// Small object heap and large object heap are kept apart (LOH allocations drive gen2 collections).
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<(string Type, bool Large), long> _bytes = new();

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, GcKeyword);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null) return;
        var type = e.PayloadNames!.IndexOf("TypeName") is var t and >= 0 ? e.Payload[t] as string ?? "?" : "?";
        var kind = e.PayloadNames.IndexOf("AllocationKind") is var k and >= 0 ? Convert.ToInt32(e.Payload[k], System.Globalization.CultureInfo.InvariantCulture) : 0;
        var amount = e.PayloadNames.IndexOf("AllocationAmount64") is var a and >= 0 ? Convert.ToInt64(e.Payload[a], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
        _bytes.AddOrUpdate((type, kind == 1), amount, (_, v) => v + amount);
    }

    /// <summary>The top types by sampled bytes.</summary>
    public IEnumerable<(string Type, bool Large, long Bytes)> Top(int count) =>
        _bytes.OrderByDescending(p => p.Value).Take(count).Select(p => (p.Key.Type, p.Key.Large, p.Value));
}
