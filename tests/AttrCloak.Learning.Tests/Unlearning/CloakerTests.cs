using AttrCloak.Core.Data;
using AttrCloak.Learning.Backbones;
using AttrCloak.Learning.Unlearning;
using static TorchSharp.torch;

namespace AttrCloak.Learning.Tests.Unlearning;

public sealed class CloakerTests
{
    private const int N = 400, D = 16;

    public CloakerTests() => TorchRuntime.EnsureInitialised();

    private static CloakResult Run(EmbeddingMatrix e, IReadOnlyList<LabeledAttribute> attributes, CloakOptions options,
        IUserRecommendationLoss? rec = null, IProgress<CloakIteration>? p = null) =>
        new Cloaker().Cloak(e, attributes, options, rec, p, TestContext.Current.CancellationToken);

    private static (EmbeddingMatrix Embeddings, LabeledAttribute[] Attributes) Data(double unknownRate = 0) =>
        SyntheticUsers.Users(N, D, [2, 4], shift: 1.5, seed: 42, unknownRate: unknownRate);

    /// <summary>
    /// Toy DD loss: BCE with logits of u . v over a fixed random item matrix and fixed random interactions,
    /// SUMMED over (user, item) pairs as the interface requires. No sampling, so it is deterministic.
    /// </summary>
    private sealed class ToyBceLoss : IUserRecommendationLoss, IDisposable
    {
        private readonly Tensor _items;
        private readonly Tensor _targets;

        public ToyBceLoss(EmbeddingMatrix users, int items, int seed)
        {
            var rng = new Random(seed);
            var v = Enumerable.Range(0, items * users.Cols).Select(_ => (float)(SyntheticUsers.Gaussian(rng) * 0.3)).ToArray();
            _items = tensor(v, [items, users.Cols], float32);
            // Targets that the original users already fit well: positives where the original score is high.
            using var u = tensor(users.Values, [users.Rows, users.Cols], float32);
            using var scores = u.mm(_items.t());
            _targets = scores.gt(0.3).to_type(float32);
        }

        public Tensor Compute(Tensor users) =>
            nn.functional.binary_cross_entropy_with_logits(users.mm(_items.t()), _targets, reduction: nn.Reduction.Sum);

        public void Dispose()
        {
            _items.Dispose();
            _targets.Dispose();
        }
    }

    [Fact]
    public void Data_free_cloaking_removes_the_attribute_signal_and_keeps_embeddings_close()
    {
        var (e, attributes) = Data();
        var before = attributes.Select(a => SyntheticUsers.NearestMeanBalancedAccuracy(e, a)).ToArray();

        var result = Run(e, attributes,
            new CloakOptions { LearningRate = 0.1, MaxIterations = 100, PrivacyTarget = PrivacyTarget.Chance(1.0) });

        result.Mode.ShouldBe(CloakMode.DataFree);
        (result.AlphaMin, result.AlphaMax).ShouldBe((0.1, 1.0));
        result.Trace.ShouldAllBe(r => r.AlphaU >= 0.1 && r.AlphaU <= 1.0);
        result.StopReason.ShouldBe(CloakStopReason.PrivacyTargetReached);
        var chance = result.ChanceMeanShiftPerAttribute.ShouldNotBeNull();
        for (var j = 0; j < attributes.Length; j++) result.Final.MeanShiftPerAttribute[j].ShouldBeLessThanOrEqualTo(chance[j]);
        result.Final.LossAu.ShouldBeLessThan(0.2 * result.Initial.LossAu);
        // Moves users hardly more than subtracting the class-mean offsets would (the least any cloak must move them).
        SyntheticUsers.RelativeChange(e, result.Embeddings).ShouldBeLessThan(1.5 * SyntheticUsers.OracleRelativeChange(e, attributes));

        var after = attributes.Select(a => SyntheticUsers.NearestMeanBalancedAccuracy(result.Embeddings, a)).ToArray();
        before[0].ShouldBeGreaterThan(0.8);  // 2 classes, chance 0.5
        before[1].ShouldBeGreaterThan(0.55); // 4 classes, chance 0.25
        Math.Abs(after[0] - 0.5).ShouldBeLessThan(0.1);
        Math.Abs(after[1] - 0.25).ShouldBeLessThan(0.15);
    }

