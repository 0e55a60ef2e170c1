using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Backbones;
using TorchSharp;
using static TorchSharp.torch;

namespace AttrCloak.Learning.Tests.Backbones;

public sealed class BackboneTrainingTests
{
    private static readonly Lazy<(AttrCloak.Core.Data.RecDataset Data, LeaveOneOutSplit Split)> Tiny = new(() =>
    {
        var data = TinyData.TwoGroups();
        return (data, LeaveOneOutSplit.Create(data, 99, seed: 11));
    });

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static BackboneTrainingOptions FastMf => new()
    {
        Dim = 16, Epochs = 40, LearningRate = 0.01, BatchSize = 512, Patience = 4, Seed = 5, Threads = 1,
    };

    private static BackboneTrainingOptions FastLightGcn => BackboneTrainingOptions.DefaultsFor(BackboneKind.LightGcn) with
    {
        Dim = 16, Epochs = 40, LearningRate = 0.01, BatchSize = 512, EvalEvery = 2, Patience = 4, Seed = 5, Threads = 1,
    };

    [Fact]
    public void Mf_learns_the_group_structure_well_above_random()
    {
        var (data, split) = Tiny.Value;
        var model = new MfTrainer(FastMf).Train(data, split, cancellationToken: Ct);
        // Random ranking gives HR@10 = 10/100.
        model.Test.Hr10.ShouldBeGreaterThan(0.35);
        model.Kind.ShouldBe(BackboneKind.Mf);
        model.Users.Rows.ShouldBe(data.UserCount);
        model.Items.Rows.ShouldBe(data.ItemCount);
        model.Dim.ShouldBe(16);
        model.DatasetName.ShouldBe(data.Name);
    }

    [Fact]
    public void Early_stopping_keeps_the_best_validation_epoch()
    {
        var (data, split) = Tiny.Value;
        var reports = new List<TrainingProgress>();
        // A high learning rate overfits quickly, so validation NDCG peaks and then drops.
        var options = FastMf with { LearningRate = 0.05, WeightDecay = 0, Epochs = 60, Patience = 3 };
        var model = new MfTrainer(options).Train(data, split, new SynchronousProgress<TrainingProgress>(reports.Add), Ct);

        reports.Count.ShouldBe(model.EpochsTrained);
        var evaluated = reports.Where(r => r.ValidationNdcg10 is not null).ToList();
        var best = evaluated.MaxBy(r => r.ValidationNdcg10!.Value);
        model.BestEpoch.ShouldBe(best.Epoch);
        model.Validation.Ndcg10.ShouldBe(best.ValidationNdcg10!.Value, 1e-12);
        // The kept vectors are the best epoch's, not the last epoch's.
        UtilityEvaluator.Evaluate(model.Users, model.Items, split.ValidationCandidates).Ndcg10
            .ShouldBe(best.ValidationNdcg10!.Value, 1e-12);
        // Stopped early: exactly Patience evaluations after the best one.
        model.EpochsTrained.ShouldBeLessThan(options.Epochs);
        model.EpochsTrained.ShouldBe(model.BestEpoch + options.Patience * options.EvalEvery);
    }

    [Fact]
    public void LightGcn_learns_and_exposes_propagated_vectors()
    {
        var (data, split) = Tiny.Value;
        var model = new LightGcnTrainer(FastLightGcn).Train(data, split, cancellationToken: Ct);
        model.Test.Hr10.ShouldBeGreaterThan(0.35);
        model.Kind.ShouldBe(BackboneKind.LightGcn);
        model.Users.Rows.ShouldBe(data.UserCount);
        model.Items.Rows.ShouldBe(data.ItemCount);
        // Users/Items score exactly like the reported metrics, i.e. they are the vectors the model ranks with.
        UtilityEvaluator.Evaluate(model.Users, model.Items, split.TestCandidates).ShouldBe(model.Test);
    }

