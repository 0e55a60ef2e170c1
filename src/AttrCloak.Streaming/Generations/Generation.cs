using System.Text.Json.Serialization;

namespace AttrCloak.Streaming.Generations;

/// <summary>Where a model generation is in its life (see <see cref="Generation"/>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<GenerationState>))]
public enum GenerationState
{
    /// <summary>Embeddings of a new model arrive and are stored; nothing of it is served while another generation serves.</summary>
    Filling,
    /// <summary>The current generation: what its users are served.</summary>
    Serving,
    /// <summary>An earlier serving generation: serves only its users who have no embedding of a newer one yet.</summary>
    Superseded,
    /// <summary>Being retired: no longer written or served; its users without a newer embedding get a tombstone, then its keys go.</summary>
    Retiring,
    /// <summary>Gone: its keys are deleted; kept in the registry so that late events of its model are recognised.</summary>
    Retired,
}

/// <summary>
/// One model generation of a deployment: the users' embeddings of one <c>model_version</c>, with their own class
/// statistics and maps (embedding spaces of two trainings mean nothing to each other, so nothing may mix them).
/// <para>
/// <see cref="SeatEpoch"/> counts the seatings: a batch AttrCloak-DF over the generation's stored originals that
/// rewrites every user's cloak (as <c>attrcloak bootstrap</c> seeds a first population), done once every class has
/// enough users; a filling generation is promoted by its seating. <see cref="SweepEpoch"/> grows whenever every user
/// of the generation must be published (and, if cloaked before the last seating, re-cloaked) again: sweeps bring each
/// user's sweep mark up to it.
/// </para>
/// </summary>
/// <param name="ModelVersion">The producers' <c>model_version</c> (the generation's name).</param>
/// <param name="State">Where it is in its life.</param>
/// <param name="Order">Creation order within the deployment (larger = newer).</param>
/// <param name="CreatedAt">When the first event of the model arrived (or bootstrap created it).</param>
public sealed record Generation(string ModelVersion, GenerationState State, long Order, DateTimeOffset CreatedAt)
{
    /// <summary>Registry version at which it became the serving generation (0: never promoted); larger = more recent.</summary>
    public long Promoted { get; init; }

    /// <summary>When it became the serving generation.</summary>
    public DateTimeOffset? PromotedAt { get; init; }

    /// <summary>Seatings so far (0: never seated: cloaked only by the per-event maps of a cold start).</summary>
    public int SeatEpoch { get; init; }

    /// <summary>
    /// Users the last seating (or bootstrap) cloaked, 0 while not known: the base of
    /// <see cref="GenerationOptions.ReseatGrowth"/> (a generation that has grown past it is seated again).
    /// </summary>
    public long SeatedUsers { get; init; }

    /// <summary>Every user's sweep mark should reach this (see the type's remarks).</summary>
    public int SweepEpoch { get; init; }

    /// <summary>An operator asked to promote it now (<c>attrcloak generations promote</c>), whatever the thresholds.</summary>
    public bool PromoteRequested { get; init; }

    /// <summary>The worker instance seating it, until <see cref="SeatLeaseUntil"/> (a lease: another takes over after it).</summary>
    public string? SeatLease { get; init; }

    /// <summary>End of <see cref="SeatLease"/>.</summary>
    public DateTimeOffset? SeatLeaseUntil { get; init; }

    /// <summary>When retirement was asked.</summary>
    public DateTimeOffset? RetiringSince { get; init; }

    /// <summary>What a plausible original embedding of this generation looks like (null until enough users are stored).</summary>
    public InputDomain? Domain { get; init; }

    /// <summary>How far its last seating (or bootstrap) moved its users (null: not known yet); the displacement cap's base.</summary>
    public SeatedDisplacement? Displacement { get; init; }

    /// <summary>
    /// Per attribute, each class's shift weight at the last seating (the re-cloak's James-Stein weight; null: not known
    /// yet): the ceiling of the weights the maps may use until the next seating, so that a coalition joining a small class
    /// cannot make the class's honest users be moved class-specifically (docs/threat-model.md).
    /// </summary>
    public IReadOnlyDictionary<string, double[]>? ShiftWeights { get; init; }

    /// <summary>
    /// Per attribute, each class's cap on the offset a re-seating may remove (<see cref="Cloaking.ClassOffsetCaps"/>;
    /// null: not known yet), recorded with the shift weights.
    /// </summary>
    public IReadOnlyDictionary<string, double[]>? OffsetCaps { get; init; }

    /// <summary>Seated at least once (bootstrapped, or promoted).</summary>
    [JsonIgnore]
    public bool Seated => SeatEpoch > 0;

    /// <summary>Served: the serving generation or a superseded one.</summary>
    [JsonIgnore]
    public bool Published => State is GenerationState.Serving or GenerationState.Superseded;

    /// <summary>Its store is written: filling, serving or superseded.</summary>
    [JsonIgnore]
    public bool Live => State is GenerationState.Filling or GenerationState.Serving or GenerationState.Superseded;

    /// <summary>The metric label of <see cref="State"/>.</summary>
    [JsonIgnore]
    public string StateLabel => State.ToString().ToLowerInvariant();
}

/// <summary>
/// How far a generation's users are moved right after its seating (||cloaked - original||): served embeddings are capped
/// at AttrCloak:Input:MaxDisplacementRatio x <paramref name="MapsP99"/>, and never below <paramref name="SeatedMax"/>
/// (so that the seating's own cloaks are inside the cap). See docs/threat-model.md.
/// </summary>
/// <param name="MapsP99">99th percentile over the stored users of how far the maps of the seated statistics move them.</param>
/// <param name="SeatedMax">The largest displacement of the seating's own (batch AttrCloak-DF) cloaks.</param>
public sealed record SeatedDisplacement(double MapsP99, double SeatedMax);
