using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Backbones;
using TorchSharp;
using static TorchSharp.torch;

namespace AttrCloak.Learning.Tests.Backbones;

public sealed class RecommendationLossTests
{
    private static readonly Lazy<LeaveOneOutSplit> Split = new(() => LeaveOneOutSplit.Create(
        TinyData.TwoGroups(usersPerGroup: 8, blockSize: 20, fillerItems: 110, itemsPerUser: 10), 99, seed: 3));

    private static EmbeddingMatrix RandomMatrix(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        return new EmbeddingMatrix(rows, cols, Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
    }

    /// <summary>The dense score-matrix path (default here) and the per-sample gather path.</summary>
    public static TheoryData<long> Paths => new() { UserRecommendationLoss.DefaultDenseCellLimit, 0L };

    [Theory]
    [MemberData(nameof(Paths))]
    public void Bce_loss_equals_a_direct_summed_computation(long denseCellLimit)
    {
        TorchRuntime.EnsureInitialised();
        var split = Split.Value;
        var items = RandomMatrix(split.ItemCount, 3, 1);
        var users = RandomMatrix(split.UserCount, 3, 2);
        using var loss = new BceRecommendationLoss(items, split, seed: 9, negatives: 4, denseCellLimit);
        using var scope = NewDisposeScope();
        var negatives = loss.SampleNegativeItems().data<long>().ToArray();
        var value = loss.ComputeWith(torch.tensor(users.Values, [users.Rows, users.Cols]), torch.tensor(negatives)).item<float>();

        var pairs = split.TrainPairs();
        negatives.Length.ShouldBe(pairs.Length * 4);
        double expected = 0;
        for (var k = 0; k < pairs.Length; k++)
        {
            var (u, i) = pairs[k];
            expected += -Math.Log(Sigmoid(Dot(users, u, items, i)));
            for (var j = 0; j < 4; j++)
            {
                var n = (int)negatives[k * 4 + j];
                split.TrainItems[u].ShouldNotContain(n); // negatives are never train positives of that user
                expected += -Math.Log(1 - Sigmoid(Dot(users, u, items, n)));
            }
        }
        ((double)value).ShouldBe(expected, Math.Abs(expected) * 1e-5);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Bpr_loss_equals_a_direct_summed_computation(long denseCellLimit)
    {
        TorchRuntime.EnsureInitialised();
        var split = Split.Value;
        var items = RandomMatrix(split.ItemCount, 3, 4);
        var users = RandomMatrix(split.UserCount, 3, 5);
        using var loss = new BprRecommendationLoss(items, split, seed: 9, negatives: 2, denseCellLimit);
        using var scope = NewDisposeScope();
        var negatives = loss.SampleNegativeItems().data<long>().ToArray();
        var value = loss.ComputeWith(torch.tensor(users.Values, [users.Rows, users.Cols]), torch.tensor(negatives)).item<float>();

        var pairs = split.TrainPairs();
        double expected = 0;
        for (var k = 0; k < pairs.Length; k++)
            for (var j = 0; j < 2; j++)
            {
                var (u, i) = pairs[k];
                expected += -Math.Log(Sigmoid(Dot(users, u, items, i) - Dot(users, u, items, (int)negatives[k * 2 + j])));
            }
        ((double)value).ShouldBe(expected, Math.Abs(expected) * 1e-5);
    }

    /// <summary>Both losses on both score paths.</summary>
    public static TheoryData<BackboneKind, long> LossesAndPaths => new()
    {
        { BackboneKind.Mf, UserRecommendationLoss.DefaultDenseCellLimit }, { BackboneKind.Mf, 0L },
        { BackboneKind.LightGcn, UserRecommendationLoss.DefaultDenseCellLimit }, { BackboneKind.LightGcn, 0L },
    };

    [Theory]
    [MemberData(nameof(LossesAndPaths))]
    public void Gradient_wrt_users_matches_finite_differences_in_float64(BackboneKind kind, long denseCellLimit)
    {
        TorchRuntime.EnsureInitialised();
        var split = Split.Value;
        var items = RandomMatrix(split.ItemCount, 3, 6);
        using UserRecommendationLoss loss = kind == BackboneKind.Mf
            ? new BceRecommendationLoss(items, split, seed: 2, negatives: 4, denseCellLimit)
            : new BprRecommendationLoss(items, split, seed: 2, negatives: 2, denseCellLimit);
        using var scope = NewDisposeScope();
        var negatives = loss.SampleNegativeItems();
        var users = torch.tensor(RandomMatrix(split.UserCount, 3, 7).Values.Select(v => (double)v).ToArray(),
            [split.UserCount, 3], requires_grad: true);
        var value = loss.ComputeWith(users, negatives);
        value.dtype.ShouldBe(ScalarType.Float64);
        value.backward();
        var analytic = users.grad!.data<double>().ToArray();

        const double h = 1e-6;
        var baseValues = users.detach().data<double>().ToArray();
        double LossAt(double[] values)
        {
            using var inner = NewDisposeScope();
            return loss.ComputeWith(torch.tensor(values, [split.UserCount, 3]), negatives).item<double>();
        }
        var checkedEntries = 0;
        for (var idx = 0; idx < baseValues.Length; idx += 5)
        {
            var plus = (double[])baseValues.Clone();
            var minus = (double[])baseValues.Clone();
            plus[idx] += h;
            minus[idx] -= h;
            var numeric = (LossAt(plus) - LossAt(minus)) / (2 * h);
            analytic[idx].ShouldBe(numeric, 1e-6 + 1e-6 * Math.Abs(numeric));
            checkedEntries++;
        }
        checkedEntries.ShouldBeGreaterThan(5);
        analytic.Any(g => Math.Abs(g) > 1e-3).ShouldBeTrue();
    }

    [Fact]
    public void Negatives_are_resampled_each_call_and_reproducible_per_seed()
    {
        TorchRuntime.EnsureInitialised();
        var split = Split.Value;
        var items = RandomMatrix(split.ItemCount, 3, 1);
        using var users = torch.tensor(RandomMatrix(split.UserCount, 3, 2).Values, [split.UserCount, 3]);
        using var a = new BceRecommendationLoss(items, split, seed: 4);
        using var b = new BceRecommendationLoss(items, split, seed: 4);
        using var c = new BceRecommendationLoss(items, split, seed: 5);
        var a1 = a.Compute(users).item<float>();
        var a2 = a.Compute(users).item<float>();
        b.Compute(users).item<float>().ShouldBe(a1);
        a2.ShouldNotBe(a1);
        c.Compute(users).item<float>().ShouldNotBe(a1);
    }

    [Fact]
    public void Factory_matches_the_backbone_and_checks_shapes()
    {
        TorchRuntime.EnsureInitialised();
        var split = Split.Value;
        var metrics = new RankingMetrics(0, 0, 0, 0, 0);
        TrainedModel Model(BackboneKind kind) => new(kind, RandomMatrix(split.UserCount, 3, 1), RandomMatrix(split.ItemCount, 3, 2),
            "tiny", 1, 1, metrics, metrics, 0, BackboneTrainingOptions.DefaultsFor(kind));
        using (var mf = RecommendationLosses.For(Model(BackboneKind.Mf), split, 1))
        {
            mf.ShouldBeOfType<BceRecommendationLoss>();
            mf.Negatives.ShouldBe(4);
            using var wrong = torch.zeros(split.UserCount, 4);
            Should.Throw<ArgumentException>(() => mf.Compute(wrong)).Message.ShouldContain("shape");
        }
        using (var gcn = RecommendationLosses.For(Model(BackboneKind.LightGcn), split, 1))
        {
            gcn.ShouldBeOfType<BprRecommendationLoss>();
            gcn.Negatives.ShouldBe(1);
        }
    }

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    private static double Dot(EmbeddingMatrix users, int u, EmbeddingMatrix items, int i)
    {
        double s = 0;
        for (var k = 0; k < users.Cols; k++) s += (double)users.Row(u)[k] * items.Row(i)[k];
        return s;
    }
}

public sealed class RecommendationReductionTests
{
    private static readonly Lazy<LeaveOneOutSplit> Split = new(() => LeaveOneOutSplit.Create(
        TinyData.TwoGroups(usersPerGroup: 8, blockSize: 20, fillerItems: 110, itemsPerUser: 10), 99, seed: 3));

    private static EmbeddingMatrix RandomMatrix(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        return new EmbeddingMatrix(rows, cols, Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
    }

    private static double Dot(EmbeddingMatrix a, int i, EmbeddingMatrix b, int j)
    {
        double s = 0;
        for (var k = 0; k < a.Cols; k++) s += a.Values[i * a.Cols + k] * b.Values[j * b.Cols + k];
        return s;
    }

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    [Fact]
    public void Mean_per_user_bce_is_each_users_mean_over_its_samples_summed_over_users()
    {
        TorchRuntime.EnsureInitialised();
        var split = Split.Value;
        var items = RandomMatrix(split.ItemCount, 3, 1);
        var users = RandomMatrix(split.UserCount, 3, 2);
        using var loss = new BceRecommendationLoss(items, split, seed: 9, negatives: 4) { Reduction = RecommendationReduction.MeanPerUser };
        using var scope = NewDisposeScope();
        var negatives = loss.SampleNegativeItems().data<long>().ToArray();
        var value = loss.ComputeWith(torch.tensor(users.Values, [users.Rows, users.Cols]), torch.tensor(negatives)).item<float>();

        var pairs = split.TrainPairs();
        var perUser = new double[split.UserCount];
        var samples = new int[split.UserCount];
        for (var k = 0; k < pairs.Length; k++)
        {
            var (u, i) = pairs[k];
            perUser[u] += -Math.Log(Sigmoid(Dot(users, u, items, i)));
            samples[u]++;
            for (var j = 0; j < 4; j++)
            {
                perUser[u] += -Math.Log(1 - Sigmoid(Dot(users, u, items, (int)negatives[k * 4 + j])));
                samples[u]++;
            }
        }
        var expected = Enumerable.Range(0, split.UserCount).Where(u => samples[u] > 0).Sum(u => perUser[u] / samples[u]);
        ((double)value).ShouldBe(expected, Math.Abs(expected) * 1e-5);
    }

    [Fact]
    public void Mean_per_user_loss_does_not_grow_with_the_number_of_interactions()
    {
        // The same users with twice the interactions each: the summed loss roughly doubles, the per-user mean does not.
        TorchRuntime.EnsureInitialised();
        var small = LeaveOneOutSplit.Create(TinyData.TwoGroups(usersPerGroup: 8, blockSize: 30, fillerItems: 110, itemsPerUser: 8), 99, seed: 3);
        var large = LeaveOneOutSplit.Create(TinyData.TwoGroups(usersPerGroup: 8, blockSize: 30, fillerItems: 110, itemsPerUser: 16), 99, seed: 3);
        var items = RandomMatrix(small.ItemCount, 3, 1);
        var users = RandomMatrix(small.UserCount, 3, 2);
        double Value(LeaveOneOutSplit split, RecommendationReduction reduction)
        {
            using var loss = new BceRecommendationLoss(items, split, seed: 9, negatives: 4) { Reduction = reduction };
            using var scope = NewDisposeScope();
            return loss.Compute(torch.tensor(users.Values, [users.Rows, users.Cols])).item<float>();
        }
        (Value(large, RecommendationReduction.SumOverSamples) / Value(small, RecommendationReduction.SumOverSamples)).ShouldBeGreaterThan(1.8);
        (Value(large, RecommendationReduction.MeanPerUser) / Value(small, RecommendationReduction.MeanPerUser)).ShouldBeInRange(0.85, 1.15);
    }
}
