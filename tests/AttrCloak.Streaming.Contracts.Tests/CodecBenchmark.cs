using System.Diagnostics;
using AttrCloak.Streaming.Contracts.Tests.Support;

namespace AttrCloak.Streaming.Contracts.Tests;

/// <summary>
/// Single-thread decode/encode throughput at d = 64, JSON against the binary encoding. A command that prints
/// figures, not a timed assertion; after a Release build run
/// <c>tests/AttrCloak.Streaming.Contracts.Tests/bin/Release/net10.0/AttrCloak.Streaming.Contracts.Tests -class AttrCloak.Streaming.Contracts.Tests.CodecBenchmark -explicit only -showLiveOutput</c>
/// (about 15 s). The worker needs at least 20,000 embedding updates/s on one core.
/// </summary>
public sealed class CodecBenchmark(ITestOutputHelper output)
{
    private const int Dimension = 64;

    [Fact(Explicit = true, DisplayName = "Benchmark (prints events/s): JSON vs binary codec at d = 64")]
    public void Json_and_binary_at_d64()
    {
        var limits = new ContractLimits(Dimension);
        var catalog = Samples.Catalog;
        // Distinct events, so that nothing is cached by accident.
        var updates = Enumerable.Range(0, 1024)
            .Select(i => Samples.Update(Dimension, userId: $"user-{i}") with { Embedding = Samples.Embedding(Dimension, i), Version = i })
            .ToArray();
        var json = updates.Select(u => EventCodec.Encode(u)).ToArray();
        var binary = updates.Select(u => EventCodec.Encode(u, binary: true)).ToArray();
        output.WriteLine($"d = {Dimension}: JSON {json.Average(b => b.Length):F0} bytes/event, binary {binary.Average(b => b.Length):F0} bytes/event");

        Measure("JSON decode", i => EventCodec.TryDecode(json[i & 1023], null, limits).IsSuccess);
        Measure("JSON decode + catalog", i => EventCodec.TryDecode(json[i & 1023], null, limits, catalog).IsSuccess);
        Measure("binary decode", i => EventCodec.TryDecode(binary[i & 1023], ContentTypes.EmbeddingBinary, limits).IsSuccess);
        Measure("JSON encode", i => EventCodec.Encode(updates[i & 1023]).Length > 0);
        Measure("binary encode", i => EventCodec.Encode(updates[i & 1023], binary: true).Length > 0);
        var cloaked = updates.Select(u => new CloakedEmbedding(u.UserId, u.Version, u.ModelVersion, u.Embedding, ["gender", "age"], u.EventTime)).ToArray();
        Measure("cloaked JSON encode", i => EventCodec.Encode(cloaked[i & 1023]).Length > 0);
    }

    private void Measure(string name, Func<int, bool> step)
    {
        for (var i = 0; i < 50_000; i++) // warm-up: JIT tiers
            step(i).ShouldBeTrue();
        double bestWall = 0, bestCpu = 0;
        var allocated = 0L;
        var process = Process.GetCurrentProcess();
        for (var round = 0; round < 5; round++)
        {
            const int n = 100_000;
            var bytesBefore = GC.GetAllocatedBytesForCurrentThread();
            process.Refresh();
            var cpuBefore = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (var i = 0; i < n; i++)
                step(i);
            sw.Stop();
            process.Refresh();
            var cpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
            allocated = (GC.GetAllocatedBytesForCurrentThread() - bytesBefore) / n;
            // Best round of each: on a shared machine the wall time also measures the neighbours; CPU time
            // (the whole process, so GC threads included) does not.
            bestWall = Math.Max(bestWall, n / Math.Max(sw.Elapsed.TotalSeconds, 1e-9));
            bestCpu = Math.Max(bestCpu, n / Math.Max(cpu, 1e-9));
        }
        output.WriteLine($"{name,-24} {bestWall,12:N0} events/s wall  {bestCpu,12:N0} events/CPU-s  {allocated,6:N0} B allocated/event");
    }
}
