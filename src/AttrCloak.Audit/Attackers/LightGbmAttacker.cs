using AttrCloak.Core.Data;
using Microsoft.ML;
using Microsoft.ML.Trainers.LightGbm;

namespace AttrCloak.Audit.Attackers;

/// <summary>Gradient-boosted trees settings; the defaults mirror the paper's XGBoost attacker.</summary>
/// <param name="Trees">Boosting rounds (XGBoost n_estimators = 50).</param>
/// <param name="LearningRate">Shrinkage (XGBoost learning_rate = 0.5).</param>
/// <param name="MaxDepth">Maximum tree depth (XGBoost max_depth = 4).</param>
/// <param name="Leaves">Leaf cap; 2^MaxDepth = 16 lets LightGBM's leaf-wise growth reach a full depth-4 tree, as XGBoost's depth-wise growth does.</param>
/// <param name="MinChildWeight">Minimum hessian sum per leaf (XGBoost min_child_weight default 1).</param>
/// <param name="L2">L2 penalty on leaf values (XGBoost reg_lambda default 1).</param>
/// <param name="MinLeafSamples">Minimum users per leaf. XGBoost has no such limit; 1 leaves the hessian limit in charge.</param>
/// <param name="MaxBins">Histogram bins per feature (XGBoost's hist method and LightGBM both default to 256/255).</param>
/// <param name="Threads">LightGBM threads per fit. 1: the audit parallelises over (attribute, fold) instead.</param>
public sealed record LightGbmSettings(
    int Trees = 50,
    double LearningRate = 0.5,
    int MaxDepth = 4,
    int Leaves = 16,
    double MinChildWeight = 1.0,
    double L2 = 1.0,
    int MinLeafSamples = 1,
    int MaxBins = 255,
    int Threads = 1);

/// <summary>
/// Gradient-boosted trees via ML.NET's LightGBM, our stand-in for the paper's XGBoost attacker (depth 4,
/// 50 trees, learning rate 0.5). Two present classes use LightGBM's binary objective with sigmoid 1 (as
/// XGBoost's binary:logistic); more use the softmax multiclass objective (ML.NET would otherwise pick
/// one-vs-all below 50,000 rows). Deterministic: fixed seed, no bagging or feature sampling, LightGBM's
/// deterministic flag, one thread by default.
/// </summary>
public sealed class LightGbmAttacker(LightGbmSettings? settings = null) : IAttacker
{
    private readonly LightGbmSettings _settings = settings ?? new LightGbmSettings();

    public string Name => "lgbm";

    public LightGbmSettings Settings => _settings;

    public IAttackModel Fit(EmbeddingMatrix x, int[] y, int classCount, int seed)
    {
        var classes = ClassMap.Build(y, classCount, x.Rows);
        if (classes.PresentCount == 1) return new ConstantModel(classCount, classes.Present[0]);

        var standardizer = Standardizer.Fit(x);
        var features = standardizer.Transform(x);
        var ml = new MLContext(seed);
        var s = _settings;
        var booster = new GradientBooster.Options
        {
            MaximumTreeDepth = s.MaxDepth,
            MinimumChildWeight = s.MinChildWeight,
            L2Regularization = s.L2,
            L1Regularization = 0,
            MinimumSplitGain = 0,
            SubsampleFraction = 1,
            FeatureFraction = 1,
        };

        if (classes.PresentCount == 2)
        {
            var data = MlNetData.Binary(ml, features, x.Rows, x.Cols, classes.DenseLabels);
            var trainer = ml.BinaryClassification.Trainers.LightGbm(new LightGbmBinaryTrainer.Options
            {
                LabelColumnName = MlNetData.Label,
                FeatureColumnName = MlNetData.Features,
                NumberOfIterations = s.Trees,
                LearningRate = s.LearningRate,
                NumberOfLeaves = s.Leaves,
                MinimumExampleCountPerLeaf = s.MinLeafSamples,
                MaximumBinCountPerFeature = s.MaxBins,
                ForceColumnWise = true,
                Booster = booster,
                Sigmoid = 1.0,
                EvaluationMetric = LightGbmBinaryTrainer.Options.EvaluateMetricType.None,
                Seed = seed,
                Deterministic = true,
                NumberOfThreads = s.Threads,
                Silent = true,
                Verbose = false,
            });
            return new MlNetAttackModel(standardizer, classes, trainer.Fit(data), ml, binary: true);
        }
        else
        {
            var data = MlNetData.Keyed(ml, features, x.Rows, x.Cols, classes.DenseLabels, classes.PresentCount);
            var trainer = ml.MulticlassClassification.Trainers.LightGbm(new LightGbmMulticlassTrainer.Options
            {
                LabelColumnName = MlNetData.Label,
                FeatureColumnName = MlNetData.Features,
                NumberOfIterations = s.Trees,
                LearningRate = s.LearningRate,
                NumberOfLeaves = s.Leaves,
                MinimumExampleCountPerLeaf = s.MinLeafSamples,
                MaximumBinCountPerFeature = s.MaxBins,
                ForceColumnWise = true,
                Booster = booster,
                UseSoftmax = true,
                EvaluationMetric = LightGbmMulticlassTrainer.Options.EvaluateMetricType.None,
                Seed = seed,
                Deterministic = true,
                NumberOfThreads = s.Threads,
                Silent = true,
                Verbose = false,
            });
            return new MlNetAttackModel(standardizer, classes, trainer.Fit(data), ml, binary: false);
        }
    }
}
