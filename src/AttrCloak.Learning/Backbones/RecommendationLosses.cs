using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Learning.Backbones;

/// <summary>Builds the retention loss L_Rec that matches how a backbone was trained.</summary>
public static class RecommendationLosses
{
    /// <summary>
    /// BCE with the model's negatives per positive (default 4) for MF, BPR for LightGCN; item vectors frozen at
    /// <paramref name="model"/>'s, positives = <paramref name="split"/>'s train pairs, negatives drawn from a
    /// generator seeded with <paramref name="seed"/>. The caller owns (and should dispose) the result.
    /// </summary>
    public static UserRecommendationLoss For(TrainedModel model, LeaveOneOutSplit split, int seed,
        RecommendationReduction reduction = RecommendationReduction.SumOverSamples)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(split);
        UserRecommendationLoss loss = model.Kind switch
        {
            BackboneKind.Mf => new BceRecommendationLoss(model.Items, split, seed, model.Options.Negatives),
            BackboneKind.LightGcn => new BprRecommendationLoss(model.Items, split, seed, model.Options.Negatives),
            _ => throw new ArgumentOutOfRangeException(nameof(model), model.Kind, "unknown backbone"),
        };
        loss.Reduction = reduction;
        return loss;
    }
}

/// <summary>How the recommendation loss over a user's samples is reduced.</summary>
public enum RecommendationReduction
{
    /// <summary>Summed over every sample: users with many interactions weigh more, and the total grows with the data set.</summary>
    SumOverSamples,

    /// <summary>
    /// Each user's MEAN over their own samples, summed over users: every user weighs the same and the loss does not
    /// depend on how many interactions the data holds (per user its gradient is O(1), like the DF anchor's), so MGDA
    /// balances it against L_AU the same way on any data set (issue 13).
    /// </summary>
    MeanPerUser,
}

/// <summary>
/// Shared machinery of the retention losses: the frozen item matrix as a constant tensor, the train positives
/// as precomputed index tensors, and vectorised per-call negative sampling from an own seeded generator.
/// All sums are over samples (not means): see <see cref="IUserRecommendationLoss.Compute"/>.
/// </summary>
public abstract class UserRecommendationLoss : IUserRecommendationLoss, IDisposable
{
    /// <summary>Above this many (user, item) cells the scores are gathered per sample instead of via users·itemsᵀ.</summary>
    internal const long DefaultDenseCellLimit = 64L * 1024 * 1024;

    private readonly Tensor _items;
    private Tensor? _items64;
    private readonly Tensor _positiveUsers;
    private readonly Tensor _positiveItems;
    private readonly Tensor _positiveKeys;
    private readonly Tensor _sortedPositiveKeys;
    private readonly Tensor? _trainMask;
    private readonly Tensor _negativeUsers;
    private readonly torch.Generator _generator;
    private readonly bool _dense;
    private bool _disposed;

    private protected UserRecommendationLoss(EmbeddingMatrix items, LeaveOneOutSplit split, int seed, int negatives,
        long denseCellLimit)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(split);
        if (negatives <= 0) throw new ArgumentOutOfRangeException(nameof(negatives), negatives, "must be positive");
        if (items.Rows != split.ItemCount)
            throw new ArgumentException($"{items.Rows} item vectors but the split has {split.ItemCount} items");
        TorchRuntime.EnsureInitialised();
        UserCount = split.UserCount;
        ItemCount = split.ItemCount;
        Negatives = negatives;
        var pairs = split.TrainPairs();
        PositiveCount = pairs.Length;
        _dense = (long)UserCount * ItemCount <= denseCellLimit;

