using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Learning.Backbones;

/// <summary>
/// LightGCN (He et al., SIGIR 2020): layer-0 user and item embeddings propagated over the symmetric-normalised
/// user-item graph D^-1/2 A D^-1/2 (a sparse tensor, built from TRAIN interactions only) for
/// <see cref="BackboneTrainingOptions.Layers"/> layers; the final embedding is the mean of layers 0..L.
/// BPR loss with uniformly sampled negatives, L2 on the batch's layer-0 rows, Adam.
/// <see cref="TrainedModel.Users"/>/<see cref="TrainedModel.Items"/> are the propagated vectors.
/// </summary>
public sealed class LightGcnTrainer(BackboneTrainingOptions options) : IBackboneTrainer
{
    public BackboneKind Kind => BackboneKind.LightGcn;
    public BackboneTrainingOptions Options { get; } = options ?? throw new ArgumentNullException(nameof(options));

    public TrainedModel Train(RecDataset data, LeaveOneOutSplit split, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        TrainingLoop.CheckInputs(data, split, Options);
        using var threads = TrainingLoop.UseThreads(Options);
        var o = Options;
        using var generator = new torch.Generator((ulong)o.Seed, torch.CPU);
        var rng = new Random(o.Seed);
        var sampler = new NegativeSampler(split);
        var pairs = split.TrainPairs();
        var userCount = split.UserCount;
        var nodeCount = userCount + split.ItemCount;
        var sampleCount = pairs.Length * o.Negatives;

        using var adjacency = NormalisedAdjacency(split);
        // One table for users (rows 0..U-1) and items (rows U..): propagation is then a single sparse mm.
        // Scalars.Normal and TorchAdam: torch.normal and torch.optim.Adam without temporary Scalars (see Scalars).
        using var embeddings = torch.nn.Parameter(Scalars.Normal(0, o.InitStd, [nodeCount, o.Dim], generator));
        using var optimizer = new TorchAdam([embeddings], o.LearningRate);
        using var halfWeightDecay = (o.WeightDecay * 0.5).ToScalar();
        var userIdx = new long[sampleCount];
        var positiveIdx = new long[sampleCount];
        var negativeIdx = new long[sampleCount];

        double RunEpoch(int epoch)
        {
            for (var p = 0; p < pairs.Length; p++)
            {
                var (u, i) = pairs[p];
                for (var n = 0; n < o.Negatives; n++)
                {
                    var at = p * o.Negatives + n;
                    userIdx[at] = u;
                    positiveIdx[at] = userCount + i;
                    negativeIdx[at] = userCount + sampler.Sample(u, rng);
                }
            }
            using var epochScope = torch.NewDisposeScope();
            var order = torch.randperm(sampleCount, generator: generator);
            var allUsers = torch.tensor(userIdx).index_select(0, order);
            var allPositives = torch.tensor(positiveIdx).index_select(0, order);
            var allNegatives = torch.tensor(negativeIdx).index_select(0, order);
            double lossSum = 0;
            for (var start = 0; start < sampleCount; start += o.BatchSize)
            {
                using var step = torch.NewDisposeScope();
                var length = Math.Min(o.BatchSize, sampleCount - start);
                var bu = allUsers.narrow(0, start, length);
                var bp = allPositives.narrow(0, start, length);
                var bn = allNegatives.narrow(0, start, length);
                var final = Propagate(adjacency, embeddings, o.Layers);
                var eu = TrainingLoop.Rows(final, bu);
                var margin = (eu * TrainingLoop.Rows(final, bp)).sum(1) - (eu * TrainingLoop.Rows(final, bn)).sum(1);
                // -log sigmoid(x) = softplus(-x), numerically stable for large margins.
                var loss = Scalars.Softplus(-margin).mean();
                if (o.WeightDecay > 0)
                {
                    var l2 = TrainingLoop.Rows(embeddings, bu).Squared().sum().Plus(TrainingLoop.Rows(embeddings, bp).Squared().sum())
                        .Plus(TrainingLoop.Rows(embeddings, bn).Squared().sum());
                    // loss + (WeightDecay * 0.5) * l2 / length, the operators' order and types, Scalars held.
                    using var lengthScalar = length.ToScalar();
                    loss = loss.Plus(l2.mul(halfWeightDecay).div(lengthScalar));
                }
                optimizer.ZeroGrad();
                loss.backward();
                optimizer.Step();
                lossSum += loss.item<float>() * length;
            }
            return lossSum / sampleCount;
        }

        (EmbeddingMatrix, EmbeddingMatrix) Export()
        {
            using var _ = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            var final = Propagate(adjacency, embeddings, o.Layers);
            return (TrainingLoop.ToMatrix(final.narrow(0, 0, userCount)),
                TrainingLoop.ToMatrix(final.narrow(0, userCount, split.ItemCount)));
        }

        return TrainingLoop.Run(Kind, data, split, o, RunEpoch, Export, progress, cancellationToken);
    }

    /// <summary>Mean of E, AE, A²E, ..., A^L E.</summary>
    internal static Tensor Propagate(Tensor adjacency, Tensor layer0, int layers)
    {
        var sum = layer0;
        var current = layer0;
        for (var l = 0; l < layers; l++)
        {
            current = adjacency.mm(current);
            sum = sum.Plus(current);
        }
        if (layers == 0) return layer0.clone(); // was layer0 * 1.0: a copy with the same values and gradient
        using var count = (layers + 1).ToScalar();
        return sum.div(count);
    }

    /// <summary>
    /// D^-1/2 A D^-1/2 of the bipartite graph on users then items, as a coalesced sparse COO tensor [N, N].
    /// Every train node has degree >= 1; isolated nodes keep zero rows (their embedding stays layer 0 / (L+1)).
    /// </summary>
    internal static Tensor NormalisedAdjacency(LeaveOneOutSplit split)
    {
        var userCount = split.UserCount;
        var nodeCount = userCount + split.ItemCount;
        var degree = new int[nodeCount];
        var pairs = split.TrainPairs();
        foreach (var (u, i) in pairs)
        {
            degree[u]++;
            degree[userCount + i]++;
        }
        // Entries in row-major order without duplicates (train items are distinct per user), i.e. already in
        // coalesced layout: TorchSharp exposes no coalesce(), and libtorch's sparse kernels expect this order.
        var entries = new List<(long Row, long Col, float Value)>(pairs.Length * 2);
        foreach (var (u, i) in pairs)
        {
            var item = userCount + i;
            var w = (float)(1.0 / Math.Sqrt((double)degree[u] * degree[item]));
            entries.Add((u, item, w));
            entries.Add((item, u, w));
        }
        entries.Sort((a, b) => a.Row != b.Row ? a.Row.CompareTo(b.Row) : a.Col.CompareTo(b.Col));
        using var scope = torch.NewDisposeScope();
        var indices = torch.stack([torch.tensor(entries.Select(e => e.Row).ToArray()), torch.tensor(entries.Select(e => e.Col).ToArray())]);
        var adjacency = torch.sparse_coo_tensor(indices, torch.tensor(entries.Select(e => e.Value).ToArray()), [nodeCount, nodeCount]);
        return adjacency.MoveToOuterDisposeScope();
    }
}
