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
}

/// <summary>AttrCloak (DF or DD by <paramref name="options"/>) as the loop's cloak: <see cref="TargetedCloaker.CandidateOptions"/> per candidate.</summary>
public sealed class AttrCloakStrengths(EmbeddingMatrix original, IReadOnlyList<LabeledAttribute> attributes, CloakOptions options, int strata,
    IUserRecommendationLoss? recommendationLoss) : IStrengthCloak
{
    private readonly string[] _names = attributes.Select(a => a.Name).ToArray();

    public StrengthCloakResult Run(IReadOnlyList<AttributeStrength> strengths, CancellationToken ct)
    {
        var cloak = new Cloaker().Cloak(original, attributes, TargetedCloaker.CandidateOptions(options, _names, strengths, strata), recommendationLoss, null, ct);
        return new StrengthCloakResult(cloak.Embeddings, cloak);
    }
}