    [Fact]
    public void Chance_level_of_the_mean_shift_term_matches_its_sampling_theory()
    {
        // For labels independent of the embeddings, E[sum_k w_k 1/2 |mu_k - mu|^2_Sigma^-1] ~ d (K - 1) / 2n.
        var (e, attributes) = SyntheticUsers.Users(N, D, [2, 4], shift: 0.0, seed: 5);
        var result = Run(e, attributes, new CloakOptions { MaxIterations = 0, PrivacyTarget = PrivacyTarget.Chance(1.0) with { ChancePermutations = 8 } });
        var chance = result.ChanceMeanShiftPerAttribute.ShouldNotBeNull();
        chance[0].ShouldBe(D * 1.0 / (2 * N), D * 0.5 / (2 * N));
        chance[1].ShouldBe(D * 3.0 / (2 * N), D * 1.5 / (2 * N));
    }

    [Fact]
    public void Data_dependent_cloaking_respects_unit_bounds_and_lowers_the_attribute_loss()
    {
        var (e, attributes) = Data();
        using var rec = new ToyBceLoss(e, items: 30, seed: 3);
        var result = Run(e, attributes, new CloakOptions { LearningRate = 0.05, MaxIterations = 60 }, rec);

        result.Mode.ShouldBe(CloakMode.DataDependent);
        (result.AlphaMin, result.AlphaMax).ShouldBe((0.0, 1.0));
        result.Trace.ShouldAllBe(r => r.AlphaU >= 0.0 && r.AlphaU <= 1.0);
        result.Final.LossAu.ShouldBeLessThan(0.5 * result.Initial.LossAu);
        result.Trace.ShouldAllBe(r => double.IsFinite(r.LossR) && r.GradNormR > 0);
    }

    [Fact]
    public void Options_can_force_data_free_mode_even_with_a_recommendation_loss()
    {
        var (e, attributes) = Data();
        using var rec = new ToyBceLoss(e, items: 30, seed: 3);
        var result = Run(e, attributes, new CloakOptions { Mode = CloakMode.DataFree, MaxIterations = 2 }, rec);
        result.Mode.ShouldBe(CloakMode.DataFree);
        result.AlphaMin.ShouldBe(0.1);
        result.Initial.LossR.ShouldBe(0.0); // L_Reg at em' = em, not the BCE
        result.Initial.AlphaU.ShouldBe(0.1);
    }

    [Fact]
    public void Iteration_cap_stops_with_max_iterations_and_the_last_row_describes_the_output()
    {
        var (e, attributes) = Data();
        var seen = new List<CloakIteration>();
        var result = Run(e, attributes,
            new CloakOptions { MaxIterations = 3, ConvergenceTolerance = 0 }, p: new SyncProgress(seen.Add));

        result.StopReason.ShouldBe(CloakStopReason.MaxIterations);
        result.Iterations.ShouldBe(3);
        result.Trace.Count.ShouldBe(4);
        seen.Count.ShouldBe(4);
        result.Trace.Select(r => r.Iteration).ShouldBe([0, 1, 2, 3]);

        using var loss = new AttributeUnlearningLoss(attributes, N, new CloakOptions().Ridge);
        using var x = tensor(result.Embeddings.Values, [N, D], float32);
        using var value = loss.Compute(x).Total;
        value.item<double>().ShouldBe(result.Final.LossAu, 1e-9 * result.Final.LossAu);
    }

    [Fact]
    public void Convergence_rule_stops_when_l_all_stops_changing()
    {
        var (e, attributes) = Data();
        var options = new CloakOptions { MaxIterations = 500, ConvergenceTolerance = 1e-3, ConvergencePatience = 3 };
        var result = Run(e, attributes, options);

        result.StopReason.ShouldBe(CloakStopReason.Converged);
        result.Iterations.ShouldBeLessThan(500);
        var tail = result.Trace.TakeLast(4).Select(r => r.LossAll).ToArray();
        for (var i = 1; i < tail.Length; i++)
            (Math.Abs(tail[i] - tail[i - 1]) / Math.Abs(tail[i - 1])).ShouldBeLessThan(1e-3);
    }

    [Fact]
    public void Prose_reading_of_the_clip_never_moves_the_embeddings_and_converges_at_once()
    {
        // Slide prose: DF clip to [0, 0.1]. At em' = em, g_R = 0 so alpha = 0 and the step is g_R = 0 forever.
        var (e, attributes) = Data();
        var result = Run(e, attributes,
            new CloakOptions { AlphaMin = 0.0, AlphaMax = 0.1, ConvergencePatience = 3 });

        result.StopReason.ShouldBe(CloakStopReason.Converged);
        result.Iterations.ShouldBe(3);
        result.Trace.ShouldAllBe(r => r.AlphaU == 0.0);
        result.Embeddings.Values.ShouldBe(e.Values);
    }

