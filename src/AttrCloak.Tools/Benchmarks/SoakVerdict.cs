using System.Globalization;

namespace AttrCloak.Tools.Benchmarks;

/// <summary>
/// When a soak run passes (<c>attrcloak bench soak</c>). Lag and memory are judged on the SECOND HALF of the run only:
/// the first half is the warm-up (JIT, connection pools, caches and the served sample filling, the GC settling on its
/// budgets).
/// </summary>
public sealed record SoakThresholds
{
    /// <summary>Lag bound in seconds of input: the max lag over the second half must be at most rate x this many events.</summary>
    public double MaxLagSeconds { get; init; } = 5;

    /// <summary>Most growth of the managed heap over the second half (slope of a least-squares line), MiB per minute.</summary>
    public double MaxManagedSlopeMiBPerMinute { get; init; } = 2;

    /// <summary>
    /// Most growth of native memory (RSS minus the managed heap's committed bytes) over the second half (least-squares
    /// slope), MiB per minute. Native rather than RSS: RSS also swings with the managed heap's committed size, which the
    /// managed check judges already.
    /// </summary>
    public double MaxNativeSlopeMiBPerMinute { get; init; } = 4;

    /// <summary>Least share of the target rate the producer must have held over the second half (else the load was not the one asked for).</summary>
    public double MinRateShare { get; init; } = 0.9;

    /// <summary>
    /// Largest worst |balanced accuracy - chance| any shadow audit of the run may read (over attributes and attackers,
    /// both directions): the bar the shipped AttackAccuracyDrift alert warns at. A soak whose protection decays under the
    /// load (its updates re-cloaked against drifting statistics, or landing in a generation nobody seated) fails.
    /// </summary>
    public double MaxAuditAdvantage { get; init; } = 0.05;

    /// <summary>Fewest samples the second half must have for slopes and trends to mean anything.</summary>
    public int MinSamplesPerHalf { get; init; } = 3;

    /// <summary>The thresholds as a user reads them.</summary>
    public string Describe(double rate) => string.Create(CultureInfo.InvariantCulture,
        $"over the second half: max lag <= {rate * MaxLagSeconds:N0} events ({MaxLagSeconds:G} s of input) and its fitted rise <= half of that; managed heap slope <= {MaxManagedSlopeMiBPerMinute:G} MiB/min and native memory slope <= {MaxNativeSlopeMiBPerMinute:G} MiB/min (each failing only when above its limit by more than two standard errors of its fit); produced >= {MinRateShare:P0} of the target rate; no errors, no dead letters, no stale events; audits every interval (none missed by more than one interval, none failed) and none reading a worst |advantage| above {MaxAuditAdvantage:G}");
}

/// <summary>One check of the verdict: its name, whether it passed, and the figure behind it.</summary>
public sealed record SoakCheck(string Name, bool Passed, string Detail);

/// <summary>The verdict of a soak run: passed only when every check passed.</summary>
public sealed record SoakVerdict(IReadOnlyList<SoakCheck> Checks)
{
    public bool Passed => Checks.All(c => c.Passed);

    /// <summary>The failed checks' details (empty when passed).</summary>
    public IEnumerable<string> Reasons => Checks.Where(c => !c.Passed).Select(c => $"{c.Name}: {c.Detail}");

    /// <summary>Check names, stable (tests and the JSON use them).</summary>
    public static class Names
    {
        public const string Errors = "errors";
        public const string DeadLetters = "dead letters";
        public const string Stale = "stale events";
        public const string Rate = "rate held";
        public const string Lag = "lag bounded";
        public const string LagTrend = "lag trend";
        public const string Managed = "managed heap flat";
        public const string Native = "native memory flat";
        public const string Audits = "audits on schedule";
        public const string Privacy = "privacy held";
        public const string Samples = "samples";
    }

    /// <summary>
    /// Judges a run from its samples (cumulative counters, in elapsed order). <paramref name="duration"/> is the
    /// planned length, <paramref name="rate"/> the target events per second, <paramref name="auditEvery"/> the audit
    /// interval (zero: audits not required).
    /// </summary>
    public static SoakVerdict Judge(IReadOnlyList<SoakSample> samples, double rate, TimeSpan duration, TimeSpan auditEvery, SoakThresholds thresholds)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(thresholds);
        var c = CultureInfo.InvariantCulture;
        var checks = new List<SoakCheck>();
        if (samples.Count == 0)
            return new SoakVerdict([new SoakCheck(Names.Samples, false, "no samples were taken")]);
        var last = samples[^1];
        var end = Math.Max(last.ElapsedSeconds, duration.TotalSeconds);
        var half = samples.Where(s => s.ElapsedSeconds >= end / 2).ToArray();

