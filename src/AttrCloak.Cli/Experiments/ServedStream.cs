using System.Diagnostics;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Tools.Benchmarks;

namespace AttrCloak.Cli.Experiments;

/// <summary>What one served-stream run left: every user's served row.</summary>
/// <param name="Served">Row u = what the guard serves for user u.</param>
/// <param name="BootstrapUsers">Users seeded by the bootstrap.</param>
/// <param name="StreamedUsers">Users re-cloaked one by one by the worker's maps.</param>
/// <param name="Seconds">Wall time of the whole run.</param>
public sealed record ServedStreamResult(EmbeddingMatrix Served, int BootstrapUsers, int StreamedUsers, double Seconds);

/// <summary>
/// A rollout of batch DF's result through the guard, in process: a random half of the users seeded with the cloak the
/// privacy-target loop chose on all of them (its strengths and strata, <see cref="TargetedCloaker.CandidateOptions"/>),
/// then every other user streamed one by one in random order through the worker's re-cloak
/// (<see cref="TransportCloakerFactory"/> with its shipped defaults), the served statistics updated after each user as
/// the store updates them and the maps rebuilt every <see cref="RefreshEvery"/> users (<see cref="StreamingReplay"/>).
/// Kafka and Redis carry these rows unchanged, so the served population's audit is the guard's; the real worker runs
/// the same path in `attrcloak demo`. The bootstrap applies batch DF's cloak rather than running the loop again on its
/// half, so that the comparison with batch DF isolates what streaming changes (a loop on half the users picks its own,
/// usually weaker, strengths: its utility floor has a larger standard error).
/// </summary>
public static class ServedStream
{
    /// <summary>Users between map rebuilds: sooner than a worker's default (2,000 events or 10 s), the stricter case for
    /// a harness member of a few hundred users.</summary>
    public const int RefreshEvery = 25;

    /// <summary>
    /// Issue 13's rule for what the guard serves: on every attribute its worst |advantage| (both directions) at most this
    /// much above the batch run it is compared with. The harness's verdict and the demo's bar.
    /// </summary>
    public const double Tolerance = 0.02;

    public static ServedStreamResult Run(EmbeddingMatrix original, IReadOnlyList<LabeledAttribute> attributes, CloakOptions batch, int seed,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return Replay(original, attributes, seed, new TransportCloakerFactory(), batch, null, ct);
    }

    /// <summary>
    /// The same rollout of AttrCloak-OT's result: the bootstrap half seeded with batch OT's rows (<paramref name="batch"/>),
    /// every other user streamed through the worker's maps built with the strengths OT's loop chose
    /// (<see cref="CrossFittedTransport.MapOptions"/> over <see cref="CrossFittedTransport.DefaultOptions"/>), from the
    /// store's served and original statistics as the worker builds them.
    /// </summary>
    public static ServedStreamResult RunTransport(EmbeddingMatrix original, IReadOnlyList<LabeledAttribute> attributes, EmbeddingMatrix batch,
        IReadOnlyList<AttributeStrength> strengths, int seed, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        ArgumentNullException.ThrowIfNull(batch);
        var maps = CrossFittedTransport.MapOptions(CrossFittedTransport.DefaultOptions(nullTargets: false), attributes.Select(a => a.Name).ToArray(), strengths);
        return Replay(original, attributes, seed, new TransportCloakerFactory(maps), StreamingReplay.DataFreePreset, (users, _, _) => batch.SelectRows(users), ct);
    }

    // Half bootstrapped (batch DF with `batch`, or `bootstrapCloak` when given), half streamed through `maps`, rebuilt every RefreshEvery users.
    private static ServedStreamResult Replay(EmbeddingMatrix original, IReadOnlyList<LabeledAttribute> attributes, int seed, TransportCloakerFactory maps,
        CloakOptions batch, Func<int[], EmbeddingMatrix, int[][], EmbeddingMatrix>? bootstrapCloak, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(attributes);
        var clock = Stopwatch.StartNew();
        var replay = new StreamingReplay
        {
            Attributes = attributes.Select(a => a.Attribute).ToArray(),
            BootstrapFraction = 0.5,
            RefreshEvery = RefreshEvery,
            Seed = seed,
            BatchOptions = batch,
            BootstrapCloak = bootstrapCloak,
        };
        var result = replay.Run(original, attributes.Select(a => a.Labels).ToArray(), maps, ct);
        return new ServedStreamResult(result.Served, result.BootstrapUsers, result.StreamedUsers, clock.Elapsed.TotalSeconds);
    }
}
