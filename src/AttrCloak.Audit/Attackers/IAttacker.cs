using AttrCloak.Core.Data;

namespace AttrCloak.Audit.Attackers;

/// <summary>
/// An attribute-inference attacker: learns to predict a user attribute from the user's embedding.
/// Implementations standardise features with the training set's mean and standard deviation, are
/// deterministic for a given seed, and may be called from several threads at once (each call builds its
/// own model).
/// </summary>
public interface IAttacker
{
    /// <summary>Short name used in reports and in <see cref="AttackerCatalog"/> (e.g. "lr", "lgbm+cal").</summary>
    string Name { get; }

    /// <summary>
    /// Trains on the shadow users <paramref name="x"/> (one row each) with labels <paramref name="y"/> in
    /// 0..<paramref name="classCount"/>-1 (no unknowns). Classes missing from <paramref name="y"/> are
    /// allowed and get probability 0 from the model.
    /// </summary>
    IAttackModel Fit(EmbeddingMatrix x, int[] y, int classCount, int seed);
}

/// <summary>A trained attacker. Dispose it to release native memory (TorchSharp tensors).</summary>
public interface IAttackModel : IDisposable
{
    /// <summary>Number of classes K of the probability rows.</summary>
    int ClassCount { get; }

    /// <summary>Class probabilities of each row of <paramref name="x"/>, row-major [n, K], rows summing to 1.</summary>
    float[] PredictProba(EmbeddingMatrix x);
}
