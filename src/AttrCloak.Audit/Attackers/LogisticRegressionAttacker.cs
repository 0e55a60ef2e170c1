using AttrCloak.Core.Data;
using Microsoft.ML;
using Microsoft.ML.Trainers;

namespace AttrCloak.Audit.Attackers;

/// <summary>
/// Multinomial logistic regression (ML.NET L-BFGS maximum entropy) on standardised embeddings: the floor
/// of the audit and, on the reference run, the strongest gender attacker. ML.NET minimises
/// (sum of log-losses + L2/2 * ||W||^2) / n with unpenalised biases, so <paramref name="l2"/> = 1 is
/// sklearn's LogisticRegression default C = 1 (multinomial). Single-threaded, hence deterministic.
/// </summary>
public sealed class LogisticRegressionAttacker(float l2 = 1f) : IAttacker
{
    public string Name => "lr";

    public float L2 => l2;

    public IAttackModel Fit(EmbeddingMatrix x, int[] y, int classCount, int seed)
    {
        var classes = ClassMap.Build(y, classCount, x.Rows);
        if (classes.PresentCount == 1) return new ConstantModel(classCount, classes.Present[0]);

        var standardizer = Standardizer.Fit(x);
        var features = standardizer.Transform(x);
        var ml = new MLContext(seed);
        var data = MlNetData.Keyed(ml, features, x.Rows, x.Cols, classes.DenseLabels, classes.PresentCount);
        var trainer = ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = MlNetData.Label,
            FeatureColumnName = MlNetData.Features,
            L2Regularization = l2,
            L1Regularization = 0,
            NumberOfThreads = 1,
        });
        return new MlNetAttackModel(standardizer, classes, trainer.Fit(data), ml, binary: false);
    }
}
