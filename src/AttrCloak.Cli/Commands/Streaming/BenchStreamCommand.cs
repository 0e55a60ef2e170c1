using System.ComponentModel;
using System.Globalization;
using AttrCloak.Cli.Rendering;
using AttrCloak.Cli.Streaming;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Tools.Benchmarks;
using ScottPlot;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands.Streaming;

public sealed class BenchStreamSettings : CommandSettings
{
    [CommandOption("--events <N>")]
    [Description("Embedding updates per run (the issue's memory check: 1000000).")]
    [DefaultValue(100_000)]
    public int Events { get; init; } = 100_000;

    [CommandOption("--runs <N>")]
    [Description("Timed runs; the median of each figure is reported.")]
    [DefaultValue(3)]
    public int Runs { get; init; } = 3;

    [CommandOption("--users <N>")]
    [Description("Distinct users, re-embedded over and over.")]
    [DefaultValue(943)]
    public int Users { get; init; } = 943;

    [CommandOption("--dim <D>")]
    [Description("Embedding dimension.")]
    [DefaultValue(64)]
    public int Dim { get; init; } = 64;

    [CommandOption("--batch <N>")]
    [Description("Most events per worker batch (MaxBatchEvents of the Guard section).")]
    [DefaultValue(384)]
    public int Batch { get; init; } = 384;

    [CommandOption("--rebuild-share <S>")]
    [Description("Most share of one core the background rebuilds of the re-cloak maps may use (the pipeline's CloakerRebuildShare).")]
    [DefaultValue(0.02)]
    public double RebuildShare { get; init; } = 0.02;

    [CommandOption("--binary")]
    [Description("Produce updates in the compact binary encoding instead of JSON.")]
    public bool Binary { get; init; }

    [CommandOption("--redis <CONFIG>")]
    [Description("Redis to use (e.g. localhost:6379, under a fresh prefix); default: start a throw-away local redis-server.")]
    public string? Redis { get; init; }

    [CommandOption("--plot <FILE>")]
    [Description("Write throughput and memory over time of the last run as a PNG.")]
    public string? Plot { get; init; }

    public override ValidationResult Validate()
    {
        if (Events < 1000) return ValidationResult.Error($"--events must be at least 1000, got {Events}");
        if (Runs is < 1 or > 20) return ValidationResult.Error($"--runs must be in 1..20, got {Runs}");
        if (Users < 10) return ValidationResult.Error($"--users must be at least 10, got {Users}");
        if (Dim is < 2 or > 1024) return ValidationResult.Error($"--dim must be in 2..1024, got {Dim}");
        if (!(RebuildShare is > 0 and <= 1)) return ValidationResult.Error($"--rebuild-share must be in (0, 1], got {RebuildShare}");
        if (Batch is < 1 or > 10_000) return ValidationResult.Error($"--batch must be in 1..10000, got {Batch}");
        return ValidationResult.Success();
    }
}

