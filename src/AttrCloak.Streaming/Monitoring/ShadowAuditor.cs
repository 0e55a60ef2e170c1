using System.Diagnostics;
using AttrCloak.Audit;
using AttrCloak.Core.Data;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ShadowAuditOptions = AttrCloak.Streaming.Hosting.AuditOptions;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Monitoring;

/// <summary>
/// Audits the served population periodically, off the consume thread: the core's attackers are trained and tested
/// (user-disjoint cross-validation, <see cref="PrivacyAudit"/>) on the <see cref="ServedSample"/> of cloaked embeddings
/// with known classes, exactly as an adversary holding some served embeddings and labels would. Results go to the
/// audit gauges of <see cref="WorkerMetrics"/>; the latest one is also kept for the demo and for tests.
/// </summary>
public sealed class ShadowAuditor : BackgroundService
{
    private readonly ServedSample _sample;
    private readonly IReadOnlyList<AttributeSpec> _attributes;
    private readonly int _dimension;
    private readonly ShadowAuditOptions _options;
    private readonly WorkerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _runGate = new(1, 1);
    private readonly Func<CancellationToken, IAsyncEnumerable<ServedUser>>? _seed;
    private long _auditedVersion = -1;
    private int _runs;

    public ShadowAuditor(
        ServedSample sample,
        IReadOnlyList<AttributeSpec> attributes,
        int dimension,
        ShadowAuditOptions options,
        WorkerMetrics metrics,
        ILogger<ShadowAuditor>? logger = null,
        TimeProvider? time = null,
        Func<CancellationToken, IAsyncEnumerable<ServedUser>>? seed = null)
    {
        _seed = seed;
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(attributes);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(metrics);
        _sample = sample;
        _attributes = attributes;
        _dimension = dimension;
        _options = options;
        _metrics = metrics;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
        foreach (var attribute in attributes)
            _metrics.AuditChance.WithLabels(attribute.Name).Set(1.0 / attribute.ClassCount);
    }

    /// <summary>The latest successful audit, or null before the first.</summary>
    public ShadowAuditReport? Latest { get; private set; }

    /// <summary>The latest audit attempt's error while audits fail (null after a successful or skipped one), and how many failed in a row.</summary>
    public (string? Error, int InARow) Failure
    {
        get { lock (_failureGate) return (_lastFailure, _failuresInARow); }
    }

    private readonly Lock _failureGate = new();
    private string? _lastFailure;
    private int _failuresInARow;

    private void SetFailure(string? error)
    {
        lock (_failureGate)
        {
            _lastFailure = error;
            _failuresInARow = error is null ? 0 : _failuresInARow + 1;
        }
        _metrics.AuditFailing.Set(error is null ? 0 : 1);
    }

