namespace AttrCloak.Streaming.Generations;

/// <summary>
/// The deployment's generations at one registry <see cref="Version"/> (each write adds one), and every rule of their
/// life cycle as pure functions: each <c>With...</c> returns the generations it changes (empty: nothing to do) or
/// throws <see cref="GenerationRuleException"/> for a request that the rules forbid; a store writes them only if the
/// registry is still at <see cref="Version"/> (<see cref="IGenerationStore.TryWriteRegistryAsync"/>). Redis and
/// in-process stores share these rules.
/// </summary>
public sealed record GenerationRegistry(long Version, IReadOnlyList<Generation> Generations)
{
    public static readonly GenerationRegistry Empty = new(0, []);

    /// <summary>The generation of <paramref name="modelVersion"/>, or null.</summary>
    public Generation? Find(string modelVersion) => Generations.FirstOrDefault(g => g.ModelVersion == modelVersion);

    /// <summary>The serving generation (at most one), or null before the first one.</summary>
    public Generation? Serving => Generations.FirstOrDefault(g => g.State == GenerationState.Serving);

    /// <summary>Generations whose stores are written (filling, serving, superseded), newest first.</summary>
    public IEnumerable<Generation> Live => Generations.Where(g => g.Live).OrderByDescending(g => g.Order);

    /// <summary>
    /// Where a user's serving record comes from: the first generation of this order that holds them. Promoted
    /// generations, most recently promoted first; then (only for users no promoted one holds) filling generations,
    /// newest first: such a user is served the filling generation's cold-start cloak until it is promoted.
    /// </summary>
    public IReadOnlyList<Generation> PublishOrder =>
        Generations.Where(g => g.Published).OrderByDescending(g => g.Promoted)
            .Concat(Generations.Where(g => g.State == GenerationState.Filling).OrderByDescending(g => g.Order))
            .ToList();

