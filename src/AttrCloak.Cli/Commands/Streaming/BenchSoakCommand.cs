using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using AttrCloak.Cli.Rendering;
using AttrCloak.Cli.Streaming;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Tools.Benchmarks;
using ScottPlot;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands.Streaming;

public sealed class BenchSoakSettings : CommandSettings
{
    [CommandOption("--duration <TIME>")]
    [Description("How long to stream, e.g. 10m, 90s, 1h (the issue's soak: at least 10m).")]
    [DefaultValue("10m")]
    public string Duration { get; init; } = "10m";

    [CommandOption("--rate <N>")]
    [Description("Events per second, evenly paced.")]
    [DefaultValue(2000.0)]
    public double Rate { get; init; } = 2000;

    [CommandOption("--users <N>")]
    [Description("The fixed user population the events are drawn from.")]
    [DefaultValue(5000)]
    public int Users { get; init; } = 5000;

    [CommandOption("--audit-every <TIME>")]
    [Description("Time between shadow audits of the served population (0 = none).")]
    [DefaultValue("60s")]
    public string AuditEvery { get; init; } = "60s";

    [CommandOption("--attackers <LIST>")]
    [Description("Attackers of the shadow audit, comma-separated (lr, lr+cal, mlp, mlp-wide, lgbm, lgbm+cal).")]
    [DefaultValue("lr,mlp")]
    public string Attackers { get; init; } = "lr,mlp";

    [CommandOption("--sample-every <TIME>")]
    [Description("Time between samples of throughput, lag, latency and memory.")]
    [DefaultValue("5s")]
    public string SampleEvery { get; init; } = "5s";

    [CommandOption("--max-lag-seconds <S>")]
    [Description("Lag bound: max lag over the second half <= rate x S events, and its fitted rise <= half of that.")]
    [DefaultValue(5.0)]
    public double MaxLagSeconds { get; init; } = 5;

    [CommandOption("--max-heap-slope <MIB_PER_MIN>")]
    [Description("Most managed-heap growth over the second half (least-squares slope; fails only when above it by more than two standard errors), MiB/min.")]
    [DefaultValue(2.0)]
    public double MaxHeapSlope { get; init; } = 2;

    [CommandOption("--max-native-slope <MIB_PER_MIN>")]
    [Description("Most native-memory growth (RSS minus managed committed) over the second half (least-squares slope; fails only when above it by more than two standard errors), MiB/min.")]
    [DefaultValue(4.0)]
    public double MaxNativeSlope { get; init; } = 4;

    [CommandOption("--max-audit-advantage <EPS>")]
    [Description("Largest worst |balanced accuracy - chance| any shadow audit may read (both directions); the shipped AttackAccuracyDrift alert warns above 0.05.")]
    [DefaultValue(0.05)]
    public double MaxAuditAdvantage { get; init; } = 0.05;

    [CommandOption("--redis <CONFIG>")]
    [Description("Redis to use (e.g. localhost:6379,allowAdmin=true under a fresh prefix; Redis memory is sampled with INFO, which needs allowAdmin); default: start a throw-away local redis-server.")]
    public string? Redis { get; init; }

    [CommandOption("--brokers <HOST:PORT>")]
    [Description("An external broker for the run (e.g. `attrcloak kafka-mock --port 19092` in another terminal), so that the memory figures are the worker's alone; default: librdkafka's mock cluster inside this process (its retained log counts in the RSS).")]
    public string? Brokers { get; init; }

    [CommandOption("--plot <FILE>")]
    [Description("Write rate, lag, p99 latency and memory over time as a PNG.")]
    public string? Plot { get; init; }

    [CommandOption("--json <FILE>")]
    [Description("Write the samples, the mix, the thresholds and the verdict as JSON.")]
    public string? Json { get; init; }