    [Fact]
    public void Training_is_deterministic_for_a_fixed_seed()
    {
        var (data, split) = Tiny.Value;
        var options = FastMf with { Epochs = 5, Patience = 10 };
        var a = new MfTrainer(options).Train(data, split, cancellationToken: Ct);
        var b = new MfTrainer(options).Train(data, split, cancellationToken: Ct);
        a.Users.Values.ShouldBe(b.Users.Values);
        a.Items.Values.ShouldBe(b.Items.Values);
        var c = new MfTrainer(options with { Seed = 6 }).Train(data, split, cancellationToken: Ct);
        c.Users.Values.ShouldNotBe(a.Users.Values);

        var lightGcn = FastLightGcn with { Epochs = 4, Patience = 10 };
        var g1 = new LightGcnTrainer(lightGcn).Train(data, split, cancellationToken: Ct);
        var g2 = new LightGcnTrainer(lightGcn).Train(data, split, cancellationToken: Ct);
        g1.Users.Values.ShouldBe(g2.Users.Values);
        g1.Items.Values.ShouldBe(g2.Items.Values);
    }

    [Fact]
    public void Invalid_options_are_rejected_with_the_setting_named()
    {
        var (data, split) = Tiny.Value;
        Should.Throw<ArgumentException>(() => new MfTrainer(FastMf with { LearningRate = 0 }).Train(data, split, cancellationToken: Ct))
            .Message.ShouldContain("LearningRate");
        Should.Throw<ArgumentException>(() => new MfTrainer(FastMf with { Negatives = 0 }).Train(data, split, cancellationToken: Ct))
            .Message.ShouldContain("Negatives");
    }

    [Fact]
    public void Propagation_is_the_mean_of_the_layer_outputs()
    {
        var (_, split) = Tiny.Value;
        TorchRuntime.EnsureInitialised();
        using var scope = torch.NewDisposeScope();
        var adjacency = LightGcnTrainer.NormalisedAdjacency(split);
        var n = split.UserCount + split.ItemCount;
        var e0 = torch.randn(n, 4, dtype: ScalarType.Float32);
        var dense = adjacency.to_dense();
        var expected = (e0 + dense.mm(e0) + dense.mm(dense.mm(e0)) + dense.mm(dense.mm(dense.mm(e0)))) / 4;
        var actual = LightGcnTrainer.Propagate(adjacency, e0, 3);
        (actual - expected).abs().max().item<float>().ShouldBeLessThan(1e-5f);
        // Symmetric normalisation: A[u, U+i] = 1 / sqrt(deg u * deg i).
        var u = 0;
        var i = split.TrainItems[0][0];
        var degreeU = split.TrainItems[0].Length;
        var degreeI = split.TrainItems.Count(t => t.Contains(i));
        dense[u, split.UserCount + i].item<float>().ShouldBe((float)(1 / Math.Sqrt(degreeU * degreeI)), 1e-6f);
        dense[split.UserCount + i, u].item<float>().ShouldBe(dense[u, split.UserCount + i].item<float>());
    }

    [Fact]
    public void Propagation_gradient_matches_the_dense_computation()
    {
        var (_, split) = Tiny.Value;
        TorchRuntime.EnsureInitialised();
        using var scope = torch.NewDisposeScope();
        var adjacency = LightGcnTrainer.NormalisedAdjacency(split);
        var dense = adjacency.to_dense().to_type(ScalarType.Float64);
        var n = split.UserCount + split.ItemCount;
        var weights = torch.randn(n, 4, dtype: ScalarType.Float64);
        var viaSparse = torch.randn(n, 4, dtype: ScalarType.Float64).requires_grad_(true);
        var viaDense = viaSparse.detach().clone().requires_grad_(true);
        (LightGcnTrainer.Propagate(adjacency.to_type(ScalarType.Float64), viaSparse, 3) * weights).sum().backward();
        var e = viaDense;
        var sum = e;
        for (var l = 0; l < 3; l++) { e = dense.mm(e); sum = sum + e; }
        (sum / 4 * weights).sum().backward();
        (viaSparse.grad! - viaDense.grad!).abs().max().item<double>().ShouldBeLessThan(1e-10);
    }
}

/// <summary>IProgress whose callback runs inline (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
