using System.Diagnostics;
using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Backbones;
using TorchSharp;
using static TorchSharp.torch;

namespace AttrCloak.Learning.Tests.Backbones;

/// <summary>
/// Real-data figures for the backbones (not part of the default run): needs ML-100K (see <see cref="TestData"/>)
/// and ATTRCLOAK_SLOW=1. Prints utility, timings and a quick linear gender probe (the embeddings must leak).
/// </summary>
public sealed class MovieLens100KBackboneTests
{
    private static (RecDataset Data, LeaveOneOutSplit Split) Load()
    {
        SlowTests.Require("slow real-data test (trains MF and LightGCN on ML-100K)");
        var data = MovieLens100KLoader.Load(TestData.RequireMovieLens100K());
        return (data, LeaveOneOutSplit.Create(data, 99, seed: 2025));
    }

    /// <summary>Shown with the runner's live output (e.g. the test executable's -showLiveOutput).</summary>
    private static void Log(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    [Theory]
    [InlineData(BackboneKind.Mf)]
    [InlineData(BackboneKind.LightGcn)]
    public void Backbone_reaches_reference_utility_on_ml100k(BackboneKind kind)
    {
        var (data, split) = Load();
        var options = BackboneTrainingOptions.DefaultsFor(kind);
        var trainer = BackboneTrainers.Create(kind, options);
        var model = trainer.Train(data, split,
            new SynchronousProgress<TrainingProgress>(p =>
            {
                if (p.ValidationNdcg10 is { } v) Log($"  epoch {p.Epoch,3} loss {p.Loss:F4} val NDCG@10 {v:F4} {p.Elapsed.TotalSeconds:F1}s");
            }),
            TestContext.Current.CancellationToken);
        Log($"{kind} ml-100k: test HR@10 {model.Test.Hr10:F4} NDCG@10 {model.Test.Ndcg10:F4} (HR@5 {model.Test.Hr5:F4} NDCG@5 {model.Test.Ndcg5:F4}); " +
            $"val NDCG@10 {model.Validation.Ndcg10:F4}; best epoch {model.BestEpoch}/{model.EpochsTrained}; {model.TrainingSeconds:F1} s");
        Log($"  linear gender probe balanced accuracy: {GenderProbe(data, model.Users):F3} (chance 0.5)");

        TimeRetentionLoss(model, split);

        // Loose floors: the reference evaluation's MF reached HR@10 0.584 / NDCG@10 0.313.
        model.Test.Hr10.ShouldBeGreaterThan(0.5);
        model.Test.Ndcg10.ShouldBeGreaterThan(0.27);
    }

    private static void TimeRetentionLoss(TrainedModel model, LeaveOneOutSplit split)
    {
        using var loss = RecommendationLosses.For(model, split, seed: 1);
        using var users = torch.tensor(model.Users.Values, [model.Users.Rows, model.Users.Cols], requires_grad: true);
        loss.Compute(users).backward(); // warm-up
        var clock = Stopwatch.StartNew();
        const int calls = 10;
        for (var c = 0; c < calls; c++)
        {
            using var scope = NewDisposeScope();
            users.grad?.zero_();
            loss.Compute(users).backward();
        }
        Log($"  retention loss ({loss.PositiveCount} positives x (1+{loss.Negatives})): {clock.Elapsed.TotalMilliseconds / calls:F1} ms per forward+backward ({torch.get_num_threads()} thread(s))");
    }

    /// <summary>
    /// A rough leakage check, not the audit: L2 logistic regression on standardised user vectors, trained on
    /// even-indexed users and scored on odd ones, balanced accuracy with class-weighted loss.
    /// </summary>
    private static double GenderProbe(RecDataset data, EmbeddingMatrix users)
    {
        var labels = data.Labels[data.AttributeIndex("gender")];
        var train = Enumerable.Range(0, users.Rows).Where(u => u % 2 == 0 && labels[u] >= 0).ToArray();
        var test = Enumerable.Range(0, users.Rows).Where(u => u % 2 == 1 && labels[u] >= 0).ToArray();
        using var scope = NewDisposeScope();
        var x = torch.tensor(users.Values, [users.Rows, users.Cols]).to_type(ScalarType.Float64);
        var xTrain = x.index_select(0, torch.tensor(train.Select(u => (long)u).ToArray()));
        var mean = xTrain.mean([0]);
        var std = xTrain.std(0) + 1e-8;
        xTrain = (xTrain - mean) / std;
        var xTest = (x.index_select(0, torch.tensor(test.Select(u => (long)u).ToArray())) - mean) / std;
        var yTrain = torch.tensor(train.Select(u => (double)labels[u]).ToArray());
        var positiveRate = yTrain.mean().item<double>();
        var weights = torch.where(yTrain.eq(1), 0.5 / positiveRate, 0.5 / (1 - positiveRate));
        var w = torch.nn.Parameter(torch.zeros(users.Cols, dtype: ScalarType.Float64));
        var b = torch.nn.Parameter(torch.zeros(1, dtype: ScalarType.Float64));
        using var optimizer = torch.optim.LBFGS([w, b], lr: 1, max_iter: 200);
        optimizer.step(() =>
        {
            optimizer.zero_grad();
            var logits = xTrain.mv(w) + b;
            var l = (weights * torch.nn.functional.binary_cross_entropy_with_logits(logits, yTrain, reduction: nn.Reduction.None)).mean()
                    + 1e-3 * w.square().sum();
            l.backward();
            return l;
        });
        var predicted = (xTest.mv(w) + b).gt(0).data<bool>().ToArray();
        double[] correct = [0, 0], total = [0, 0];
        for (var k = 0; k < test.Length; k++)
        {
            var y = labels[test[k]];
            total[y]++;
            if (predicted[k] == (y == 1)) correct[y]++;
        }
        return (correct[0] / total[0] + correct[1] / total[1]) / 2;
    }
}