    internal string[] AttackerNames => Attackers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public override ValidationResult Validate()
    {
        if (!BenchSoakCommand.TryParseTime(Duration, out var duration) || duration < TimeSpan.FromSeconds(5))
            return ValidationResult.Error($"--duration must be a time of at least 5s (e.g. 10m, 90s), got '{Duration}'");
        if (!BenchSoakCommand.TryParseTime(SampleEvery, out var sample) || sample < TimeSpan.FromMilliseconds(200) || sample > duration / 2)
            return ValidationResult.Error($"--sample-every must be a time between 200ms and half the duration, got '{SampleEvery}'");
        if (!BenchSoakCommand.TryParseTime(AuditEvery, out var audit) || (audit != TimeSpan.Zero && audit < TimeSpan.FromSeconds(1)))
            return ValidationResult.Error($"--audit-every must be 0 or a time of at least 1s, got '{AuditEvery}'");
        var unknown = AttackerNames.Where(a => !AttrCloak.Audit.Attackers.AttackerCatalog.DefaultNames.Contains(a)).ToArray();
        if (AttackerNames.Length == 0 || unknown.Length > 0)
            return ValidationResult.Error($"--attackers must name attackers of {string.Join(", ", AttrCloak.Audit.Attackers.AttackerCatalog.DefaultNames)}, got '{Attackers}'");
        if (!(Rate is >= 1 and <= 1_000_000)) return ValidationResult.Error($"--rate must be in 1..1000000 events/s, got {Rate}");
        if (Users is < 100 or > 10_000_000) return ValidationResult.Error($"--users must be in 100..10000000, got {Users}");
        if (!(MaxLagSeconds > 0)) return ValidationResult.Error($"--max-lag-seconds must be positive, got {MaxLagSeconds}");
        if (!(MaxHeapSlope >= 0)) return ValidationResult.Error($"--max-heap-slope must be >= 0, got {MaxHeapSlope}");
        if (!(MaxNativeSlope >= 0)) return ValidationResult.Error($"--max-native-slope must be >= 0, got {MaxNativeSlope}");
        if (!(MaxAuditAdvantage is >= 0 and <= 1)) return ValidationResult.Error($"--max-audit-advantage must be in [0, 1], got {MaxAuditAdvantage}");
        return ValidationResult.Success();
    }
}

