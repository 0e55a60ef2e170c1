using AttrCloak.Streaming.Pipeline;
using BatchPlanner = AttrCloak.Streaming.Pipeline.BatchPlanner;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Generations;

/// <summary>One user of a batch-cloaked population: ids, both embeddings and the class per catalog attribute (-1 unknown).</summary>
public sealed record SeedUser(string UserId, float[] Original, float[] Cloaked, int[] Classes);

/// <summary>What <see cref="GenerationSeeding.SeedAsync"/> did: per user whether it was written, the outcome counts, the generation after.</summary>
public sealed record SeedResult(bool[] Applied, IReadOnlyDictionary<ApplyOutcome, long> Outcomes, IReadOnlyDictionary<string, long> Rejections, Generation Generation);

/// <summary>
/// Seeds a model generation with a batch-cloaked population, as <c>attrcloak bootstrap</c> does (and the demo and the
/// benches, which must start from the same state): every user written with both embeddings and classes, then the
/// generation seated and made the serving one; the workers' sweep then publishes its users. Into a generation that is
/// seated already (<c>--force</c>), users are added at its current seating and only a sweep is asked.
/// </summary>
public static class GenerationSeeding
{
    /// <param name="store">the deployment.</param>
    /// <param name="modelVersion">the generation (created when new).</param>
    /// <param name="users">the population, batch-cloaked.</param>
    /// <param name="version">every user's version (streamed events need a higher one).</param>
    /// <param name="batchSize">users per atomic store write.</param>
    /// <param name="progress">users written so far.</param>
    /// <param name="cancellationToken">stops between writes.</param>
    public static async Task<SeedResult> SeedAsync(IGenerationStore store, string modelVersion, IReadOnlyList<SeedUser> users, long version, int batchSize,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(users);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var before = (await store.ReadRegistryAsync(cancellationToken).ConfigureAwait(false)).Find(modelVersion);
        if (before is { Live: false })
            throw new GenerationRuleException($"generation '{modelVersion}' is {before.StateLabel}: a retired model version cannot be bootstrapped again; use a new model version");
        var addToSeated = before is { Seated: true };
        var epoch = addToSeated ? before!.SeatEpoch : (before?.SeatEpoch ?? 0) + 1;

        var target = store.StoreOf(modelVersion);
        var applied = new bool[users.Count];
        var outcomes = Enum.GetValues<ApplyOutcome>().ToDictionary(o => o, _ => 0L);
        var rejections = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var start = 0; start < users.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = Math.Min(batchSize, users.Count - start);
            var batch = new UserStateChange[count];
            for (var i = 0; i < count; i++)
            {
                var u = users[start + i];
                // Deterministic ids: a re-run of the same bootstrap is a duplicate, not a second population.
                var id = StoredEventId.Compose($"bootstrap-v{version}-{u.UserId}", modelVersion, BatchPlanner.KnownClassMask(u.Classes), StoredEventId.UnknownStream, epoch);
                batch[i] = new UserStateChange(u.UserId, id, version) { Original = u.Original, Cloaked = u.Cloaked, Classes = u.Classes };
            }
            var results = await target.ApplyAsync(batch, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < count; i++)
            {
                outcomes[results[i].Outcome]++;
                applied[start + i] = results[i].Outcome == ApplyOutcome.Applied;
                if (results[i].Outcome == ApplyOutcome.Rejected)
                    rejections[results[i].Reason ?? "?"] = rejections.GetValueOrDefault(results[i].Reason ?? "?") + 1;
            }
            progress?.Report(start + count);
        }

        var now = DateTimeOffset.UtcNow;
        var registry = outcomes[ApplyOutcome.Applied] == 0 && before is not null
            ? await store.ReadRegistryAsync(cancellationToken).ConfigureAwait(false) // nothing new: the generation stays as it is
            : await store.UpdateRegistryAsync(r => addToSeated ? r.WithSweepRequested(modelVersion) : r.WithBootstrapped(modelVersion, now), cancellationToken)
                .ConfigureAwait(false);
        return new SeedResult(applied, outcomes, rejections, registry.Find(modelVersion)!);
    }
}
