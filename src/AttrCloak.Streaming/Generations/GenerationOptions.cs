namespace AttrCloak.Streaming.Generations;

/// <summary>
/// How model generations roll out (<c>AttrCloak:Generations</c>): when a filling generation is promoted, how fast
/// sweeps publish, and the bounds that keep one producer from opening unbounded generations.
/// </summary>
public sealed class GenerationOptions
{
    public const string SectionName = "AttrCloak:Generations";

    /// <summary>Promote a filling generation as soon as it has enough users (below); false: only on request.</summary>
    public bool AutoPromote { get; set; } = true;

    /// <summary>
    /// A generation is seated (and a filling one promoted) when every class of every protected attribute has at least
    /// this many users, or, for a new model, as many as the class has in the serving generation if that is fewer.
    /// </summary>
    public int MinClassUsers { get; set; } = 5;

    /// <summary>A filling generation is promoted only once it holds at least this share of the serving generation's users.</summary>
    public double MinUserShare { get; set; } = 0.9;

    /// <summary>
    /// The serving generation is seated again once it holds this many times the users its last seating cloaked (0:
    /// never). Why: the per-event maps aim at the served statistics, and once most of them come from the maps' own
    /// outputs the classes drift apart again. ML-100K, batch DF seating a share of the users and the rest streamed
    /// (streaming-quality experiment, gender / age worst |advantage|): half seated 0.024 / 0.073 and 0.050 / 0.047 (two
    /// stream orders), a tenth 0.121 / 0.051 and 0.101 / 0.030, 3 % 0.135 / 0.055 and 0.145 / 0.050. With 2 the streamed
    /// share stays under a half, the share the harness's served-stream row measures; seatings cost a batch cloak and a
    /// sweep of every user, so doubling keeps their total work within twice that of the final population. A re-seating
    /// is bounded by the seating before it (displacement cap, class offset caps, shift weights; docs/threat-model.md), so
    /// a Sybil flood that triggers one gains nothing. Off (0) by default because it trades one leak for another on real
    /// data: ML-100K seated at a tenth and streamed to all users (streaming-quality, two orders) reads gender / age
    /// 0.121 / 0.051 and 0.101 / 0.030 without re-seating, 0.033 / 0.102 and 0.033 / 0.122 re-seated at 2x (batch DF's
    /// age leak; the maps' age protection is what the stream keeps). docs/rollouts.md.
    /// </summary>
    public double ReseatGrowth { get; set; }

    /// <summary>
    /// A cold start (no serving generation to compare with) is seated once it holds this many users even if some class
    /// still has fewer than <see cref="MinClassUsers"/> (0: only by the class counts): a class that never fills (declared
    /// in the catalog, absent from the data) must not leave the generation served by the maps alone, which leak as the
    /// population grows (see <see cref="ReseatGrowth"/>). The seating's batch cloak shrinks a small class's shift to
    /// what its users support.
    /// </summary>
    public long ColdSeatUsers { get; set; } = 1000;

    /// <summary>At most this many generations fill at once; an update of yet another new model is dead-lettered (generation_limit).</summary>
    public int MaxFilling { get; set; } = 2;

    /// <summary>Users per second a worker's sweeps publish (and re-cloak) beside the live stream.</summary>
    public int SweepUsersPerSecond { get; set; } = 2000;

    /// <summary>How often a worker looks for registry changes (promotions, retirements by other workers or the CLI).</summary>
    public TimeSpan RegistryPoll { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a worker checks whether a generation is ready to be seated.</summary>
    public TimeSpan SeatCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The lease of the worker seating a generation (renewed while it works): when that worker dies, another one takes
    /// over after at most this long.
    /// </summary>
    public TimeSpan SeatLease { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>A retiring generation's keys are deleted no sooner than this after retirement was asked (every worker stops writing it first).</summary>
    public TimeSpan RetireGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A seating (a promoted generation, a cold start) cloaks its population to this privacy target: the largest
    /// |balanced accuracy - chance| per attribute, reached in the closed loop of `cloak --privacy-target` on shadow audits
    /// of the generation's users (no utility floor: a worker has no items; the loop raises each attribute only as far as
    /// the target needs). Null: the DF preset at full strength. Set it to the target `attrcloak bootstrap
    /// --privacy-target` used, so that a rollout serves what the bootstrap did.
    /// </summary>
    public double? SeatingPrivacyTarget { get; set; }

    /// <summary>How a seating cloaks the generation's population (<see cref="SeatingPrivacyTarget"/>).</summary>
    public PopulationSeeding Seeding() => SeatingPrivacyTarget is { } eps ? PopulationSeeding.ToTarget(eps) : PopulationSeeding.DataFree;

    /// <summary>Adds every problem to <paramref name="errors"/>.</summary>
    public void Validate(List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (MinClassUsers is < 1 or > 1_000_000)
            errors.Add($"{SectionName}:MinClassUsers must be in 1..1000000, got {MinClassUsers}");
        if (!(MinUserShare is >= 0 and <= 1))
            errors.Add($"{SectionName}:MinUserShare must be in 0..1, got {MinUserShare}");
        if (MaxFilling is < 1 or > 16)
            errors.Add($"{SectionName}:MaxFilling must be in 1..16, got {MaxFilling}");
        if (SweepUsersPerSecond is < 1 or > 1_000_000)
            errors.Add($"{SectionName}:SweepUsersPerSecond must be in 1..1000000, got {SweepUsersPerSecond}");
        if (RegistryPoll <= TimeSpan.Zero || RegistryPoll > TimeSpan.FromMinutes(1))
            errors.Add($"{SectionName}:RegistryPoll must be between 0 (exclusive) and 1 min, got {RegistryPoll}");
        if (SeatCheckInterval <= TimeSpan.Zero || SeatCheckInterval > TimeSpan.FromMinutes(10))
            errors.Add($"{SectionName}:SeatCheckInterval must be between 0 (exclusive) and 10 min, got {SeatCheckInterval}");
        if (SeatLease < TimeSpan.FromSeconds(5) || SeatLease > TimeSpan.FromHours(1))
            errors.Add($"{SectionName}:SeatLease must be between 5 s and 1 h, got {SeatLease}");
        if (!(ReseatGrowth == 0 || ReseatGrowth is >= 1.1 and <= 100))
            errors.Add($"{SectionName}:ReseatGrowth must be 0 (never re-seat) or in 1.1..100, got {ReseatGrowth}");
        if (ColdSeatUsers is < 0 or > 1_000_000_000)
            errors.Add($"{SectionName}:ColdSeatUsers must be in 0..1000000000 (0: only the class counts), got {ColdSeatUsers}");
        if (SeatingPrivacyTarget is { } eps && !(eps is > 0 and < 1))
            errors.Add($"{SectionName}:SeatingPrivacyTarget must be in (0, 1) or absent, got {eps}");
        if (RetireGrace < TimeSpan.Zero || RetireGrace > TimeSpan.FromHours(1))
            errors.Add($"{SectionName}:RetireGrace must be between 0 and 1 h, got {RetireGrace}");
    }
}
