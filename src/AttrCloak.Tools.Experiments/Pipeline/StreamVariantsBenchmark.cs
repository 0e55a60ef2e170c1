using System.Globalization;
using AttrCloak.Tools.Benchmarks;
using AttrCloak.Tools.Experiments.Support;

namespace AttrCloak.Tools.Experiments.Pipeline;

/// <summary>
/// <c>stream-variants</c>: d = 64 updates end to end (<see cref="StreamBenchmark"/>, what <c>attrcloak bench stream</c>
/// runs: librdkafka's mock cluster, a throw-away local redis-server, the real pipeline and re-cloak), one run per
/// variant in the same process for A/B comparisons on a noisy machine; prints progress, the overall figures, CPU, GC
/// and where the time goes per stage. Asserts nothing. Environment: ATTRCLOAK_BENCH_EVENTS (100,000),
/// ATTRCLOAK_BENCH_BINARY=1 (binary input), ATTRCLOAK_BENCH_ALLOC=1 (sample allocations by type; costs some speed),
/// and ATTRCLOAK_BENCH_VARIANTS, runs separated by ';', each "name:key=value,..." with keys depth (unacknowledged
/// batches), cache (user cache capacity), share (cloaker rebuild share of a core), batch (max batch events), wait
/// (batch window ms), rate (offered events/s), affine=1 (cost-model cloaker); default one run "now".
/// </summary>
internal static class StreamVariantsBenchmark
{
    public static async Task RunAsync(ExperimentContext output)
    {
        var events = int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_EVENTS"), out var n) ? n : 100_000;
        var binary = Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_BINARY") == "1";
        var variants = (Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_VARIANTS") is { Length: > 0 } v ? v : "now:")
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var ct = output.CancellationToken;
        await using var redis = await ExperimentRedis.StartAsync().ConfigureAwait(false);
        // ATTRCLOAK_BENCH_ALLOC=1: sample what is allocated (costs some speed itself).
        using var allocations = Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_ALLOC") == "1" ? new AllocationSampler() : null;
        foreach (var variant in variants)
        {
            var name = variant.Split(':')[0];
            var settings = variant[(name.Length + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Select(p => p.Split('=')).ToDictionary(p => p[0].Trim(), p => double.Parse(p[1], CultureInfo.InvariantCulture));
            double Get(string key, double fallback) => settings.TryGetValue(key, out var value) ? value : fallback;
            var options = new StreamBenchmarkOptions
            {
                Redis = redis.Redis,
                Events = events,
                BinaryEncoding = binary,
                MaxUnacknowledgedBatches = (int)Get("depth", 2),
                UserCacheCapacity = (int)Get("cache", 100_000),
                MaxBatchEvents = (int)Get("batch", 384),
                MaxBatchWait = TimeSpan.FromMilliseconds(Get("wait", 5)),
                ProduceRate = Get("rate", 0),
                CloakerRebuildShare = Get("share", 0.02),
                CloakerFactory = Get("affine", 0) == 1 ? new AffineCostCloakerFactory() : null,
                SampleInterval = TimeSpan.FromSeconds(events >= 500_000 ? 5 : 1),
                Timeout = TimeSpan.FromMinutes(30),
            };
            output.WriteLine($"=== {name}: {variant} ({File.ReadAllText("/proc/loadavg").Trim()})");
            var result = await StreamBenchmark.RunAsync(options,
                new Progress<StreamBenchmarkProgress>(p => output.WriteLine(
                    $"{p.Elapsed.TotalSeconds,6:F1} s  produced {p.Produced,9:N0}  handled {p.Processed,9:N0}  {p.RecentEventsPerSecond,8:N0}/s  managed {p.ManagedBytes / 1048576.0,6:F1} MiB  rss {p.RssBytes / 1048576.0,6:F1} MiB")),
                ct).ConfigureAwait(false);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: {result.Events:N0} events ({(binary ? "binary" : "JSON")}) in {result.Elapsed.TotalSeconds:F1} s: {result.EventsPerSecond:N0}/s overall, {result.SteadyEventsPerSecond:N0}/s steady; latency p50 {result.P50Milliseconds:F1} ms, p99 {result.P99Milliseconds:F1} ms, max {result.MaxMilliseconds:F1} ms; {result.Batches:N0} batches ({result.Events / (double)result.Batches:F0} events each); cloaker {result.CloakerName}, {result.CloakerRefreshes} builds; dead letters {result.DeadLetters}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: CPU process {result.ProcessCpuSeconds:F1} s ({result.ProcessCpuSeconds / result.Events * 1e6:F0} us/event), redis-server {result.RedisCpuSeconds:F1} s ({result.RedisCpuSeconds / result.Events * 1e6:F0} us/event); GC {(result.ServerGc ? "server" : "workstation")}, collections {string.Join('/', result.Collections)}, paused {result.GcPause.TotalMilliseconds:F0} ms; users read {result.UserReads:N0}, cached {result.UserCacheHits:N0}; store_apply = client {result.StoreClientSeconds / result.Events * 1e6:F1} + script {result.StoreScriptSeconds / result.Events * 1e6:F1} us/event; load {File.ReadAllText("/proc/loadavg").Trim()}"));
            foreach (var s in result.Stages)
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {s.Stage,-12} {s.Seconds,7:F2} s  {s.Share * 100,5:F1} %  {s.MicrosecondsPerEvent,6:F1} us/event"));
            if (allocations is not null)
                foreach (var (type, large, bytes) in allocations.Top(25))
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  alloc {(large ? "LOH" : "SOH")} {bytes / 1048576.0,9:F1} MiB  {type}"));
            if (events >= 500_000)
                foreach (var sample in result.Samples)
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  memory {sample.Elapsed.TotalSeconds,6:F0} s  {sample.Processed,10:N0} events  managed {sample.ManagedBytes / 1048576.0,6:F1} MiB  rss {sample.RssBytes / 1048576.0,6:F1} MiB"));
        }
    }
}
