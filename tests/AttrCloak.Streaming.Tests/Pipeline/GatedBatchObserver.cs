using System.Collections.Concurrent;
using AttrCloak.Streaming.Pipeline;

namespace AttrCloak.Streaming.Tests.Pipeline;

/// <summary>Records each batch step into <paramref name="steps"/>; while <paramref name="gate"/> is reset, no acknowledgement is taken in.</summary>
internal sealed class GatedBatchObserver(ConcurrentQueue<BatchTrace> steps, ManualResetEventSlim gate) : IBatchObserver
{
    public void OnStep(BatchTrace trace) => steps.Enqueue(trace);

    public bool AcknowledgementsAllowed => gate.IsSet;

    public void WaitUntilAcknowledgementsAllowed(CancellationToken cancellationToken) => gate.Wait(cancellationToken);
}