        checks.Add(new SoakCheck(Names.Errors, last.Errors == 0,
            last.Errors == 0 ? "none" : $"{last.Errors} error(s){(string.IsNullOrEmpty(last.FirstError) ? "" : $", first: {last.FirstError}")}"));
        checks.Add(new SoakCheck(Names.DeadLetters, last.DeadLetters == 0,
            last.DeadLetters == 0 ? "none" : $"{last.DeadLetters} event(s) dead-lettered; the soak's input is all valid, so each is a fault"));
        checks.Add(new SoakCheck(Names.Stale, last.Stale == 0,
            last.Stale == 0 ? "none" : $"{last.Stale} event(s) arrived after a newer version of their user (ordering lost or latency above the producer's topic-switch gap)"));

        if (half.Length < thresholds.MinSamplesPerHalf)
        {
            checks.Add(new SoakCheck(Names.Samples, false,
                $"{half.Length} sample(s) in the second half, at least {thresholds.MinSamplesPerHalf} needed: use a longer --duration or a shorter --sample-every"));
        }
        else
        {
            var span = half[^1].ElapsedSeconds - half[0].ElapsedSeconds;
            var producedRate = span > 0 ? (half[^1].Produced - half[0].Produced) / span : double.NaN;
            var rateOk = producedRate >= rate * thresholds.MinRateShare;
            checks.Add(new SoakCheck(Names.Rate, rateOk,
                string.Create(c, $"{producedRate:N0} events/s produced over the second half (target {rate:N0}, at least {rate * thresholds.MinRateShare:N0})")));

            var bound = rate * thresholds.MaxLagSeconds;
            var maxLag = half.Max(s => s.Lag);
            checks.Add(new SoakCheck(Names.Lag, maxLag <= bound,
                string.Create(c, $"max lag over the second half {maxLag:N0} events (bound {bound:N0})")));
            var lagSlope = Slope(half, s => s.Lag); // events per second
            var rise = lagSlope * span;
            checks.Add(new SoakCheck(Names.LagTrend, rise <= bound / 2,
                string.Create(c, $"fitted lag change over the second half {rise:+#,0;-#,0;0} events (limit +{bound / 2:N0})")));

            // Memory is judged as growing only when its fitted slope exceeds the limit by more than two standard errors:
            // a GC sawtooth over a short second half fits slopes of a few MiB/min either way (a 3-minute soak read
            // +2.08 from a heap that went 46, 41, 43, 45, 49, 44, 43, 50, 48, 42, 49 MiB).
            var (managed, managedError) = SlopeWithError(half, s => s.ManagedHeapBytes, 60 / 1048576.0);
            checks.Add(new SoakCheck(Names.Managed, managed - 2 * managedError <= thresholds.MaxManagedSlopeMiBPerMinute,
                string.Create(c, $"{managed:+0.00;-0.00} MiB/min +- {2 * managedError:0.00} (two standard errors; limit {thresholds.MaxManagedSlopeMiBPerMinute:G})")));
            var (native, nativeError) = SlopeWithError(half, s => s.NativeBytes, 60 / 1048576.0);
            var rss = Slope(half, s => s.RssBytes) * 60 / 1048576.0;
            checks.Add(new SoakCheck(Names.Native, native - 2 * nativeError <= thresholds.MaxNativeSlopeMiBPerMinute,
                string.Create(c, $"{native:+0.00;-0.00} MiB/min +- {2 * nativeError:0.00} (limit {thresholds.MaxNativeSlopeMiBPerMinute:G}; RSS {rss:+0.00;-0.00} MiB/min)")));
        }