/// <summary>
/// `attrcloak bench stream`: the streaming worker end to end (consume from the librdkafka mock cluster, Redis, produce
/// and wait for acknowledgements) with the real re-cloak, while a producer streams updates in; median of several runs
/// of throughput and consume-to-publish latency, where the time goes, and memory over time. Prints; asserts nothing.
/// </summary>
public sealed class BenchStreamCommand : StreamingCommand<BenchStreamSettings>
{
    protected override async Task<int> RunAsync(BenchStreamSettings s, CancellationToken cancellationToken)
    {
        var bench = await BenchRedis.OpenAsync(s.Redis);
        var (redis, where) = (bench.Connection, bench.Where);
        try
        {
            AnsiConsole.MarkupLineInterpolated(
                $"bench stream: a warm-up, then {s.Runs} run(s) of {s.Events:N0} updates ({(s.Binary ? "binary" : "JSON")}), {s.Users} users, d = {s.Dim}, batches of up to {s.Batch}; librdkafka mock cluster, {where}; {Environment.ProcessorCount} cores, load average {LoadAverage()}, {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")} GC");
            var results = new List<StreamBenchmarkResult>();
            // Run 0 is an untimed warm-up (JIT, tiered compilation, connection pools): the first run was measured ~25%
            // slower than the next ones in the same process.
            for (var run = 0; run <= s.Runs; run++)
            {
                var events = run == 0 ? Math.Min(s.Events, 20_000) : s.Events;
                var options = new StreamBenchmarkOptions
                {
                    Redis = redis,
                    CloakerFactory = new TransportCloakerFactory(),
                    Seeding = BatchSeeding.DataFree, // as `attrcloak bootstrap` seeds production
                    Events = events,
                    Users = s.Users,
                    Dimension = s.Dim,
                    MaxBatchEvents = s.Batch,
                    BinaryEncoding = s.Binary,
                    CloakerRebuildShare = s.RebuildShare,
                    Timeout = TimeSpan.FromSeconds(Math.Max(600, s.Events / 1000.0 * 2)),
                };
                var label = run == 0 ? "warm-up" : $"run {run}/{s.Runs}";
                var result = await LiveStatus.RunAsync(label, events, progress =>
                    StreamBenchmark.RunAsync(options, new InlineProgress<StreamBenchmarkProgress>(p => progress.Report(new LiveUpdate(p.Processed,
                        $"{label}: {p.Processed:N0}/{events:N0} processed, {p.RecentEventsPerSecond:N0}/s, managed {p.ManagedBytes / 1048576.0:F0} MiB, RSS {p.RssBytes / 1048576.0:F0} MiB"))),
                        cancellationToken));
                if (result.Seeded is { } seeded) AnsiConsole.WriteLine($"{label}: {seeded.Describe()}");
                if (run == 0) continue;
                results.Add(result);
                AnsiConsole.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"run {run}: {result.SteadyEventsPerSecond:N0} updates/s steady ({result.EventsPerSecond:N0} overall), latency p50 {result.P50Milliseconds:F1} ms, p99 {result.P99Milliseconds:F1} ms, max {result.MaxMilliseconds:F0} ms; {result.DeadLetters} dead letters; {result.CloakerRefreshes} cloaker rebuilds"));
            }
            Report(results, s);
            if (s.Plot is not null)
                AnsiConsole.MarkupLineInterpolated($"plot: [blue]{WritePlot(results[^1], s.Plot)}[/]");
            return 0;
        }
        finally
        {
            await bench.DisposeAsync();
        }
    }

    private static void Report(List<StreamBenchmarkResult> results, BenchStreamSettings s)
    {
        static double Median(IEnumerable<double> values)
        {
            var sorted = values.OrderBy(v => v).ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
        var c = CultureInfo.InvariantCulture;
        var table = new Table().Border(TableBorder.Rounded).Title($"median of {results.Count} run(s)");
        table.AddColumn("figure");
        table.AddColumn(new TableColumn("value").RightAligned());
        table.AddColumn("target");
        var steady = Median(results.Select(r => r.SteadyEventsPerSecond));
        var p99 = Median(results.Select(r => r.P99Milliseconds));
        table.AddRow("updates/s, steady", steady.ToString("N0", c), steady >= 20_000 ? "[green]>= 20,000[/]" : "[red]>= 20,000[/]");
        table.AddRow("updates/s, overall", Median(results.Select(r => r.EventsPerSecond)).ToString("N0", c), "");
        table.AddRow("latency p50 (ms)", Median(results.Select(r => r.P50Milliseconds)).ToString("F1", c), "");
        table.AddRow("latency p99 (ms)", p99.ToString("F1", c), p99 <= 50 ? "[green]<= 50[/]" : "[red]<= 50[/]");
        var last = results[^1];
        var warm = last.Samples.Where(x => x.Elapsed > last.Elapsed * 0.2).ToArray();
        if (warm.Length > 1)
        {
            table.AddRow("managed heap after warm-up (MiB, min-max)", $"{warm.Min(x => x.ManagedBytes) / 1048576.0:F0}-{warm.Max(x => x.ManagedBytes) / 1048576.0:F0}", "flat");
            table.AddRow("process RSS after warm-up (MiB, min-max)", $"{warm.Min(x => x.RssBytes) / 1048576.0:F0}-{warm.Max(x => x.RssBytes) / 1048576.0:F0}", "flat");
        }
        table.AddRow("process CPU s per 1k updates", (Median(results.Select(r => r.ProcessCpuSeconds / r.Events * 1000))).ToString("F3", c), "");
        if (results.All(r => !double.IsNaN(r.RedisCpuSeconds)))
            table.AddRow("redis-server CPU µs per update", Median(results.Select(r => r.RedisCpuSeconds / r.Events * 1e6)).ToString("F1", c), "");
        AnsiConsole.Write(table);

        var stages = new Table().Border(TableBorder.Rounded).Title("where the consume thread's time goes (median)");
        stages.AddColumn("stage");
        stages.AddColumn(new TableColumn("µs/update").RightAligned());
        stages.AddColumn(new TableColumn("share").RightAligned());
        foreach (var stage in StreamBenchmark.Stages)
        {
            var per = results.Select(r => r.Stages.FirstOrDefault(x => x.Stage == stage)).Where(x => x is not null).ToArray();
            if (per.Length == 0) continue;
            var share = Median(per.Select(x => x!.Share));
            // poll is waiting for messages, not work: it has no share of the busy time.
            stages.AddRow(stage, Median(per.Select(x => x!.MicrosecondsPerEvent)).ToString("F1", c), double.IsNaN(share) ? "(idle)" : share.ToString("P0", c));
        }
        AnsiConsole.Write(stages);
    }

    private static string WritePlot(StreamBenchmarkResult result, string path)
    {
        var plot = new Plot();
        var seconds = result.Samples.Select(x => x.Elapsed.TotalSeconds).ToArray();
        var managed = plot.Add.Scatter(seconds, result.Samples.Select(x => x.ManagedBytes / 1048576.0).ToArray());
        managed.LegendText = "managed heap (MiB)";
        var rss = plot.Add.Scatter(seconds, result.Samples.Select(x => x.RssBytes / 1048576.0).ToArray());
        rss.LegendText = "process RSS (MiB)";
        plot.XLabel("seconds");
        plot.YLabel("MiB");
        plot.Title($"bench stream: {result.Events:N0} updates, {result.SteadyEventsPerSecond:N0}/s steady, p99 {result.P99Milliseconds:F0} ms");
        plot.ShowLegend(Alignment.UpperLeft);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        plot.SavePng(path, 900, 500);
        return path;
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "n/a"; }
        catch (UnauthorizedAccessException) { return "n/a"; }
    }
}