    /// <summary>
    /// A first event of <paramref name="modelVersion"/>: a new generation, serving at once when the deployment has no
    /// serving generation (its first model: the cold start), filling otherwise. Nothing when it exists (in any state).
    /// </summary>
    public IReadOnlyList<Generation> WithCreated(string modelVersion, DateTimeOffset now, bool seated = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelVersion);
        if (Find(modelVersion) is not null) return [];
        var order = Generations.Count == 0 ? 1 : Generations.Max(g => g.Order) + 1;
        var first = Serving is null;
        var created = new Generation(modelVersion, first ? GenerationState.Serving : GenerationState.Filling, order, now)
        {
            Promoted = first ? Version + 1 : 0,
            PromotedAt = first ? now : null,
            SeatEpoch = seated ? 1 : 0,
            SweepEpoch = seated ? 1 : 0, // a seated population is published by a sweep
        };
        return [created];
    }

    /// <summary>
    /// Bootstrap seeded <paramref name="modelVersion"/> with a batch cloak: it is seated and becomes the serving
    /// generation (the previous serving one, if any, is superseded).
    /// </summary>
    public IReadOnlyList<Generation> WithBootstrapped(string modelVersion, DateTimeOffset now)
    {
        var g = Find(modelVersion);
        if (g is null)
        {
            var created = WithCreated(modelVersion, now, seated: true)[0];
            if (created.State == GenerationState.Serving) return [created];
            g = created;
        }
        else if (!g.Live)
            throw new GenerationRuleException($"generation '{modelVersion}' is {g.StateLabel}: a retired model version cannot be bootstrapped again; use a new model version");
        return Promote(g with { SeatEpoch = g.SeatEpoch + 1, SweepEpoch = g.SweepEpoch + 1, SeatLease = null, SeatLeaseUntil = null }, now);
    }

    /// <summary>Takes (or renews) the lease to seat <paramref name="modelVersion"/>; nothing when another holds a valid one.</summary>
    public IReadOnlyList<Generation> WithSeatLease(string modelVersion, string owner, TimeSpan leaseFor, DateTimeOffset now)
    {
        var g = Find(modelVersion);
        if (g is null || !g.Live) return [];
        if (g.SeatLease is { } holder && holder != owner && g.SeatLeaseUntil > now) return [];
        return [g with { SeatLease = owner, SeatLeaseUntil = now + leaseFor }];
    }

    /// <summary>
    /// The seating by <paramref name="owner"/> of <paramref name="users"/> users is written: the generation is seated once
    /// more, every user must be swept again, and a filling generation is promoted (the serving one superseded). Nothing
    /// when the lease was lost.
    /// </summary>
    public IReadOnlyList<Generation> WithSeated(string modelVersion, string owner, DateTimeOffset now, long users)
    {
        var g = Find(modelVersion);
        if (g is null || !g.Live || g.SeatLease != owner) return [];
        var seated = g with
        {
            SeatEpoch = g.SeatEpoch + 1,
            SeatedUsers = users,
            SweepEpoch = g.SweepEpoch + 1,
            SeatLease = null,
            SeatLeaseUntil = null,
            PromoteRequested = false,
        };
        return seated.State == GenerationState.Filling ? Promote(seated, now) : [seated];
    }

    /// <summary>
    /// A seated generation whose seated population is not known yet (bootstrapped by the CLI, or written by an earlier
    /// version) takes <paramref name="users"/>, its size now, as that base.
    /// </summary>
    public IReadOnlyList<Generation> WithSeatedUsers(string modelVersion, long users)
    {
        var g = Find(modelVersion);
        return g is { Live: true, Seated: true, SeatedUsers: 0 } && users > 0 ? [g with { SeatedUsers = users }] : [];
    }

    /// <summary>An operator asks to promote a filling generation now (the workers seat it without waiting for the thresholds).</summary>
    public IReadOnlyList<Generation> WithPromoteRequested(string modelVersion)
    {
        var g = Find(modelVersion) ?? throw new GenerationRuleException($"no generation '{modelVersion}'");
        return g.State switch
        {
            GenerationState.Filling => g.PromoteRequested ? [] : [g with { PromoteRequested = true }],
            GenerationState.Serving => [],
            _ => throw new GenerationRuleException($"generation '{modelVersion}' is {g.StateLabel}; only a filling generation can be promoted"),
        };
    }

    /// <summary>
    /// Seat a live generation again (its served states recomputed from the stored originals by a batch cloak, then
    /// swept out), e.g. after its statistics had to be rebuilt; for a filling one this is a promotion request.
    /// </summary>
    public IReadOnlyList<Generation> WithSeatRequested(string modelVersion)
    {
        var g = Find(modelVersion) ?? throw new GenerationRuleException($"no generation '{modelVersion}'");
        if (!g.Live) throw new GenerationRuleException($"generation '{modelVersion}' is {g.StateLabel}; only a live generation can be seated");
        return g.PromoteRequested ? [] : [g with { PromoteRequested = true }];
    }

    /// <summary>Every user of the generation must be published again (e.g. after its statistics were rebuilt).</summary>
    public IReadOnlyList<Generation> WithSweepRequested(string modelVersion)
    {
        var g = Find(modelVersion) ?? throw new GenerationRuleException($"no generation '{modelVersion}'");
        if (!g.Published) return [];
        return [g with { SweepEpoch = g.SweepEpoch + 1 }];
    }

    /// <summary>
    /// Retirement asked: a filling or superseded generation stops being written and served. The serving generation
    /// cannot be retired (promote its successor first).
    /// </summary>
    public IReadOnlyList<Generation> WithRetiring(string modelVersion, DateTimeOffset now)
    {
        var g = Find(modelVersion) ?? throw new GenerationRuleException($"no generation '{modelVersion}'");
        return g.State switch
        {
            GenerationState.Filling or GenerationState.Superseded => [g with { State = GenerationState.Retiring, RetiringSince = now, SeatLease = null, SeatLeaseUntil = null }],
            GenerationState.Retiring or GenerationState.Retired => [],
            _ => throw new GenerationRuleException(
                $"generation '{modelVersion}' is the serving generation; promote its successor first (attrcloak generations promote <model version>)"),
        };
    }

    /// <summary>A live generation's input domain was learned (again) from its stored originals.</summary>
    public IReadOnlyList<Generation> WithDomain(string modelVersion, InputDomain domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var g = Find(modelVersion);
        return g is { Live: true } ? [g with { Domain = domain }] : [];
    }

    /// <summary>A live generation was seated (or bootstrapped): how far the seating moved its users (99th percentile).</summary>
    public IReadOnlyList<Generation> WithSeatedDisplacement(string modelVersion, SeatedDisplacement displacement)
    {
        ArgumentNullException.ThrowIfNull(displacement);
        if (!(double.IsFinite(displacement.MapsP99) && displacement.MapsP99 >= 0 && double.IsFinite(displacement.SeatedMax) && displacement.SeatedMax >= 0))
            throw new GenerationRuleException($"a seated displacement must be finite and non-negative, got {displacement}");
        var g = Find(modelVersion);
        return g is { Live: true } ? [g with { Displacement = displacement }] : [];
    }

    /// <summary>A retiring generation's keys are gone.</summary>
    public IReadOnlyList<Generation> WithRetired(string modelVersion)
    {
        var g = Find(modelVersion);
        return g is { State: GenerationState.Retiring } ? [g with { State = GenerationState.Retired }] : [];
    }

    private List<Generation> Promote(Generation g, DateTimeOffset now)
    {
        var changed = new List<Generation> { g with { State = GenerationState.Serving, Promoted = Version + 1, PromotedAt = now } };
        foreach (var other in Generations)
            if (other.State == GenerationState.Serving && other.ModelVersion != g.ModelVersion)
                changed.Add(other with { State = GenerationState.Superseded });
        return changed;
    }
}

/// <summary>A generation request the life-cycle rules forbid (the message says why, for operators).</summary>
public sealed class GenerationRuleException(string message) : InvalidOperationException(message);
