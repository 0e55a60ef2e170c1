using System.Globalization;
using AttrCloak.Streaming.Pipeline;

namespace AttrCloak.Streaming.Tests.Pipeline;

/// <summary>The benchmark entry point of <c>attrcloak bench stream</c>: a short run checks it works; the explicit one measures.</summary>
public sealed class StreamBenchmarkTests(RedisServerFixture redis)
{
    [Fact]
    public async Task A_short_run_handles_every_event_and_reports_every_figure()
    {
        var reports = new List<StreamBenchmarkProgress>();
        var result = await StreamBenchmark.RunAsync(new StreamBenchmarkOptions
        {
            Redis = redis.Redis,
            Events = 3000,
            Users = 200,
            SampleInterval = TimeSpan.FromMilliseconds(200),
        }, new Progress<StreamBenchmarkProgress>(reports.Add), TestContext.Current.CancellationToken);

        result.Events.ShouldBe(3000);
        result.DeadLetters.ShouldBe(0);
        result.EventsPerSecond.ShouldBeGreaterThan(0);
        result.P50Milliseconds.ShouldBeGreaterThan(0);
        result.P99Milliseconds.ShouldBeGreaterThanOrEqualTo(result.P50Milliseconds);
        result.Stages.Select(s => s.Stage).ShouldBe(["poll", "decode", "store_read", "cloak", "store_apply", "produce", "commit"]);
        result.Stages.Where(s => s.Stage != "poll").Sum(s => s.Share).ShouldBe(1, 1e-9);
        result.Samples.ShouldNotBeEmpty();
        result.Samples[^1].RssBytes.ShouldBeGreaterThan(0);
        // The benchmark cleans its Redis prefix up.
        redis.Redis.GetServers()[0].Keys(pattern: "attrcloak-bench-*").ShouldBeEmpty();
    }

    [Fact(Explicit = true, DisplayName = "BENCHMARK: 100,000 d=64 updates end to end (prints; asserts nothing)")]
    public async Task Measure()
    {
        var events = int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_EVENTS"), out var n) ? n : 100_000;
        var binary = Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_BINARY") == "1";
        var output = TestContext.Current.TestOutputHelper!;
        var result = await StreamBenchmark.RunAsync(new StreamBenchmarkOptions { Redis = redis.Redis, Events = events, BinaryEncoding = binary },
            new Progress<StreamBenchmarkProgress>(p => output.WriteLine(
                $"{p.Elapsed.TotalSeconds,6:F1} s  produced {p.Produced,9:N0}  handled {p.Processed,9:N0}  {p.RecentEventsPerSecond,8:N0}/s  managed {p.ManagedBytes / 1048576.0,6:F1} MiB  rss {p.RssBytes / 1048576.0,6:F1} MiB")),
            TestContext.Current.CancellationToken);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{result.Events:N0} events ({(binary ? "binary" : "JSON")}) in {result.Elapsed.TotalSeconds:F1} s: {result.EventsPerSecond:N0}/s overall, {result.SteadyEventsPerSecond:N0}/s steady; latency p50 {result.P50Milliseconds:F1} ms, p99 {result.P99Milliseconds:F1} ms, max {result.MaxMilliseconds:F1} ms; {result.Batches:N0} batches ({result.Events / (double)result.Batches:F0} events each); process CPU {result.ProcessCpuSeconds:F1} s; cloaker {result.CloakerName}, {result.CloakerRefreshes} builds; dead letters {result.DeadLetters}"));
        foreach (var s in result.Stages)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {s.Stage,-12} {s.Seconds,7:F2} s  {s.Share * 100,5:F1} %  {s.MicrosecondsPerEvent,6:F1} us/event"));
    }
}
