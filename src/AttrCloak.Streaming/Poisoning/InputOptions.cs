namespace AttrCloak.Streaming.Poisoning;

/// <summary>
/// Which embedding updates are plausible enough to enter the class statistics (<c>AttrCloak:Input</c>): hard limits for
/// every deployment, and how far from its generation's learned domain (<see cref="Generations.InputDomain"/>) an
/// original embedding may lie. Anything beyond is dead-lettered as <c>out_of_range</c>; docs/threat-model.md.
/// </summary>
public sealed class InputOptions
{
    public const string SectionName = "AttrCloak:Input";

    /// <summary>No value of an embedding may exceed this in absolute value (before any domain is learned, too).</summary>
    public double MaxAbsValue { get; set; } = 1e4;

    /// <summary>A value may lie at most this many robust deviations (1.4826 MAD) from its dimension's median.</summary>
    public double MaxDeviations { get; set; } = 12;

    /// <summary>The standardised norm may be at most this multiple of the population's median standardised norm.</summary>
    public double MaxNormRatio { get; set; } = 4;

    /// <summary>
    /// A served embedding lies at most this multiple of its generation's seated displacement (the 99th percentile of how
    /// far its last seating moved its users) from the user's original: poisoned class statistics cannot move an honest
    /// user further (<see cref="Cloaking.DisplacementCap"/>). Generations never seated are not capped.
    /// </summary>
    public double MaxDisplacementRatio { get; set; } = 1.5;

    /// <summary>How often the seater learns each live generation's domain again from its stored originals.</summary>
    public TimeSpan DomainRefresh { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Adds every problem to <paramref name="errors"/>.</summary>
    public void Validate(List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (!(MaxAbsValue is > 0 and <= 1e30))
            errors.Add($"{SectionName}:MaxAbsValue must be in (0, 1e30], got {MaxAbsValue}");
        if (!(MaxDeviations is >= 3 and <= 1e6))
            errors.Add($"{SectionName}:MaxDeviations must be in 3..1e6 (below 3 honest users are refused), got {MaxDeviations}");
        if (!(MaxNormRatio is >= 1.5 and <= 1e6))
            errors.Add($"{SectionName}:MaxNormRatio must be in 1.5..1e6, got {MaxNormRatio}");
        if (!(MaxDisplacementRatio is >= 1 and <= 1e6))
            errors.Add($"{SectionName}:MaxDisplacementRatio must be in 1..1e6 (below 1 honest users are capped; 1e6 switches the cap off), got {MaxDisplacementRatio}");
        if (DomainRefresh < TimeSpan.FromSeconds(1) || DomainRefresh > TimeSpan.FromDays(1))
            errors.Add($"{SectionName}:DomainRefresh must be between 1 s and 1 day, got {DomainRefresh}");
    }

    /// <summary>
    /// The displacement cap of a generation whose seating moved its users by <paramref name="seated"/> (infinite: not
    /// known yet): <see cref="MaxDisplacementRatio"/> x the seated maps' 99th percentile, never below the seating's own
    /// largest move.
    /// </summary>
    public double DisplacementCapOf(Generations.SeatedDisplacement? seated) =>
        seated is { MapsP99: > 0 } s ? Math.Max(s.MapsP99 * MaxDisplacementRatio, s.SeatedMax) : double.PositiveInfinity;

    /// <summary>
    /// Why <paramref name="x"/> is refused (null: accepted): a value beyond <see cref="MaxAbsValue"/>, or outside the
    /// generation's learned <paramref name="domain"/> (none before it has enough users).
    /// </summary>
    public string? Refuses(ReadOnlySpan<float> x, Generations.InputDomain? domain)
    {
        for (var j = 0; j < x.Length; j++)
            if (!(Math.Abs(x[j]) <= MaxAbsValue))
                return $"value {j} exceeds AttrCloak:Input:MaxAbsValue ({MaxAbsValue:G3}) in absolute value";
        return domain?.Refuses(x, MaxDeviations, MaxNormRatio);
    }
}
