namespace AttrCloak.Streaming.Tests;

/// <summary>
/// Test classes that run alone, after the parallel ones: end-to-end runs with deadlines on scheduled work (shadow
/// audits, fault recovery) and CPU-heavy experiments. Beside every other class on a 2-core CI machine they starved
/// each other (the privacy scenario's audits missed their 90 s deadline in a full run, never alone).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunsAlone
{
    public const string Name = "runs alone";
}
