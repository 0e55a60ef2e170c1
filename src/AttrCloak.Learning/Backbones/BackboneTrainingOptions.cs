namespace AttrCloak.Learning.Backbones;

/// <summary>The recommendation backbones whose user vectors AttrCloak cloaks.</summary>
public enum BackboneKind
{
    /// <summary>Matrix factorisation: score = user·item, trained with BCE on sampled negatives.</summary>
    Mf,

    /// <summary>LightGCN (He et al. 2020): score = propagated user · propagated item, trained with BPR.</summary>
    LightGcn,
}

/// <summary>
/// Hyper-parameters of backbone training. Defaults suit MF; <see cref="DefaultsFor"/> gives each backbone's.
/// Early stopping watches validation NDCG@10 every <see cref="EvalEvery"/> epochs and stops after
/// <see cref="Patience"/> evaluations without improvement; the best evaluation's vectors are kept.
/// </summary>
public sealed record BackboneTrainingOptions
{
    public int Dim { get; init; } = 64;

    /// <summary>Maximum number of epochs (early stopping usually ends sooner).</summary>
    public int Epochs { get; init; } = 100;

    public double LearningRate { get; init; } = 0.005;
    public int BatchSize { get; init; } = 2048;

    /// <summary>
    /// L2 coefficient on the embeddings a mini-batch touches (for LightGCN the layer-0 ones), added to the
    /// mean batch loss as WeightDecay * sum of squared norms / batch size.
    /// </summary>
    public double WeightDecay { get; init; } = 3e-3;

    /// <summary>Sampled negatives per positive (BCE for MF; BPR pairs per positive for LightGCN).</summary>
    public int Negatives { get; init; } = 4;

    /// <summary>Evaluations (not epochs) without a validation NDCG@10 improvement before stopping.</summary>
    public int Patience { get; init; } = 5;

    public int EvalEvery { get; init; } = 1;

    /// <summary>Propagation layers; LightGCN only.</summary>
    public int Layers { get; init; } = 3;

    /// <summary>Standard deviation of the normal initialisation of all embeddings.</summary>
    public double InitStd { get; init; } = 0.1;

    public int Seed { get; init; } = 2025;

    /// <summary>
    /// Torch intra-op threads during training (restored afterwards); null keeps the process-wide setting of
    /// <see cref="TorchRuntime"/> (1 unless ATTRCLOAK_TORCH_THREADS says otherwise). More threads can be far slower
    /// on a busy machine (OpenMP workers spin-waiting for the cores; docs/performance.md).
    /// </summary>
    public int? Threads { get; init; }

    /// <summary>The defaults measured for each backbone (see the ML-100K figures in the backbone tests).</summary>
    public static BackboneTrainingOptions DefaultsFor(BackboneKind kind) => kind switch
    {
        BackboneKind.Mf => new BackboneTrainingOptions(),
        BackboneKind.LightGcn => new BackboneTrainingOptions
        {
            // Large batches: every step propagates the whole graph, so fewer, bigger steps train much faster.
            // ML-100K (1 thread): batch 2048 / lr 0.005 was at validation NDCG@10 0.385 after 40 epochs (~2 min);
            // batch 8192 / lr 0.01 peaked at 0.411 (epoch 120, ~100 s); batch 16384 / lr 0.02 was no better.
            Epochs = 400, LearningRate = 0.01, BatchSize = 8192, WeightDecay = 1e-4, Negatives = 1,
            Patience = 5, EvalEvery = 5, Layers = 3,
        },
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown backbone"),
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok) throw new ArgumentException($"invalid backbone training options: {message}");
        }
        Require(Dim > 0, $"Dim must be positive (got {Dim})");
        Require(Epochs > 0, $"Epochs must be positive (got {Epochs})");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), $"LearningRate must be a positive number (got {LearningRate})");
        Require(BatchSize > 0, $"BatchSize must be positive (got {BatchSize})");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), $"WeightDecay must be >= 0 (got {WeightDecay})");
        Require(Negatives > 0, $"Negatives must be positive (got {Negatives})");
        Require(Patience > 0, $"Patience must be positive (got {Patience})");
        Require(EvalEvery > 0, $"EvalEvery must be positive (got {EvalEvery})");
        Require(Layers >= 0, $"Layers must be >= 0 (got {Layers})");
        Require(InitStd > 0 && double.IsFinite(InitStd), $"InitStd must be positive (got {InitStd})");
        Require(Threads is null or > 0, $"Threads must be positive when set (got {Threads})");
    }
}

/// <summary>
/// One training report: <see cref="ValidationNdcg10"/> is null on epochs without an evaluation.
/// <see cref="Loss"/> is the epoch's mean mini-batch loss (including the L2 term).
/// </summary>
public readonly record struct TrainingProgress(int Epoch, double Loss, double? ValidationNdcg10, TimeSpan Elapsed);
