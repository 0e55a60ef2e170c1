using AttrCloak.Streaming.Pipeline;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AttrCloak.Streaming.Hosting;

/// <summary>
/// The hosted privacy guard: runs <see cref="GuardPipeline"/> on a dedicated thread (Confluent's Consume blocks, so
/// it must not take a thread-pool thread). <see cref="Ready"/> is what /healthz/ready reports. Stopping the host
/// abandons the batch in progress without storing its offsets, commits the stored ones and leaves the consumer
/// group. A fault that retrying cannot fix (e.g. the Redis prefix holds another layout) ends the worker with the
/// error logged; the host then stops (the default <c>BackgroundServiceExceptionBehavior.StopHost</c>).
/// </summary>
public sealed class PrivacyGuardWorker(GuardPipeline pipeline, ILogger<PrivacyGuardWorker> logger) : BackgroundService
{
    /// <summary>The pipeline this worker runs (status, counters).</summary>
    public GuardPipeline Pipeline { get; } = pipeline ?? throw new ArgumentNullException(nameof(pipeline));

    /// <summary>The error that ended the worker (it cannot be retried), or null.</summary>
    public Exception? Failure { get; private set; }

    /// <summary>Ready to serve: consumer group joined, state store initialised and its last call successful.</summary>
    public bool Ready => Pipeline.Status.Ready;

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Pipeline.Run(stoppingToken);
                done.TrySetResult();
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                done.TrySetResult();
            }
            catch (Exception e)
            {
                // One line for the operator; the stack trace only for whoever asks for Debug logs.
                logger.LogCritical("The privacy guard stopped on an error it cannot retry: {Message}", e.Message);
                logger.LogDebug(e, "Where the privacy guard stopped");
                Failure = e;
                done.TrySetException(e);
            }
        })
        {
            Name = "attrcloak-guard",
            IsBackground = true,
        };
        thread.Start();
        return done.Task;
    }
}