    [Fact]
    public void Privacy_target_stops_as_soon_as_every_attribute_has_fallen_by_the_factor()
    {
        var (e, attributes) = Data();
        var result = Run(e, attributes,
            new CloakOptions { LearningRate = 0.1, MaxIterations = 300, ConvergenceTolerance = 0, PrivacyTarget = PrivacyTarget.Reduction(4) });

        result.StopReason.ShouldBe(CloakStopReason.PrivacyTargetReached);
        for (var j = 0; j < attributes.Length; j++)
            result.Final.LossAuPerAttribute[j].ShouldBeLessThanOrEqualTo(result.Initial.LossAuPerAttribute[j] / 4);
        var previous = result.Trace[^2];
        Enumerable.Range(0, attributes.Length)
            .Any(j => previous.LossAuPerAttribute[j] > result.Initial.LossAuPerAttribute[j] / 4).ShouldBeTrue();
    }

    [Fact]
    public void Users_unknown_for_every_protected_attribute_do_not_move_in_data_free_mode()
    {
        var (e, attributes) = Data(unknownRate: 0.3);
        var result = Run(e, attributes, new CloakOptions { MaxIterations = 20 });

        var unknownEverywhere = Enumerable.Range(0, N).Where(u => attributes.All(a => a.Labels[u] == -1)).ToArray();
        var unknownOnce = Enumerable.Range(0, N).Where(u => attributes.Count(a => a.Labels[u] == -1) == 1).ToArray();
        unknownEverywhere.ShouldNotBeEmpty();
        foreach (var u in unknownEverywhere) result.Embeddings.Row(u).ToArray().ShouldBe(e.Row(u).ToArray());
        unknownOnce.Count(u => !result.Embeddings.Row(u).SequenceEqual(e.Row(u))).ShouldBe(unknownOnce.Length);
        result.Final.LossAu.ShouldBeLessThan(result.Initial.LossAu);
    }

    [Fact]
    public void Runs_are_deterministic()
    {
        var (e, attributes) = Data();
        var options = new CloakOptions { MaxIterations = 15 };
        var first = Run(e, attributes, options);
        var second = Run(e, attributes, options);
        second.Embeddings.Values.ShouldBe(first.Embeddings.Values);
        second.Trace.Select(r => r.AlphaU).ShouldBe(first.Trace.Select(r => r.AlphaU));
    }

    [Fact]
    public void Sgd_and_a_single_protected_attribute_are_supported()
    {
        var (e, attributes) = Data();
        var result = Run(e, [attributes[1]],
            new CloakOptions { Optimizer = CloakOptimizer.Sgd, LearningRate = 1.0, MaxIterations = 20, ConvergenceTolerance = 0 });
        result.AttributeNames.ShouldBe(["attr1"]);
        result.Final.LossAuPerAttribute.Count.ShouldBe(1);
        result.Final.LossAu.ShouldBeLessThan(result.Initial.LossAu);
    }

    [Fact]
    public void Invalid_requests_fail_fast_with_clear_messages()
    {
        var (e, attributes) = Data();
        Should.Throw<ArgumentException>(() => Run(e, attributes, new CloakOptions { Mode = CloakMode.DataDependent }))
            .Message.ShouldContain("recommendation loss");
        Should.Throw<ArgumentException>(() => Run(e, [new LabeledAttribute(AttributeSpec.Numbered("x", 2), new int[N - 1])], new CloakOptions()))
            .Message.ShouldContain("labels");
        Should.Throw<ArgumentException>(() => Run(e, attributes, new CloakOptions { Ridge = CovarianceRidge.Absolute(0) }));
        Should.Throw<ArgumentException>(() => Run(e, [], new CloakOptions()));
        Should.Throw<OperationCanceledException>(() => new Cloaker().Cloak(e, attributes, new CloakOptions(), ct: new CancellationToken(true)));
    }

    /// <summary>IProgress that reports inline (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<CloakIteration> report) : IProgress<CloakIteration>
    {
        public void Report(CloakIteration value) => report(value);
    }
}