        var users = new long[pairs.Length];
        var itemIdx = new long[pairs.Length];
        for (var k = 0; k < pairs.Length; k++) (users[k], itemIdx[k]) = (pairs[k].User, pairs[k].Item);
        // The loss outlives any dispose scope its creator may have open: detach every tensor it keeps.
        using var scope = torch.NewDisposeScope();
        _items = torch.tensor(items.Values, [items.Rows, items.Cols]).DetachFromDisposeScope();
        _positiveUsers = torch.tensor(users).DetachFromDisposeScope();
        _positiveItems = torch.tensor(itemIdx).DetachFromDisposeScope();
        _positiveKeys = Keys(_positiveUsers, _positiveItems).DetachFromDisposeScope();
        _sortedPositiveKeys = _positiveKeys.sort().Values.DetachFromDisposeScope();
        if (_dense)
        {
            _trainMask = torch.zeros((long)UserCount * ItemCount, dtype: ScalarType.Bool);
            _trainMask.index_fill_(0, _positiveKeys, Scalars.True);
            _trainMask.DetachFromDisposeScope();
        }
        // Negatives are laid out positive-major: sample k*Negatives + j belongs to positive k.
        _negativeUsers = _positiveUsers.repeat_interleave(negatives).DetachFromDisposeScope();
        _generator = new torch.Generator((ulong)seed, torch.CPU);
    }

    public int UserCount { get; }
    public int ItemCount { get; }
    public int Negatives { get; }

    /// <summary>How samples are reduced (<see cref="RecommendationReduction"/>); summed by default.</summary>
    public RecommendationReduction Reduction
    {
        get => _reduction;
        set
        {
            _reduction = value;
            if (value == RecommendationReduction.MeanPerUser && _positiveWeights is null)
            {
                // 1 / (the user's positives): each user's positives (and, positive-major, their negatives) average to one.
                using var scope = torch.NewDisposeScope();
                var counts = torch.zeros(UserCount, dtype: ScalarType.Float32)
                    .index_add(0, _positiveUsers, torch.ones(_positiveUsers.shape[0], dtype: ScalarType.Float32), Scalars.One);
                _positiveWeights = counts.index_select(0, _positiveUsers).reciprocal().DetachFromDisposeScope();
                _negativeWeights = _positiveWeights.repeat_interleave(Negatives).DetachFromDisposeScope();
            }
        }
    }

    private RecommendationReduction _reduction;
    private Tensor? _positiveWeights;
    private Tensor? _negativeWeights;

    /// <summary>Per-positive and per-negative sample weights (null = 1, the summed loss).</summary>
    private protected (Tensor? Positive, Tensor? Negative) Weights =>
        _reduction == RecommendationReduction.MeanPerUser ? (_positiveWeights, _negativeWeights) : (null, null);

    /// <summary>Train positives (each is paired with <see cref="Negatives"/> fresh negatives per call).</summary>
    public int PositiveCount { get; }

    /// <inheritdoc />
    public Tensor Compute(Tensor users)
    {
        CheckUsers(users);
        using var scope = torch.NewDisposeScope();
        return ComputeWith(users, SampleNegativeItems()).MoveToOuterDisposeScope();
    }

    private void CheckUsers(Tensor users)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(users);
        if (users.ndim != 2 || users.shape[0] != UserCount || users.shape[1] != _items.shape[1])
            throw new ArgumentException(
                $"expected user vectors of shape [{UserCount}, {_items.shape[1]}], got [{string.Join(", ", users.shape)}]");
    }

    /// <summary>The loss with given negatives ([PositiveCount * Negatives], positive-major); tests use it.</summary>
    internal Tensor ComputeWith(Tensor users, Tensor negativeItems)
    {
        CheckUsers(users);
        using var scope = torch.NewDisposeScope();
        var result = ScoredLoss(users, negativeItems, Keys(_negativeUsers, negativeItems));
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Scores every positive and negative sample (keys are u*ItemCount+i), then applies <see cref="Loss"/>.</summary>
    private Tensor ScoredLoss(Tensor users, Tensor negativeItems, Tensor negativeKeys)
    {
        var dense = DenseScores(users);
        var positive = Scores(users, _positiveUsers, _positiveItems, _positiveKeys, dense);
        var negative = Scores(users, _negativeUsers, negativeItems, negativeKeys, dense);
        return Loss(positive, negative);
    }

    /// <summary>The summed loss from the positives' scores and the negatives' scores (positive-major).</summary>
    private protected abstract Tensor Loss(Tensor positive, Tensor negative);

    /// <summary>
    /// users[u]·items[i] for each sample. Small catalogues go through the dense score matrix users·itemsᵀ
    /// (one GEMM and a gather of flat keys u*I+i: far cheaper than gathering a [samples, d] copy of both sides,
    /// ~100 MB per call on ML-100K); large ones gather rows per sample.
    /// </summary>
    private Tensor Scores(Tensor users, Tensor userIdx, Tensor itemIdx, Tensor keys, Tensor? denseScores)
    {
        if (denseScores is not null) return denseScores.view(-1).gather(0, keys);
        var items = ItemsAs(users.dtype);
        return (TrainingLoop.Rows(users, userIdx) * TrainingLoop.Rows(items, itemIdx)).sum(1);
    }

    /// <summary>users·itemsᵀ when the dense path is in use, otherwise null.</summary>
    private Tensor? DenseScores(Tensor users) => _dense ? users.mm(ItemsAs(users.dtype).t()) : null;

    /// <summary>The frozen items in the dtype of the users (float64 lets gradient checks be exact).</summary>
    private Tensor ItemsAs(ScalarType dtype)
    {
        if (dtype == ScalarType.Float32) return _items;
        if (dtype != ScalarType.Float64) throw new ArgumentException($"user vectors must be float32 or float64, got {dtype}");
        return _items64 ??= _items.to_type(ScalarType.Float64).DetachFromDisposeScope();
    }

    /// <summary>
    /// One uniform negative item per negative slot, rejecting the user's train items: draw all at once, then
    /// redraw only the collisions (about the train density: ~6% on ML-100K) until none is left. A handful of
    /// rounds suffices; the cap only matters for a user who has seen almost every item.
    /// </summary>
    internal Tensor SampleNegativeItems()
    {
        using var scope = torch.NewDisposeScope();
        var items = torch.randint(ItemCount, [_negativeUsers.shape[0]], dtype: ScalarType.Int64, generator: _generator);
        var pending = IsTrainPair(Keys(_negativeUsers, items)).nonzero().squeeze(1);
        for (var round = 0; round < 100 && pending.shape[0] > 0; round++)
        {
            var fresh = torch.randint(ItemCount, [pending.shape[0]], dtype: ScalarType.Int64, generator: _generator);
            items.index_put_(fresh, [pending]);
            pending = pending.masked_select(IsTrainPair(Keys(_negativeUsers.index_select(0, pending), fresh)));
        }
        return items.MoveToOuterDisposeScope();
    }

    /// <summary>Flat keys users * ItemCount + items (int64), without temporary Scalars (see <see cref="Scalars"/>).</summary>
    private Tensor Keys(Tensor users, Tensor items)
    {
        using var itemCount = ItemCount.ToScalar();
        return users.mul(itemCount).Plus(items);
    }

    /// <summary>Whether each flat key u*ItemCount+i is a train positive.</summary>
    private Tensor IsTrainPair(Tensor keys)
    {
        // A byte per (user, item) cell is a single gather; past the dense limit fall back to binary search.
        if (_trainMask is not null) return _trainMask.index_select(0, keys);
        using var last = (_sortedPositiveKeys.shape[0] - 1).ToScalar();
        var at = torch.searchsorted(_sortedPositiveKeys, keys).clamp_max(last);
        return _sortedPositiveKeys.index_select(0, at).eq(keys);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _items.Dispose();
        _items64?.Dispose();
        _positiveUsers.Dispose();
        _positiveItems.Dispose();
        _positiveKeys.Dispose();
        _sortedPositiveKeys.Dispose();
        _trainMask?.Dispose();
        _negativeUsers.Dispose();
        _positiveWeights?.Dispose();
        _negativeWeights?.Dispose();
        _generator.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// MF's training loss as a function of the user vectors (AttrCloak-DD's L_Rec for MF): binary cross-entropy with
/// logits, label 1 on every train positive and 0 on <see cref="UserRecommendationLoss.Negatives"/> uniformly
/// sampled non-interacted items per positive (fresh each call), SUMMED over all samples. Items are frozen.
/// </summary>
public sealed class BceRecommendationLoss : UserRecommendationLoss
{
    public BceRecommendationLoss(EmbeddingMatrix items, LeaveOneOutSplit split, int seed, int negatives = 4)
        : this(items, split, seed, negatives, DefaultDenseCellLimit) { }

    internal BceRecommendationLoss(EmbeddingMatrix items, LeaveOneOutSplit split, int seed, int negatives, long denseCellLimit)
        : base(items, split, seed, negatives, denseCellLimit) { }

    private protected override Tensor Loss(Tensor positive, Tensor negative)
    {
        // BCE-with-logits: -log σ(s) = softplus(-s) for label 1, -log(1-σ(s)) = softplus(s) for label 0.
        var (wp, wn) = Weights;
        if (wp is null) return Scalars.Softplus(-positive).sum().Plus(Scalars.Softplus(negative).sum());
        // Per user: mean over its n_u positives and n_u * N negatives, i.e. weights 1 / (n_u (1 + N)).
        using var share = (1.0 / (1 + Negatives)).ToScalar();
        return Scalars.Softplus(-positive).mul(wp.to_type(positive.dtype)).sum()
            .Plus(Scalars.Softplus(negative).mul(wn!.to_type(negative.dtype)).sum()).mul(share);
    }
}

/// <summary>
/// LightGCN's training loss (BPR) as a function of the PROPAGATED user vectors, SUMMED over (positive, negative)
/// pairs: Σ -log σ(u·i⁺ - u·i⁻), with the propagated item vectors frozen and <see cref="UserRecommendationLoss.Negatives"/>
/// fresh negatives per positive each call. Why the propagated vector is the free parameter: LightGCN's layer-0
/// user and item embeddings are mixed by propagation (a user's final vector depends on item layer-0 rows and
/// vice versa), so "re-propagate with the items frozen" has no well-defined meaning; and what AttrCloak cloaks,
/// serves and gets attacked is the propagated user vector, scored against the propagated items by a dot
/// product. Treating that vector as free keeps L_Rec exactly the loss of the vectors actually served. The
/// layer-0 L2 term of training has no counterpart here (there are no layer-0 parameters left) and is omitted.
/// </summary>
public sealed class BprRecommendationLoss : UserRecommendationLoss
{
    public BprRecommendationLoss(EmbeddingMatrix items, LeaveOneOutSplit split, int seed, int negatives = 1)
        : this(items, split, seed, negatives, DefaultDenseCellLimit) { }

    internal BprRecommendationLoss(EmbeddingMatrix items, LeaveOneOutSplit split, int seed, int negatives, long denseCellLimit)
        : base(items, split, seed, negatives, denseCellLimit) { }

    private protected override Tensor Loss(Tensor positive, Tensor negative)
    {
        if (Negatives > 1) positive = positive.repeat_interleave(Negatives);
        var (_, wn) = Weights;
        if (wn is null) return Scalars.Softplus(negative - positive).sum();
        // Per user: mean over its n_u * N pairs.
        using var share = (1.0 / Negatives).ToScalar();
        return Scalars.Softplus(negative - positive).mul(wn.to_type(negative.dtype)).sum().mul(share);
    }
}