        if (auditEvery > TimeSpan.Zero)
        {
            checks.Add(JudgeAudits(samples, end, auditEvery, c));
            checks.Add(JudgePrivacy(samples, thresholds.MaxAuditAdvantage, c));
        }
        return new SoakVerdict(checks);
    }

    /// <summary>
    /// Audits ran on schedule: none failed, at least one ran, no gap between successful audits (nor from the start to
    /// the first, nor from the last to the end) longer than two intervals plus one sampling step (the resolution).
    /// </summary>
    private static SoakCheck JudgeAudits(IReadOnlyList<SoakSample> samples, double end, TimeSpan auditEvery, CultureInfo c)
    {
        var last = samples[^1];
        if (last.AuditFailures > 0)
            return new SoakCheck(Names.Audits, false, $"{last.AuditFailures} audit(s) failed");
        var expected = (long)Math.Floor(end / auditEvery.TotalSeconds);
        if (expected == 0)
            return new SoakCheck(Names.Audits, true, string.Create(c, $"{last.AuditRuns} run(s); none due in {end:F0} s"));
        // When each audit was first seen, at sample resolution.
        var seenAt = new List<double>();
        long runs = 0;
        var step = 0.0;
        for (var i = 0; i < samples.Count; i++)
        {
            if (i > 0) step = Math.Max(step, samples[i].ElapsedSeconds - samples[i - 1].ElapsedSeconds);
            for (; runs < samples[i].AuditRuns; runs++) seenAt.Add(samples[i].ElapsedSeconds);
        }
        var limit = 2 * auditEvery.TotalSeconds + step;
        var points = new List<double> { 0 };
        points.AddRange(seenAt);
        points.Add(end);
        var worstGap = points.Zip(points.Skip(1), (a, b) => b - a).Max();
        var ok = last.AuditRuns >= 1 && worstGap <= limit;
        return new SoakCheck(Names.Audits, ok, string.Create(c,
            $"{last.AuditRuns} run(s), {expected} due (every {auditEvery.TotalSeconds:G} s); longest time without an audit {worstGap:F0} s (limit {limit:F0} s)"));
    }

    /// <summary>Every audit's worst |advantage| (each sample holds the latest audit's) within the bar; passes vacuously before any audit.</summary>
    private static SoakCheck JudgePrivacy(IReadOnlyList<SoakSample> samples, double bar, CultureInfo c)
    {
        var read = samples.Where(s => double.IsFinite(s.AuditWorstAdvantage)).ToArray();
        if (read.Length == 0)
            return new SoakCheck(Names.Privacy, true, "no audit finished");
        var worst = read.MaxBy(s => s.AuditWorstAdvantage)!;
        var ok = worst.AuditWorstAdvantage <= bar;
        return new SoakCheck(Names.Privacy, ok, string.Create(c,
            $"worst |advantage| of any audit {worst.AuditWorstAdvantage:F3} at {worst.ElapsedSeconds:F0} s, last {read[^1].AuditWorstAdvantage:F3} (bar {bar:G})"));
    }

    /// <summary>
    /// The least-squares slope of <paramref name="value"/> over elapsed seconds and its standard error, both times
    /// <paramref name="scale"/> (e.g. bytes per second to MiB per minute); the error is 0 with fewer than three points.
    /// </summary>
    public static (double Slope, double StandardError) SlopeWithError(IReadOnlyList<SoakSample> samples, Func<SoakSample, double> value, double scale)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(value);
        if (samples.Count < 2) return (0, 0);
        var mx = samples.Average(s => s.ElapsedSeconds);
        var my = samples.Average(value);
        double sxy = 0, sxx = 0;
        foreach (var s in samples)
        {
            var dx = s.ElapsedSeconds - mx;
            sxy += dx * (value(s) - my);
            sxx += dx * dx;
        }
        if (!(sxx > 0)) return (0, 0);
        var slope = sxy / sxx;
        if (samples.Count < 3) return (slope * scale, 0);
        var residuals = samples.Sum(s => Math.Pow(value(s) - my - slope * (s.ElapsedSeconds - mx), 2));
        return (slope * scale, Math.Sqrt(residuals / (samples.Count - 2) / sxx) * scale);
    }

    /// <summary>Least-squares slope of <paramref name="value"/> over elapsed seconds (per second); 0 for fewer than two points.</summary>
    public static double Slope(IReadOnlyList<SoakSample> samples, Func<SoakSample, double> value) => SlopeWithError(samples, value, 1).Slope;
}
