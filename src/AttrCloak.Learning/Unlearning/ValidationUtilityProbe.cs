using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// NDCG@10 on the VALIDATION items (leave-one-out, the split's fixed candidate lists) of cloaked user vectors over the
/// original's, with its paired standard error: the utility floor of the privacy-target loop. Never the test items,
/// which only the final evaluation sees.
/// </summary>
public sealed class ValidationUtilityProbe : IUtilityProbe
{
    private readonly EmbeddingMatrix _items;
    private readonly int[][] _candidates;
    private readonly double[] _original;

    public ValidationUtilityProbe(EmbeddingMatrix originalUsers, EmbeddingMatrix items, LeaveOneOutSplit split)
        : this(originalUsers, items, (split ?? throw new ArgumentNullException(nameof(split))).ValidationCandidates)
    {
    }

    /// <summary>For a subset of a data set's users: <paramref name="validationCandidates"/>[i] belongs to row i.</summary>
    public ValidationUtilityProbe(EmbeddingMatrix originalUsers, EmbeddingMatrix items, int[][] validationCandidates)
    {
        ArgumentNullException.ThrowIfNull(originalUsers);
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(validationCandidates);
        _items = items;
        _candidates = validationCandidates;
        _original = UtilityEvaluator.Ndcg10PerUser(originalUsers, items, _candidates);
    }

    public string Name => "validation NDCG@10";

    public PairedRatio Measure(EmbeddingMatrix cloaked) =>
        PairedRatio.Of(_original, UtilityEvaluator.Ndcg10PerUser(cloaked, _items, _candidates));
}
