using System.Diagnostics;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Tools.Samples;

namespace AttrCloak.Tools.Experiments.Contracts;

/// <summary>
/// <c>codec</c>: single-thread decode/encode throughput at d = 64, JSON against the binary encoding; the best of five
/// rounds of 100,000 events after a warm-up, wall and CPU, and the bytes allocated per event (about 15 s). Prints
/// figures, asserts nothing. The worker needs at least 20,000 embedding updates/s on one core.
/// </summary>
internal sealed class CodecBenchmark(ExperimentContext output)
{
    private const int Dimension = 64;

    public static void Run(ExperimentContext output) => new CodecBenchmark(output).JsonAndBinaryAtD64();

    private void JsonAndBinaryAtD64()
    {
        var limits = new ContractLimits(Dimension);
        var catalog = ContractSamples.Catalog;
        // Distinct events, so that nothing is cached by accident.
        var updates = Enumerable.Range(0, 1024)
            .Select(i => ContractSamples.Update(Dimension, userId: $"user-{i}") with { Embedding = ContractSamples.Embedding(Dimension, i), Version = i })
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
        output.CancellationToken.ThrowIfCancellationRequested();
        for (var i = 0; i < 50_000; i++) // warm-up: JIT tiers
            if (!step(i)) throw new InvalidOperationException($"{name}: the step failed on event {i}");
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