/// <summary>
/// `attrcloak bench soak`: the real worker (mock Kafka, Redis, real re-cloak, periodic shadow audits) at a fixed rate
/// with a realistic mix for a fixed time; samples lag, latency and memory, and passes (exit 0) only when the run had no
/// errors, bounded lag and flat memory over its second half, and audits on schedule that stayed within the privacy bar
/// (exit 1 otherwise).
/// </summary>
public sealed class BenchSoakCommand : StreamingCommand<BenchSoakSettings>
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // NaN before the first audit or latency
    };

    protected override async Task<int> RunAsync(BenchSoakSettings s, CancellationToken cancellationToken)
    {
        // Validate() refused the settings already when any of these does not parse.
        _ = TryParseTime(s.Duration, out var duration);
        _ = TryParseTime(s.AuditEvery, out var auditEvery);
        _ = TryParseTime(s.SampleEvery, out var sampleEvery);
        var thresholds = new SoakThresholds { MaxLagSeconds = s.MaxLagSeconds, MaxManagedSlopeMiBPerMinute = s.MaxHeapSlope, MaxNativeSlopeMiBPerMinute = s.MaxNativeSlope,
            MaxAuditAdvantage = s.MaxAuditAdvantage };
        var bench = await BenchRedis.OpenAsync(s.Redis);
        var (redis, where) = (bench.Connection, bench.Where);
        try
        {
            var options = new SoakOptions
            {
                Redis = redis,
                Duration = duration,
                Rate = s.Rate,
                Users = s.Users,
                AuditEvery = auditEvery,
                SampleEvery = sampleEvery,
                Attackers = s.AttackerNames,
                CloakerFactory = new TransportCloakerFactory(),
                Seeding = BatchSeeding.DataFree, // as `attrcloak bootstrap` seeds production
                Brokers = s.Brokers,
            };
            AnsiConsole.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"bench soak: {Time(duration)} at {s.Rate:N0} events/s over {s.Users:N0} users (d = {options.Dimension}; mix: {1 - options.UpdateAttributesShare - options.ForgetShare - options.OptOutShare:P1} embedding updates, {options.UpdateAttributesShare:P1} update_attributes, {options.ForgetShare:P1} forget (re-appearing later), {options.OptOutShare:P2} opt_out); shadow audit {(auditEvery == TimeSpan.Zero ? "off" : $"every {Time(auditEvery)} ({string.Join(", ", s.AttackerNames)})")}; sample every {Time(sampleEvery)}; {(s.Brokers is null ? "librdkafka mock cluster in this process" : $"broker at {s.Brokers}")}, {where}; {Environment.ProcessorCount} cores, {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")} GC"));
            var result = await LiveStatus.RunAsync("soak", duration.TotalSeconds, progress => SoakBenchmark.RunAsync(options,
                new InlineProgress<SoakSample>(x => progress.Report(new LiveUpdate(x.ElapsedSeconds, string.Create(CultureInfo.InvariantCulture,
                    $"soak {x.ElapsedSeconds:F0}/{duration.TotalSeconds:F0} s: {x.ConsumedPerSecond:N0}/s, lag {x.Lag:N0}, p99 {x.P99Milliseconds:F1} ms, managed {x.ManagedHeapBytes / 1048576.0:F0} MiB, RSS {x.RssBytes / 1048576.0:F0} MiB, audits {x.AuditRuns}, errors {x.Errors}")))),
                cancellationToken));
            if (result.Seeded is { } seeded) AnsiConsole.WriteLine(seeded.Describe());
            var verdict = SoakVerdict.Judge(result.Samples, s.Rate, duration, auditEvery, thresholds);
            Report(result, verdict, thresholds, s.Rate);
            if (s.Json is not null)
            {
                EnsureDirectory(s.Json);
                await File.WriteAllTextAsync(s.Json, JsonSerializer.Serialize(new
                {
                    durationSeconds = duration.TotalSeconds, rate = s.Rate, users = s.Users, auditEverySeconds = auditEvery.TotalSeconds,
                    seeding = result.Seeded is { } seed ? new { method = seed.Method, users = seed.Users, seconds = seed.Elapsed.TotalSeconds } : null,
                    thresholds, mix = result.Mix, p50Milliseconds = result.P50Milliseconds, p99Milliseconds = result.P99Milliseconds,
                    passed = verdict.Passed, checks = verdict.Checks, samples = result.Samples,
                }, JsonOptions), cancellationToken);
                AnsiConsole.MarkupLineInterpolated($"samples: [blue]{s.Json}[/]");
            }
            if (s.Plot is not null)
                AnsiConsole.MarkupLineInterpolated($"plot: [blue]{WritePlot(result, s.Plot, s.Rate)}[/]");
            return verdict.Passed ? 0 : 1;
        }
        finally
        {
            await bench.DisposeAsync();
        }
    }

    /// <summary>"90s", "10m", "1h", "500ms", "1m30s" or plain seconds ("45").</summary>
    public static bool TryParseTime(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var t = text.Trim().ToLowerInvariant();
        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var plain))
        {
            if (!(plain >= 0) || plain > 1e7) return false;
            value = TimeSpan.FromSeconds(plain);
            return true;
        }
        var total = 0.0;
        var i = 0;
        while (i < t.Length)
        {
            var start = i;
            while (i < t.Length && (char.IsDigit(t[i]) || t[i] == '.')) i++;
            if (i == start || !double.TryParse(t.AsSpan(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture, out var number)) return false;
            var unitStart = i;
            while (i < t.Length && char.IsLetter(t[i])) i++;
            var factor = t[unitStart..i] switch { "ms" => 0.001, "s" => 1, "m" or "min" => 60, "h" => 3600, _ => double.NaN };
            if (double.IsNaN(factor)) return false;
            total += number * factor;
        }
        if (total > 1e7) return false;
        value = TimeSpan.FromSeconds(total);
        return true;
    }

    private static string Time(TimeSpan t) => t.TotalSeconds >= 60 && t.TotalSeconds % 60 == 0
        ? $"{t.TotalMinutes:G} min" : string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:G} s");

    private static void Report(SoakResult result, SoakVerdict verdict, SoakThresholds thresholds, double rate)
    {
        var c = CultureInfo.InvariantCulture;
        var samples = result.Samples;
        // At most ~20 rows: every k-th sample, and always the last one (the drained state).
        var step = Math.Max(1, (int)Math.Ceiling(samples.Count / 20.0));
        var table = new Table().Border(TableBorder.Rounded).Title($"samples ({samples.Count}, every {step}. shown)");
        foreach (var (name, right) in new[] { ("t (s)", true), ("produced/s", true), ("consumed/s", true), ("lag", true), ("p50 ms", true), ("p99 ms", true),
                     ("managed MiB", true), ("native MiB", true), ("RSS MiB", true), ("redis MiB", true), ("dead letters", true), ("errors", true), ("audits", true), ("worst |adv.|", true) })
            table.AddColumn(right ? new TableColumn(name).RightAligned() : new TableColumn(name));
        for (var i = 0; i < samples.Count; i++)
        {
            if (i % step != step - 1 && i != samples.Count - 1) continue;
            var x = samples[i];
            table.AddRow(
                x.ElapsedSeconds.ToString("F0", c), x.ProducedPerSecond.ToString("N0", c), x.ConsumedPerSecond.ToString("N0", c), x.Lag.ToString("N0", c),
                x.P50Milliseconds.ToString("F1", c), x.P99Milliseconds.ToString("F1", c),
                (x.ManagedHeapBytes / 1048576.0).ToString("F1", c), (x.NativeBytes / 1048576.0).ToString("F1", c), (x.RssBytes / 1048576.0).ToString("F0", c),
                double.IsNaN(x.RedisUsedBytes) ? "n/a" : (x.RedisUsedBytes / 1048576.0).ToString("F1", c),
                x.DeadLetters.ToString(c), x.Errors.ToString(c), x.AuditRuns.ToString(c), double.IsNaN(x.AuditWorstAdvantage) ? "-" : x.AuditWorstAdvantage.ToString("0.000", c));
        }
        AnsiConsole.Write(table);
        var last = samples.Count > 0 ? samples[^1] : null;
        var m = result.Mix;
        AnsiConsole.WriteLine(string.Create(c,
            $"events: {last?.Produced ?? 0:N0} produced, {last?.Consumed ?? 0:N0} handled ({m.EmbeddingUpdates:N0} updates, {m.UpdateAttributes:N0} update_attributes, {m.OptOuts:N0} opt_out, {m.Forgets:N0} forget, {m.Reappearances:N0} re-appearances); latency over the run p50 {result.P50Milliseconds:F1} ms, p99 {result.P99Milliseconds:F1} ms"));
        if (result.LatestAudit is { } audit)
            AnsiConsole.WriteLine(string.Create(c,
                $"latest shadow audit ({audit.SampleUsers:N0} served users): {string.Join("; ", audit.Attributes.Select(a => $"{a.Name} worst balanced accuracy {a.WorstBalancedAccuracy:F3} (chance {a.Chance:F3}, {a.WorstAttacker}), worst |advantage| {a.MaxAbsAdvantage:F3}"))}"));
        AnsiConsole.WriteLine($"thresholds: {thresholds.Describe(rate)}");
        var checks = new Table().Border(TableBorder.Rounded).Title("verdict");
        checks.AddColumn("check");
        checks.AddColumn("result");
        checks.AddColumn("figure");
        foreach (var check in verdict.Checks)
            checks.AddRow(Markup.Escape(check.Name), check.Passed ? "[green]pass[/]" : "[red]FAIL[/]", Markup.Escape(check.Detail));
        AnsiConsole.Write(checks);
        if (verdict.Passed)
            AnsiConsole.MarkupLine("[green]soak PASSED[/]");
        else
            AnsiConsole.MarkupLineInterpolated($"[red]soak FAILED[/]: {string.Join("; ", verdict.Reasons)}");
    }

    private static string WritePlot(SoakResult result, string path, double rate)
    {
        var samples = result.Samples;
        var t = samples.Select(x => x.ElapsedSeconds).ToArray();
        var multiplot = new Multiplot();
        multiplot.AddPlots(4);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(4, 1);

        var throughput = multiplot.GetPlot(0);
        throughput.Add.ScatterLine(t, samples.Select(x => x.ProducedPerSecond).ToArray()).LegendText = "produced/s";
        throughput.Add.ScatterLine(t, samples.Select(x => x.ConsumedPerSecond).ToArray()).LegendText = "consumed/s";
        throughput.Add.HorizontalLine(rate).LegendText = "target";
        throughput.Title("events per second");
        throughput.ShowLegend(Alignment.LowerRight);

        var lag = multiplot.GetPlot(1);
        lag.Add.ScatterLine(t, samples.Select(x => (double)x.Lag).ToArray()).LegendText = "lag (events)";
        lag.Title("consumer lag (produced - handled)");

        var latency = multiplot.GetPlot(2);
        latency.Add.ScatterLine(t, samples.Select(x => Finite(x.P50Milliseconds)).ToArray()).LegendText = "p50";
        latency.Add.ScatterLine(t, samples.Select(x => Finite(x.P99Milliseconds)).ToArray()).LegendText = "p99";
        latency.Title("consume-to-acknowledgement latency (ms)");
        latency.ShowLegend(Alignment.UpperRight);

        var memory = multiplot.GetPlot(3);
        memory.Add.ScatterLine(t, samples.Select(x => x.ManagedHeapBytes / 1048576.0).ToArray()).LegendText = "managed heap";
        memory.Add.ScatterLine(t, samples.Select(x => x.NativeBytes / 1048576.0).ToArray()).LegendText = "native (RSS - managed committed)";
        memory.Add.ScatterLine(t, samples.Select(x => x.RssBytes / 1048576.0).ToArray()).LegendText = "RSS";
        memory.Title("memory (MiB)");
        memory.XLabel("seconds");
        memory.ShowLegend(Alignment.UpperLeft);

        EnsureDirectory(path);
        multiplot.SavePng(path, 1000, 1200);
        return path;
    }

    private static double Finite(double v) => double.IsFinite(v) ? v : 0;

    private static void EnsureDirectory(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
    }
}