    /// <summary>Raised after every successful audit (on the auditor's thread).</summary>
    public event Action<ShadowAuditReport>? Completed;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.Interval <= TimeSpan.Zero)
        {
            _logger.LogInformation("Shadow audit disabled (AttrCloak:Audit:Interval is 0)");
            return;
        }
        _logger.LogInformation("Shadow audit every {Interval} on a sample of up to {Sample} served users with attackers {Attackers}",
            _options.Interval, _options.SampleSize, string.Join(", ", _options.Attackers));
        using var timer = new PeriodicTimer(_options.Interval, _time);
        try
        {
            await SeedAsync(stoppingToken).ConfigureAwait(false);
            // A first audit of the seeded sample at once: the operator learns within a minute of start-up, not one
            // interval later, that privacy is measured (attrcloak_audit_worst_advantage) or that the audit fails.
            if (_seed is not null)
                await Task.Run(() => RunOnce(onlyIfChanged: true, stoppingToken), stoppingToken).ConfigureAwait(false);
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                // The audit is CPU-bound (attacker training): run it on a pool thread so the host stays responsive.
                await Task.Run(() => RunOnce(onlyIfChanged: true, stoppingToken), stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Fills the sample with the users the store already serves (bootstrapped, or served before a restart), so that the
    /// first audits cover the whole served population and not only the users streamed since start-up.
    /// </summary>
    private async Task SeedAsync(CancellationToken cancellationToken)
    {
        if (_seed is null) return;
        var clock = Stopwatch.StartNew();
        var seen = 0;
        _sample.BeginSeeding();
        try
        {
            await foreach (var user in _seed(cancellationToken).ConfigureAwait(false))
            {
                _sample.OnSeeded(user.UserId, user.Cloaked, user.Classes);
                seen++;
            }
            _logger.LogInformation("Shadow audit sample seeded from the store: {Users} served users scanned in {Seconds:F1} s, {Sampled} sampled",
                seen, clock.Elapsed.TotalSeconds, _sample.Count);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            // The sample then fills from the stream alone; the audit still works.
            _logger.LogWarning("Could not seed the shadow audit sample from the store ({Error}); it fills from the stream", e.Message);
        }
        finally
        {
            _sample.EndSeeding();
        }
    }

    /// <summary>
    /// Runs one audit now (also used by the demo and the tests). Returns null when no attribute had enough users
    /// (counted as <c>skipped</c>) or, with <paramref name="onlyIfChanged"/>, when nothing was served since the last one.
    /// </summary>
    public ShadowAuditReport? RunOnce(bool onlyIfChanged = false, CancellationToken cancellationToken = default)
    {
        _runGate.Wait(cancellationToken);
        try
        {
            var version = _sample.Version;
            if (onlyIfChanged && version == _auditedVersion && Latest is not null)
                return null;
            var (embeddings, classes, users) = _sample.Snapshot();
            var audited = new List<AuditedAttribute>();
            var rows = new List<int[]>();
            foreach (var (attribute, a) in _attributes.Select((x, i) => (x, i)))
            {
                var (selected, labels) = Labelled(classes, users, a, attribute.ClassCount);
                if (selected is null)
                    continue;
                audited.Add(new AuditedAttribute(attribute.Name, attribute.ClassCount, labels));
                rows.Add(selected);
                _metrics.AuditSampleUsers.WithLabels(attribute.Name).Set(selected.Length);
            }
            if (audited.Count == 0)
            {
                _metrics.AuditRuns.WithLabels("skipped").Inc();
                SetFailure(null);
                _logger.LogInformation("Shadow audit skipped: {Users} sampled users, no attribute has two classes with at least {Min} users each",
                    users, _options.MinUsersPerClass);
                return null;
            }

            var clock = Stopwatch.StartNew();
            var attributeAudits = new List<AttributeAudit>();
            for (var i = 0; i < audited.Count; i++)
            {
                // One attribute at a time: each has its own set of labelled users.
                var matrix = Rows(embeddings, rows[i]);
                var result = PrivacyAudit.Run(matrix, [audited[i]], new Audit.AuditOptions
                {
                    Folds = _options.Folds,
                    Seed = Interlocked.Increment(ref _runs),
                    Attackers = _options.Attackers,
                    MaxThreads = 1,
                }, progress: null, cancellationToken);
                attributeAudits.Add(result.Attributes[0]);
            }
            var elapsed = clock.Elapsed;
            var report = new ShadowAuditReport(_time.GetUtcNow(), users, elapsed, attributeAudits);
            Publish(report);
            SetFailure(null);
            _auditedVersion = version;
            Latest = report;
            Completed?.Invoke(report);
            return report;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            // An audit failure must never stop the worker; it shows as a failure count and a growing audit age.
            _metrics.AuditRuns.WithLabels("failure").Inc();
            SetFailure(e.Message);
            _logger.LogError("Shadow audit failed: {Error}", e.Message);
            return null;
        }
        finally
        {
            _runGate.Release();
        }
    }

    private void Publish(ShadowAuditReport report)
    {
        foreach (var attribute in report.Attributes)
        {
            foreach (var score in attribute.Attackers)
            {
                // The stronger of the attacker's two decision rules is the attack it supports.
                var balanced = Math.Max(score.BalancedAccuracy, score.PriorCorrectedBalancedAccuracy);
                _metrics.AuditBalancedAccuracy.WithLabels(attribute.Name, score.Attacker).Set(balanced);
                _metrics.AuditAdvantage.WithLabels(attribute.Name, score.Attacker).Set(balanced - attribute.Chance);
                if (score.Auc is { } auc)
                    _metrics.AuditAuc.WithLabels(attribute.Name, score.Attacker).Set(auc);
            }
            // Both directions (issue 13): an attacker far below chance is systematically wrong, which a calibrated
            // attacker inverts; the alert must see it even when the configured attackers include no calibrated one.
            _metrics.AuditWorstAdvantage.WithLabels(attribute.Name).Set(attribute.MaxAbsAdvantage);
        }
        _metrics.AuditDuration.Set(report.Elapsed.TotalSeconds);
        _metrics.AuditRuns.WithLabels("success").Inc();
        _metrics.MarkAuditSucceeded(report.At);
        _logger.LogInformation("Shadow audit on {Users} served users in {Seconds:F1} s: {Summary}", report.SampleUsers, report.Elapsed.TotalSeconds,
            string.Join("; ", report.Attributes.Select(a => $"{a.Name} worst balanced accuracy {a.WorstBalancedAccuracy:F3} (chance {a.Chance:F3}), worst |advantage| {a.MaxAbsAdvantage:F3}")));
    }

    /// <summary>
    /// The sampled users with a known class of attribute <paramref name="a"/>, keeping only classes with at least
    /// MinUsersPerClass users (a class of 1-2 users cannot be cross-validated and says nothing); null when fewer than
    /// two classes remain.
    /// </summary>
    private (int[]? Rows, int[] Labels) Labelled(int[] classes, int users, int a, int classCount)
    {
        var attributes = _attributes.Count;
        var counts = new int[classCount];
        for (var u = 0; u < users; u++)
            if (classes[u * attributes + a] is var k && k >= 0 && k < classCount) counts[k]++;
        var kept = counts.Select(c => c >= _options.MinUsersPerClass && c >= _options.Folds).ToArray();
        if (kept.Count(x => x) < 2)
            return (null, []);
        var rows = new List<int>();
        var labels = new List<int>();
        for (var u = 0; u < users; u++)
        {
            var k = classes[u * attributes + a];
            if (k >= 0 && k < classCount && kept[k])
            {
                rows.Add(u);
                labels.Add(k);
            }
        }
        return (rows.ToArray(), labels.ToArray());
    }

    private EmbeddingMatrix Rows(float[] embeddings, int[] rows)
    {
        var values = new float[rows.Length * _dimension];
        for (var i = 0; i < rows.Length; i++)
            embeddings.AsSpan(rows[i] * _dimension, _dimension).CopyTo(values.AsSpan(i * _dimension));
        return new EmbeddingMatrix(rows.Length, _dimension, values);
    }

    public override void Dispose()
    {
        _runGate.Dispose();
        base.Dispose();
    }
}

/// <summary>One shadow audit of the served population.</summary>
/// <param name="At">When it finished.</param>
/// <param name="SampleUsers">Users in the sample (each attribute uses those with a known class).</param>
/// <param name="Elapsed">Wall time.</param>
/// <param name="Attributes">Per audited attribute: every attacker's scores and the worst balanced accuracy.</param>
public sealed record ShadowAuditReport(DateTimeOffset At, int SampleUsers, TimeSpan Elapsed, IReadOnlyList<AttributeAudit> Attributes);
