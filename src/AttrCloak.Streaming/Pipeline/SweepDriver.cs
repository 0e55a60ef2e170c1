using System.Diagnostics;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Streaming.Monitoring;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// Between batches: follows the registry (promotions, retirements; the audit follows the serving generation) and
/// runs one step of the sweeps when their rate budget allows: every output of earlier batches is acknowledged first,
/// then the chunk's outputs are sent and awaited, then the users' sweep marks move (so each user's outputs stay in
/// order, and a crash redoes the chunk). A store failure only postpones the sweeps (the consume loop reports the
/// store's health).
/// </summary>
internal sealed class SweepDriver(
    Sweeper sweeper,
    GenerationSet generations,
    OutputBuilder outputs,
    OutputPublisher publisher,
    BatchAccounting accounting,
    IServedPopulationObserver? observer,
    ILogger logger)
{
    private static readonly TimeSpan SweepBackoff = TimeSpan.FromSeconds(5);
    private readonly List<OutboundMessage> _sweepOutputs = [];
    private long _backoffUntil;
    private string? _servingNotified;

    /// <summary>Tells the served-population observer which generation serves, when that changed.</summary>
    public void NotifyServing()
    {
        if (observer is null || generations.Registry.Serving?.ModelVersion is not { } model || model == _servingNotified) return;
        observer.OnServingGeneration(model);
        _servingNotified = model;
    }

    /// <summary>One step; <paramref name="finishSent"/> finishes the batches sent before (their outputs come first).</summary>
    public void Step(Action<CancellationToken> finishSent, CancellationToken cancellationToken)
    {
        if (Stopwatch.GetTimestamp() < _backoffUntil) return;
        try
        {
            generations.RefreshAsync(force: false, cancellationToken).GetAwaiter().GetResult();
            NotifyServing();
            var chunk = sweeper.NextAsync(cancellationToken).GetAwaiter().GetResult();
            if (chunk is null) return;
            if (chunk.Outputs.Count > 0)
            {
                finishSent(cancellationToken);
                outputs.BuildSweep(chunk, _sweepOutputs);
                publisher.SendAndAwait(_sweepOutputs, cancellationToken);
                foreach (var u in chunk.Outputs) accounting.Served(u.UserId, chunk.ModelVersion, u.Cloaked, u.Classes);
            }
            sweeper.CompleteAsync(chunk, cancellationToken).GetAwaiter().GetResult();
        }
        catch (Exception e) when (generations.Faults.PostponesSweeps(e))
        {
            _backoffUntil = Stopwatch.GetTimestamp() + (long)(SweepBackoff.TotalSeconds * Stopwatch.Frequency);
            logger.LogWarning("A sweep step failed ({Error}: {Message}); sweeps resume in {Seconds} s", e.GetType().Name, e.Message, SweepBackoff.TotalSeconds);
        }
    }
}
