using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Learning.Backbones;

/// <summary>
/// The default backbone: matrix factorisation, score = user·item, binary cross-entropy on each train positive
/// and <see cref="BackboneTrainingOptions.Negatives"/> negatives sampled uniformly from the user's
/// non-interacted items (resampled every epoch), Adam on shuffled mini-batches, L2 on the touched rows.
/// Nothing here tries to hide private attributes: the embeddings must leak them as the paper's do.
/// </summary>
public sealed class MfTrainer(BackboneTrainingOptions options) : IBackboneTrainer
{
    public BackboneKind Kind => BackboneKind.Mf;
    public BackboneTrainingOptions Options { get; } = options ?? throw new ArgumentNullException(nameof(options));

    public TrainedModel Train(RecDataset data, LeaveOneOutSplit split, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        TrainingLoop.CheckInputs(data, split, Options);
        using var threads = TrainingLoop.UseThreads(Options);
        var o = Options;
        // Two independent streams: torch's for initialisation and shuffling, C#'s for negative sampling.
        using var generator = new torch.Generator((ulong)o.Seed, torch.CPU);
        var rng = new Random(o.Seed);
        var sampler = new NegativeSampler(split);
        var pairs = split.TrainPairs();
        var perPositive = 1 + o.Negatives;
        var sampleCount = pairs.Length * perPositive;

        // Scalars.Normal and TorchAdam are torch.normal and torch.optim.Adam without their temporary Scalars
        // (see Scalars): same values, safe while other threads allocate.
        using var users = torch.nn.Parameter(Scalars.Normal(0, o.InitStd, [split.UserCount, o.Dim], generator));
        using var items = torch.nn.Parameter(Scalars.Normal(0, o.InitStd, [split.ItemCount, o.Dim], generator));
        using var optimizer = new TorchAdam([users, items], o.LearningRate);
        using var weightDecay = o.WeightDecay.ToScalar();

        // Labels never change: each positive is followed by its negatives.
        var labelValues = new float[sampleCount];
        for (var k = 0; k < sampleCount; k += perPositive) labelValues[k] = 1f;
        using var labels = torch.tensor(labelValues);
        var userIdx = new long[sampleCount];
        var itemIdx = new long[sampleCount];

        double RunEpoch(int epoch)
        {
            for (var p = 0; p < pairs.Length; p++)
            {
                var (u, i) = pairs[p];
                var at = p * perPositive;
                userIdx[at] = u;
                itemIdx[at] = i;
                for (var n = 1; n < perPositive; n++)
                {
                    userIdx[at + n] = u;
                    itemIdx[at + n] = sampler.Sample(u, rng);
                }
            }
            using var epochScope = torch.NewDisposeScope();
            var order = torch.randperm(sampleCount, generator: generator);
            var allUsers = torch.tensor(userIdx).index_select(0, order);
            var allItems = torch.tensor(itemIdx).index_select(0, order);
            var allLabels = labels.index_select(0, order);
            double lossSum = 0;
            for (var start = 0; start < sampleCount; start += o.BatchSize)
            {
                using var step = torch.NewDisposeScope();
                var length = Math.Min(o.BatchSize, sampleCount - start);
                var bu = TrainingLoop.Rows(users, allUsers.narrow(0, start, length));
                var bi = TrainingLoop.Rows(items, allItems.narrow(0, start, length));
                var logits = (bu * bi).sum(1);
                var loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, allLabels.narrow(0, start, length));
                if (o.WeightDecay > 0)
                {
                    // loss + WeightDecay * (|bu|^2 + |bi|^2) / length, with every Scalar held (see Scalars).
                    using var lengthScalar = length.ToScalar();
                    loss = loss.Plus(bu.Squared().sum().Plus(bi.Squared().sum()).mul(weightDecay).div(lengthScalar));
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
            return (TrainingLoop.ToMatrix(users), TrainingLoop.ToMatrix(items));
        }

        return TrainingLoop.Run(Kind, data, split, o, RunEpoch, Export, progress, cancellationToken);
    }
}
