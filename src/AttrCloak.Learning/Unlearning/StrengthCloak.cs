using AttrCloak.Core.Data;
using AttrCloak.Learning.Backbones;

namespace AttrCloak.Learning.Unlearning;

/// <summary>What one run of an <see cref="IStrengthCloak"/> produced: the cloaked matrix and, for AttrCloak, its details.</summary>
public sealed record StrengthCloakResult(EmbeddingMatrix Embeddings, CloakResult? Cloak = null);

/// <summary>A cloak the privacy-target loop can re-run with one strength per attribute (in the loop's attribute order).</summary>
public interface IStrengthCloak
{
    /// <summary>The original embeddings cloaked at <paramref name="strengths"/> (0 = untouched, 1 = full strength).</summary>
    StrengthCloakResult Run(IReadOnlyList<AttributeStrength> strengths, CancellationToken ct);

    /// <summary>
    /// The same cloak with another random draw (<paramref name="draw"/> &gt;= 1; <see cref="Run"/> is draw 0), or null
    /// when the cloak draws nothing at random. The loop's utility floor reads the spread between draws: a noise-matched
    /// draw moves every member of a class by one vector, so its cost is shared and the per-user standard error misses it.
    /// </summary>
    StrengthCloakResult? Redraw(IReadOnlyList<AttributeStrength> strengths, int draw, CancellationToken ct) => null;
}

/// <summary>AttrCloak (DF or DD by <paramref name="options"/>) as the loop's cloak: <see cref="TargetedCloaker.CandidateOptions"/> per candidate.</summary>
public sealed class AttrCloakStrengths(EmbeddingMatrix original, IReadOnlyList<LabeledAttribute> attributes, CloakOptions options, int strata,
    IUserRecommendationLoss? recommendationLoss) : IStrengthCloak
{
    private readonly string[] _names = attributes.Select(a => a.Name).ToArray();

    public StrengthCloakResult Run(IReadOnlyList<AttributeStrength> strengths, CancellationToken ct) => Run(strengths, options, ct);

    /// <summary>The candidate with the noise-matched targets drawn from another seed.</summary>
    public StrengthCloakResult? Redraw(IReadOnlyList<AttributeStrength> strengths, int draw, CancellationToken ct) =>
        Run(strengths, options with { TargetSeed = unchecked(options.TargetSeed + 7919 * draw) }, ct);

    private StrengthCloakResult Run(IReadOnlyList<AttributeStrength> strengths, CloakOptions preset, CancellationToken ct)
    {
        var cloak = new Cloaker().Cloak(original, attributes, TargetedCloaker.CandidateOptions(preset, _names, strengths, strata), recommendationLoss, null, ct);
        return new StrengthCloakResult(cloak.Embeddings, cloak);
    }
}
