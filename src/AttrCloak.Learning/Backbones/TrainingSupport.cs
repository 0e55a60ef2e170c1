using System.Diagnostics;
using TorchSharp.Modules;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Learning.Backbones;

/// <summary>Trains one backbone on a leave-one-out split; <see cref="BackboneTrainers"/> picks one by kind.</summary>
public interface IBackboneTrainer
{
    BackboneKind Kind { get; }

    /// <summary>
    /// Trains on <paramref name="split"/>'s train part, selects the epoch by validation NDCG@10 and reports
    /// the kept vectors' test metrics. Deterministic for a given <see cref="BackboneTrainingOptions.Seed"/>
    /// and thread count.
    /// </summary>
    TrainedModel Train(RecDataset data, LeaveOneOutSplit split, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default);
}

/// <summary>Creates the trainer for a backbone kind.</summary>
public static class BackboneTrainers
{
    /// <param name="kind">The backbone to train.</param>
    /// <param name="options">Null takes <see cref="BackboneTrainingOptions.DefaultsFor"/> the kind.</param>
    public static IBackboneTrainer Create(BackboneKind kind, BackboneTrainingOptions? options = null) => kind switch
    {
        BackboneKind.Mf => new MfTrainer(options ?? BackboneTrainingOptions.DefaultsFor(kind)),
        BackboneKind.LightGcn => new LightGcnTrainer(options ?? BackboneTrainingOptions.DefaultsFor(kind)),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown backbone"),
    };
}

/// <summary>
/// Uniform negative sampling from the items a user did not interact with IN TRAIN (validation and test items
/// are unknown to the model, so they may be drawn, as in the usual NCF/LightGCN training code).
/// </summary>
internal sealed class NegativeSampler
{
    private readonly int[][] _sortedTrainItems;
    private readonly int _itemCount;

    public NegativeSampler(LeaveOneOutSplit split)
    {
        _itemCount = split.ItemCount;
        _sortedTrainItems = new int[split.UserCount][];
        for (var u = 0; u < split.UserCount; u++)
        {
            var items = (int[])split.TrainItems[u].Clone();
            Array.Sort(items);
            if (items.Length >= _itemCount)
                throw new ArgumentException($"user {u} interacted with every item in train; no negative can be sampled");
            _sortedTrainItems[u] = items;
        }
    }

    public int Sample(int user, Random rng)
    {
        var seen = _sortedTrainItems[user];
        while (true)
        {
            var j = rng.Next(_itemCount);
            if (Array.BinarySearch(seen, j) < 0) return j;
        }
    }
}

/// <summary>
/// The epoch loop both trainers share: run an epoch, evaluate every EvalEvery epochs on the validation
/// candidates, keep the best evaluation's exported vectors, stop after Patience evaluations without
/// improvement, then score the kept vectors on test once.
/// </summary>
internal static class TrainingLoop
{
    public static TrainedModel Run(BackboneKind kind, RecDataset data, LeaveOneOutSplit split,
        BackboneTrainingOptions options, Func<int, double> runEpoch, Func<(EmbeddingMatrix Users, EmbeddingMatrix Items)> export,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        (EmbeddingMatrix Users, EmbeddingMatrix Items)? best = null;
        RankingMetrics? bestValidation = null;
        var bestEpoch = 0;
        var sinceBest = 0;
        var epoch = 0;
        while (epoch < options.Epochs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            epoch++;
            var loss = runEpoch(epoch);
            if (!double.IsFinite(loss))
                throw new InvalidOperationException($"{kind} training diverged at epoch {epoch} (loss {loss}); lower the learning rate");
            double? ndcg = null;
            if (epoch % options.EvalEvery == 0 || epoch == options.Epochs)
            {
                var vectors = export();
                var validation = UtilityEvaluator.Evaluate(vectors.Users, vectors.Items, split.ValidationCandidates);
                ndcg = validation.Ndcg10;
                // Strictly better only: on a plateau the earlier (less trained) epoch is kept.
                if (bestValidation is null || validation.Ndcg10 > bestValidation.Ndcg10)
                {
                    best = vectors;
                    bestValidation = validation;
                    bestEpoch = epoch;
                    sinceBest = 0;
                }
                else sinceBest++;
            }
            progress?.Report(new TrainingProgress(epoch, loss, ndcg, clock.Elapsed));
            if (sinceBest >= options.Patience) break;
        }
        var kept = best!.Value;
        var test = UtilityEvaluator.Evaluate(kept.Users, kept.Items, split.TestCandidates);
        return new TrainedModel(kind, kept.Users, kept.Items, data.Name, epoch, bestEpoch, bestValidation!, test,
            clock.Elapsed.TotalSeconds, options);
    }

