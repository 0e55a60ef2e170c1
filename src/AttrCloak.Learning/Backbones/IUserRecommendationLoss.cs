namespace AttrCloak.Learning.Backbones;

/// <summary>
/// A backbone's own training loss as a function of the user vectors only, with the item side frozen
/// (the paper's parameter self-sharing). AttrCloak-DD uses it as its retention loss L_Rec.
/// </summary>
public interface IUserRecommendationLoss
{
    /// <summary>
    /// The loss for user vectors <paramref name="users"/> ([n, d], float32, may require grad), SUMMED over
    /// training samples (see docs/evaluation.md: the reduction decides how MGDA weighs it). Implementations
    /// resample negatives on every call from their own seeded generator.
    /// </summary>
    Tensor Compute(Tensor users);
}
