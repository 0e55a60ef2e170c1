using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Pipeline;
using BatchPlanner = AttrCloak.Streaming.Pipeline.BatchPlanner;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Generations;

/// <summary>
/// What the consume thread keeps for one live model generation: its store, its cloaking maps (built from its own
/// statistics only), the states of its users this worker wrote recently, its applied-offset watermarks and the
/// planner of the batch in hand. Used by the consume thread only.
/// </summary>
internal sealed class GenerationContext(Generation info, IStateStore store, CloakerCache cloakers, int userCacheCapacity, int dimension, AttributeCatalog catalog)
{
    /// <summary>The generation as the registry last said.</summary>
    public Generation Info { get; set; } = info;

    public string ModelVersion => Info.ModelVersion;

    public IStateStore Store { get; } = store;

    /// <summary>The generation's maps (never built from another generation's statistics).</summary>
    public CloakerCache Cloakers { get; } = cloakers;

    /// <summary>
    /// What the generation's store holds for the users this worker read or wrote recently: the one user cache (see
    /// <see cref="UserCache"/>), planned on here and handed to the store with each batch.
    /// </summary>
    public UserCache Users { get; } = new(userCacheCapacity);

    /// <summary>The batch's changes in this generation (reset per batch).</summary>
    public BatchPlanner Planner { get; } = new(dimension, catalog);

    /// <summary>The store's outcomes of <see cref="BatchPlanner.Changes"/>.</summary>
    public ApplyResult[] Results { get; set; } = [];

    /// <summary>Per input partition, the generation store's applied-offset watermark (read on first use; see GuardPipeline).</summary>
    public Dictionary<(string Topic, int Partition), long> ConsumedMarks { get; } = [];

    /// <summary>False once the store said it keeps no watermarks (the in-process store of old).</summary>
    public bool StoreKeepsMarks { get; set; } = true;

    /// <summary>Users of the batch in hand to read from this generation (in order of first appearance).</summary>
    public List<string> BatchUsers { get; } = [];

    private readonly HashSet<string> _batchUserSet = new(StringComparer.Ordinal);

    /// <summary>True when the batch in hand reads or changes this generation.</summary>
    public bool InBatch => BatchUsers.Count > 0;

    /// <summary>Starts a batch.</summary>
    public void ResetBatch()
    {
        Planner.Reset();
        Results = [];
        BatchUsers.Clear();
        _batchUserSet.Clear();
    }

    /// <summary>The batch reads <paramref name="userId"/> in this generation.</summary>
    public void Touch(string userId)
    {
        if (_batchUserSet.Add(userId)) BatchUsers.Add(userId);
    }

    /// <summary>Whether the batch touched <paramref name="userId"/> here.</summary>
    public bool Touches(string userId) => _batchUserSet.Contains(userId);

    /// <summary>
    /// Whether the user has a state in this generation after the batch, as the store decided: the kind of their last
    /// applied change, or their stored state when none applied.
    /// </summary>
    public bool HoldsAfterBatch(UserFold fold)
    {
        for (var i = fold.ChangeIndices.Count - 1; i >= 0; i--)
        {
            var j = fold.ChangeIndices[i];
            if (Results[j].Outcome == ApplyOutcome.Applied) return Planner.Planned[j].Kind != PlannedKind.Forget;
        }
        return fold.Stored is not null;
    }

    /// <summary>
    /// After the store write: each user of the batch stays remembered in the state the store now holds (the store
    /// recorded it in <see cref="Users"/>) when the store decided every one of their events here as planned; otherwise
    /// (someone else wrote) they are read again next time. The maps learn how many users changed.
    /// <para>
    /// This decides nothing: planner and store both decided with <see cref="FoldPoint.Decide"/>, the planner over the
    /// prior it read, the store over what it held at the write; a difference only says that the two priors differed.
    /// </para>
    /// </summary>
    public void Remember()
    {
        var appliedUsers = 0;
        foreach (var user in Planner.Users)
        {
            var asPlanned = true;
            var applied = false;
            foreach (var j in user.ChangeIndices)
            {
                var outcome = Results[j].Outcome;
                applied |= outcome == ApplyOutcome.Applied;
                asPlanned &= Planner.Planned[j].Kind switch
                {
                    PlannedKind.NotApplicable => outcome is ApplyOutcome.Duplicate or ApplyOutcome.Stale,
                    PlannedKind.UnknownUser => outcome is not ApplyOutcome.Applied,
                    _ => outcome == ApplyOutcome.Applied,
                };
            }
            if (applied) appliedUsers++;
            // The store recorded in Users what it read and wrote (the state it holds now, exactly); a user it decided
            // otherwise than planned was planned on a prior someone else had changed: read them again next time.
            if (!asPlanned) Users.Remove(user.UserId);
        }
        Cloakers.NoteApplied(appliedUsers);
    }

    /// <summary>Drops what this worker remembers of the generation's users and watermarks (another writer may have moved them).</summary>
    public void Forget()
    {
        Users.Clear();
        ConsumedMarks.Clear();
    }
}