    public static void CheckInputs(RecDataset data, LeaveOneOutSplit split, BackboneTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(split);
        options.Validate();
        if (split.UserCount != data.UserCount || split.ItemCount != data.ItemCount)
            throw new ArgumentException(
                $"the split has {split.UserCount} users x {split.ItemCount} items but data set '{data.Name}' has {data.UserCount} x {data.ItemCount}");
        if (split.TrainInteractionCount == 0) throw new ArgumentException($"data set '{data.Name}' has no training interactions");
    }

    /// <summary>
    /// Initialises torch and, when <see cref="BackboneTrainingOptions.Threads"/> is set, uses that many intra-op
    /// threads until the returned scope is disposed (the setting is process-wide, so it is restored afterwards).
    /// </summary>
    public static IDisposable UseThreads(BackboneTrainingOptions options)
    {
        TorchRuntime.EnsureInitialised();
        var previous = torch.get_num_threads();
        if (options.Threads is not { } threads || threads == previous) return NoOp.Instance;
        torch.set_num_threads(threads);
        return new RestoreThreads(previous);
    }

    private sealed class RestoreThreads(int previous) : IDisposable
    {
        public void Dispose() => torch.set_num_threads(previous);
    }

    private sealed class NoOp : IDisposable
    {
        public static readonly NoOp Instance = new();
        public void Dispose() { }
    }

    /// <summary>Copies a float32 [rows, cols] tensor into a fresh matrix.</summary>
    public static EmbeddingMatrix ToMatrix(Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        var contiguous = t.detach().to_type(ScalarType.Float32).contiguous();
        return new EmbeddingMatrix((int)t.shape[0], (int)t.shape[1], contiguous.data<float>().ToArray());
    }

    /// <summary>
    /// table[index] as a [n, d] tensor. Uses gather rather than index_select on purpose: here index_select's
    /// backward (a 2-D index_add) is several times slower than gather's (scatter_add) on training-sized batches.
    /// </summary>
    public static Tensor Rows(Tensor table, Tensor index) =>
        table.gather(0, index.unsqueeze(1).expand(index.shape[0], table.shape[1]));
}

/// <summary>
/// torch.optim.Adam(parameters, lr) of TorchSharp 0.107 (beta 0.9/0.999, eps 1e-8, no weight decay, no amsgrad),
/// op for op, so a given seed trains to the same bits. Own code because TorchSharp's step passes temporary,
/// never-disposed Scalars to libtorch (mul_(beta1), add_(grad, alpha), / sqrt(bc2), add_(eps), addcdiv_(value)),
/// which another thread's GC can finalise mid-call (see <see cref="Scalars"/>). Every Scalar here is a using
/// variable that lives until the step has returned.
/// </summary>
internal sealed class TorchAdam : IDisposable
{
    private const double Beta1 = 0.9;
    private const double Beta2 = 0.999;
    private const double Epsilon = 1e-8;
    private readonly Parameter[] _parameters;
    private readonly Tensor[] _m;
    private readonly Tensor[] _v;
    private readonly double _learningRate;
    private long _step;

    public TorchAdam(IEnumerable<Parameter> parameters, double learningRate)
    {
        _parameters = parameters.ToArray();
        _learningRate = learningRate;
        using var noGrad = torch.no_grad();
        _m = _parameters.Select(p => torch.zeros_like(p).DetachFromDisposeScope()).ToArray();
        _v = _parameters.Select(p => torch.zeros_like(p).DetachFromDisposeScope()).ToArray();
    }

    /// <summary>Zeroes the gradients (as optimizer.zero_grad(); accumulation into zero is exact either way).</summary>
    public void ZeroGrad()
    {
        foreach (var p in _parameters)
        {
            using var grad = p.grad;
            grad?.zero_();
        }
    }

    public void Step()
    {
        _step++;
        var biasCorrection1 = 1 - Math.Pow(Beta1, _step);
        var biasCorrection2 = 1 - Math.Pow(Beta2, _step);
        using var beta1 = Beta1.ToScalar();
        using var oneMinusBeta1 = (1 - Beta1).ToScalar();
        using var beta2 = Beta2.ToScalar();
        using var oneMinusBeta2 = (1 - Beta2).ToScalar();
        using var sqrtBiasCorrection2 = Math.Sqrt(biasCorrection2).ToScalar();
        using var epsilon = Epsilon.ToScalar();
        using var negativeStepSize = (-(_learningRate / biasCorrection1)).ToScalar();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        for (var i = 0; i < _parameters.Length; i++)
        {
            var grad = _parameters[i].grad;
            if (grad is null) continue;
            _m[i].mul_(beta1).add_(grad, oneMinusBeta1);
            // TorchSharp passes grad.conj(): the identity for real tensors.
            _v[i].mul_(beta2).addcmul_(grad, grad, oneMinusBeta2);
            var denominator = _v[i].sqrt().div(sqrtBiasCorrection2).add_(epsilon, Scalars.One);
            _parameters[i].addcdiv_(_m[i], denominator, negativeStepSize);
        }
    }

    public void Dispose()
    {
        foreach (var t in _m) t.Dispose();
        foreach (var t in _v) t.Dispose();
    }
}
