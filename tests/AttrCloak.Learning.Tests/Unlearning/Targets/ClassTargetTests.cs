using TorchSharp;
using AttrCloak.Core.Evaluation;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Learning.Tests.Unlearning;

public sealed class ClassTargetTests
{
    private static double[] ClassMean(EmbeddingMatrix x, int[] labels, int c)
    {
        var d = x.Cols;
        var sum = new double[d];
        var n = 0;
        for (var u = 0; u < x.Rows; u++)
        {
            if (labels[u] != c) continue;
            n++;
            for (var i = 0; i < d; i++) sum[i] += x.Values[u * d + i];
        }
        return sum.Select(v => v / n).ToArray();
    }

    private static double[] GlobalMean(EmbeddingMatrix x, int[] labels)
    {
        var d = x.Cols;
        var sum = new double[d];
        var n = 0;
        for (var u = 0; u < x.Rows; u++)
        {
            if (labels[u] < 0) continue;
            n++;
            for (var i = 0; i < d; i++) sum[i] += x.Values[u * d + i];
        }
        return sum.Select(v => v / n).ToArray();
    }

    [Fact]
    public void A_class_keep_floor_of_one_leaves_that_class_where_it_is_and_the_others_are_equalised_as_before()
    {
        TorchRuntime.EnsureInitialised();
        var (x, attributes) = SyntheticUsers.Users(d: 6, classSizes: [[30, 70], [10, 25, 40, 25]], shift: 2.0, seed: 3);
        var options = CloakPresets.DataFree;
        var ct = TestContext.Current.CancellationToken;
        var free = new Cloaker().Cloak(x, attributes, options, ct: ct);
        // Every class of every attribute keeps its whole offset: nothing to move.
        var all = options with { ClassKeepFloors = attributes.ToDictionary(a => a.Attribute.Name, a => Enumerable.Repeat(1.0, a.ClassCount).ToArray()) };
        var kept = new Cloaker().Cloak(x, attributes, all, ct: ct);
        for (var i = 0; i < x.Values.Length; i++) kept.Embeddings.Values[i].ShouldBe(x.Values[i], 1e-4);

        // Only the smallest class of the second attribute keeps its offset: its mean offset is the original one, the
        // other classes' are equalised (their offsets shrink as without the floor).
        var one = options with { ClassKeepFloors = new Dictionary<string, double[]> { [attributes[1].Attribute.Name] = [1, 0, 0, 0] } };
        var held = new Cloaker().Cloak(x, attributes, one, ct: ct).Embeddings;
        double Offset(EmbeddingMatrix m, int c) =>
            Math.Sqrt(ClassMean(m, attributes[1].Labels, c).Zip(GlobalMean(m, attributes[1].Labels), (a, b) => (a - b) * (a - b)).Sum());
        // (Its offset from the new global mean is (1 - its share 0.1) of the original: the others' offsets went to ~0.)
        Offset(held, 0).ShouldBeGreaterThan(0.8 * Offset(x, 0), "the held class keeps its offset");
        Offset(free.Embeddings, 0).ShouldBeLessThan(0.5 * Offset(x, 0), "without the floor the class is equalised");
        // The others as without the floor (noise-matched draws ~0.3-0.5 here, against ~1 originally), up to the held
        // class's share of the centring (0.1 of its offset).
        for (var c = 1; c < 4; c++) Math.Abs(Offset(held, c) - Offset(free.Embeddings, c)).ShouldBeLessThan(0.15 * Offset(x, 0) + 0.05);
        Should.Throw<ArgumentException>(() => new Cloaker().Cloak(x, attributes, options with { ClassKeepFloors = new Dictionary<string, double[]> { ["x"] = [1.5] } }, ct: ct));
    }

    [Fact]
    public void Covariance_targets_of_classes_smaller_than_the_dimension_stay_valid_gaussians_and_the_cloak_runs()
    {
        TorchRuntime.EnsureInitialised();
        // 94 users at d = 64, classes of 3-30 users: each class covariance has rank n_k - 1 < d, so its noise-matched
        // draw has eigenvalues near -W, and Sigma_g + C_k was indefinite (the KL's Cholesky threw "the leading minor of
        // order 61 is not positive-definite" on a 94-user model at d = 64, covariance strength 1).
        var (x, attributes) = SyntheticUsers.Users(d: 64, classSizes: [[40, 54], [3, 10, 25, 30, 16, 6, 4]], shift: 1.0, seed: 5);
        var options = CloakPresets.DataFree with { CovarianceStrength = 1, MaxIterations = 30 };
        var result = new Cloaker().Cloak(x, attributes, options, ct: TestContext.Current.CancellationToken);
        result.Embeddings.Values.ShouldAllBe(v => float.IsFinite(v));
        result.Embeddings.Values.Zip(x.Values, (a, b) => Math.Abs(a - b)).Max().ShouldBeGreaterThan(1e-3f, "the cloak moved the users");

        // The lift itself: every target covariance positive semi-definite, and a definite target left exactly as it was.
        var age = attributes[1];
        using var layout = AttributeLayout.Create(age.Labels, age.ClassCount);
        using var users = torch.tensor(x.Values, [x.Rows, x.Cols]);
        var fit = GaussianFit.Fit(users, layout);
        using var targets = ClassTargets.Build(x, age, EqualisationTarget.NoiseMatched, strength: 1, seed: 7, covarianceStrength: 1);
        using var unlifted = fit.GlobalCovariance.Plus(targets.CovarianceOffsets!);
        torch.linalg.eigvalsh(unlifted).min().item<double>().ShouldBeLessThan(0, "the case this test is about: an indefinite target");
        using var lifted = targets.TargetCovariances(fit.GlobalCovariance);
        torch.linalg.eigvalsh(lifted).min().item<double>().ShouldBeGreaterThan(-1e-9);
        var (small, smallAttributes) = SyntheticUsers.Users(d: 8, classSizes: [[40, 54]], shift: 1.0, seed: 5);
        using var definite = ClassTargets.Build(small, smallAttributes[0], EqualisationTarget.NoiseMatched, strength: 0.5, seed: 7, covarianceStrength: 0.5);
        using var smallLayout = AttributeLayout.Create(smallAttributes[0].Labels, 2);
        using var smallUsers = torch.tensor(small.Values, [small.Rows, small.Cols]);
        var smallFit = GaussianFit.Fit(smallUsers, smallLayout);
        using var plain = smallFit.GlobalCovariance.Plus(definite.CovarianceOffsets!);
        using var kept = definite.TargetCovariances(smallFit.GlobalCovariance);
        torch.linalg.eigvalsh(plain).min().item<double>().ShouldBeGreaterThan(0, "classes of 40-54 users at d = 8");
        kept.sub(plain).abs().max().item<double>().ShouldBe(0);
    }

    [Fact]
    public void Exact_projection_puts_every_class_mean_on_global_plus_offset_and_keeps_the_global_mean()
    {
        TorchRuntime.EnsureInitialised();
        var (x, attributes) = SyntheticUsers.Users(d: 6, classSizes: [[30, 70], [10, 25, 40, 25]], shift: 2.0, seed: 3);
        var targets = attributes.Select((a, j) => ClassTargets.Build(x, a, EqualisationTarget.NoiseMatched, 1.0, seed: 11 + j, covarianceStrength: 0)).ToArray();
        var before = GlobalMean(x, attributes[0].Labels);
        var y = x.Clone();
        var miss = MeanProjection.Apply(y, attributes, targets);
        miss.ShouldBeLessThan(1e-4);
        var after = GlobalMean(y, attributes[0].Labels);
        for (var i = 0; i < 6; i++) after[i].ShouldBe(before[i], 1e-4);
        for (var j = 0; j < attributes.Length; j++)
        {
            var global = GlobalMean(y, attributes[j].Labels);
            for (var c = 0; c < attributes[j].ClassCount; c++)
            {
                var mean = ClassMean(y, attributes[j].Labels, c);
                for (var i = 0; i < 6; i++) (mean[i] - global[i]).ShouldBe(targets[j].MeanOffsetValues![c * 6 + i], 2e-4);
            }
            targets[j].Dispose();
        }
    }

    [Fact]
    public void Strength_zero_keeps_the_offsets_and_strength_one_removes_them_all_but_the_noise()
    {
        TorchRuntime.EnsureInitialised();
        var (x, attributes) = SyntheticUsers.Users(d: 8, classSizes: [[400, 600]], shift: 3.0, seed: 5);
        var labels = attributes[0].Labels;
        var delta = ClassMean(x, labels, 0).Zip(GlobalMean(x, labels), (a, b) => a - b).ToArray();
        using var none = ClassTargets.Build(x, attributes[0], EqualisationTarget.NoiseMatched, 0.0, seed: 1, covarianceStrength: 0);
        for (var i = 0; i < 8; i++) none.MeanOffsetValues![i].ShouldBe(delta[i], 1e-9);
        using var full = ClassTargets.Build(x, attributes[0], EqualisationTarget.NoiseMatched, 1.0, seed: 1, covarianceStrength: 0);
        // What is left is a draw of the sampling error: about sqrt(d (1/n_k - 1/n)) in Mahalanobis length, far below the signal.
        var left = Math.Sqrt(full.MeanOffsetValues!.Take(8).Sum(v => v * v));
        var signal = Math.Sqrt(delta.Sum(v => v * v));
        left.ShouldBeLessThan(signal / 5);
        left.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void Noise_matched_offsets_have_the_spread_of_real_class_offsets_without_signal()
    {
        // Over many draws, the mean squared length of the target offset of a class of n_k users (no signal, unit
        // within-class covariance) must be about d (1/n_k - 1/n): what an uncloaked class offset has.
        TorchRuntime.EnsureInitialised();
        var (x, attributes) = SyntheticUsers.Users(d: 10, classSizes: [[50, 150]], shift: 0.0, seed: 9);
        double sum = 0;
        const int draws = 200;
        for (var s = 0; s < draws; s++)
        {
            using var t = ClassTargets.Build(x, attributes[0], EqualisationTarget.NoiseMatched, 1.0, seed: s, covarianceStrength: 0);
            sum += t.MeanOffsetValues!.Take(10).Sum(v => v * v);
        }
        (sum / draws).ShouldBe(10 * (1.0 / 50 - 1.0 / 200), 10 * (1.0 / 50 - 1.0 / 200) * 0.25);
    }

    [Fact]
    public void James_stein_weights_leave_a_class_without_signal_alone()
    {
        TorchRuntime.EnsureInitialised();
        // Attribute 0 carries no signal (shift applies to a random labelling per attribute, so use shift 0 for one).
        var (noise, noAttributes) = SyntheticUsers.Users(d: 16, classSizes: [[300, 300]], shift: 0.0, seed: 2);
        using var t = ClassTargets.Build(noise, noAttributes[0], EqualisationTarget.Shrunk, 0.5, seed: 1, covarianceStrength: 0);
        var labels = noAttributes[0].Labels;
        var delta = ClassMean(noise, labels, 0).Zip(GlobalMean(noise, labels), (a, b) => a - b).ToArray();
        // Sampling noise only: the offset stays (almost) where it is.
        var kept = t.MeanOffsetValues!.Take(16).Zip(delta, (o, dl) => o * dl).Sum() / delta.Sum(v => v * v);
        kept.ShouldBeGreaterThan(0.5);
    }
}

public sealed class TargetedCloakerTests
{
    /// <summary>
    /// A probe that reads attribute j's leak as leak_j x (class-mean separation now / separation of the original):
    /// what a linear attacker sees, without training one.
    /// </summary>
    private sealed class SeparationProbe(EmbeddingMatrix original, LabeledAttribute[] attributes, double[] leak) : IPrivacyProbe
    {
        private readonly double[] _reference = attributes.Select(a => Separation(original, a)).ToArray();

        public PrivacyReading Measure(EmbeddingMatrix embeddings, CancellationToken ct) => new(
            attributes.Select((a, j) => leak[j] * Separation(embeddings, a) / _reference[j]).ToArray(),
            attributes.Select(_ => 0.0).ToArray(), attributes.Select(_ => "separation").ToArray());

        private static double Separation(EmbeddingMatrix x, LabeledAttribute a)
        {
            var d = x.Cols;
            var global = new double[d];
            var sums = new double[a.ClassCount, d];
            var counts = new int[a.ClassCount];
            for (var u = 0; u < x.Rows; u++)
            {
                counts[a.Labels[u]]++;
                for (var i = 0; i < d; i++) { sums[a.Labels[u], i] += x.Values[u * d + i]; global[i] += x.Values[u * d + i] / x.Rows; }
            }
            double total = 0;
            for (var c = 0; c < a.ClassCount; c++)
                for (var i = 0; i < d; i++) total += counts[c] * Math.Pow(sums[c, i] / counts[c] - global[i], 2);
            return Math.Sqrt(total / x.Rows);
        }
    }

    /// <summary>Utility 1 - slope x mean squared displacement from the original, reported with a fixed standard error.</summary>
    private sealed class DisplacementUtility(EmbeddingMatrix original, double slope, double standardError = 0) : IUtilityProbe
    {
        public string Name => "displacement";

        public PairedRatio Measure(EmbeddingMatrix cloaked) => new(Ratio(cloaked), standardError, original.Rows);

        public double Ratio(EmbeddingMatrix cloaked) =>
            1 - slope * original.Values.Zip(cloaked.Values, (a, b) => (double)(a - b) * (a - b)).Sum() / original.Rows;
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(2.0)]
    public void The_floor_holds_with_the_requested_number_of_standard_errors_to_spare(double standardErrors)
    {
        TorchRuntime.EnsureInitialised();
        var (x, attributes) = SyntheticUsers.Users(d: 4, classSizes: [[200, 200]], shift: 2.0, seed: 1);
        var utility = new DisplacementUtility(x, slope: 1.0, standardError: 0.02);
        var result = new TargetedCloaker().Cloak(x, attributes, new CloakOptions { MaxIterations = 5 },
            new PrivacyGoal(0.03, UtilityFloor: 0.9) { UtilityStandardErrors = standardErrors }, new SeparationProbe(x, attributes, [0.5]), utility,
            ct: TestContext.Current.CancellationToken);
        result.Outcome.ShouldBe(TargetOutcome.NotMetAboveFloor);
        var kept = utility.Ratio(result.Embeddings);
        kept.ShouldBeGreaterThanOrEqualTo(0.9 + standardErrors * 0.02);
        // Not more careful than asked: a candidate under floor + margin was tried and refused.
        result.Steps.Where(s => !s.AboveFloor).ShouldContain(s => s.UtilityRatio < 0.9 + standardErrors * 0.02);
    }

    [Fact]
    public void Raise_moves_faster_for_larger_leaks_and_rounds_up_near_one()
    {
        var small = TargetedCloaker.Raise(AttributeStrength.None, reading: 0.04, threshold: 0.03);
        var large = TargetedCloaker.Raise(AttributeStrength.None, reading: 0.30, threshold: 0.03);
        large.Mean.ShouldBeGreaterThan(small.Mean);
        small.Mean.ShouldBe(0.3, 1e-9); // (1 - t) x 0.7
        large.Mean.ShouldBe(0.6, 1e-9); // (1 - t) x 0.4
        TargetedCloaker.Raise(new AttributeStrength(0.96, 0), 0.3, 0.03).Mean.ShouldBe(1);
        // The covariance stage creates leakage on the noise control: the loop never raises it.
        TargetedCloaker.Raise(new AttributeStrength(0.5, 0), 0.3, 0.03).Covariance.ShouldBe(0);
        TargetedCloaker.Raise(new AttributeStrength(1, 0), 0.3, 0.03).ShouldBe(new AttributeStrength(1, 0));
    }

    [Fact]
    public void Loop_stops_once_every_attribute_is_within_the_target_and_never_moves_one_that_does_not_leak()
    {
        TorchRuntime.EnsureInitialised();
        var (x, attributes) = SyntheticUsers.Users(d: 4, classSizes: [[200, 200], [200, 200]], shift: 2.0, seed: 1);
        var probe = new SeparationProbe(x, attributes, [0.2, 0.01]);
        var result = new TargetedCloaker().Cloak(x, attributes, new CloakOptions { MaxIterations = 5 }, new PrivacyGoal(0.03), probe, ct: TestContext.Current.CancellationToken);
        result.Outcome.ShouldBe(TargetOutcome.Met, string.Join(Environment.NewLine, result.Steps.Select(st => $"{string.Join(",", st.Strengths)} -> {string.Join(",", st.WorstAbsAdvantage)}")) + " strata " + string.Join(", ", result.Cloak?.Strata ?? []));
        result.Strengths[1].ShouldBe(AttributeStrength.None);
        result.Strengths[0].Mean.ShouldBeGreaterThan(0.5);
        result.Steps[0].Strengths.ShouldAllBe(st => st == AttributeStrength.None);
        result.Steps[^1].WorstAbsAdvantage[0].ShouldBeLessThanOrEqualTo(0.03);
    }

    [Fact]
    public void An_attribute_that_still_leaks_at_full_strength_ends_the_loop_instead_of_being_audited_again()
    {
        // A leak of 0.1 the cloak does not reach on top of one it removes: 0.4, 0.22, 0.148, 0.119, 0.1 as t goes
        // 0, 0.6, 0.84, 0.936, 1 (0.974, rounded up). Four raises, then it stops; no round repeats the last.
        var (x, _) = SyntheticUsers.Users(d: 4, classSizes: [[20, 20]], shift: 0.0, seed: 1);
        x.Row(0).Clear();
        var result = new TargetedCloaker().Cloak(x, ["attr0"], new StrengthEcho(x), new PrivacyGoal(0.03, MaxProbes: 20),
            new UShapedProbe([t => 0.1 + 0.3 * (1 - t)]), ct: TestContext.Current.CancellationToken);
        result.Outcome.ShouldBe(TargetOutcome.NotMetAtFullStrength);
        result.Strengths[0].Mean.ShouldBe(1);
        result.Steps.Count.ShouldBe(5);
        result.Describe().ShouldContain("attr0 (at full strength)");
    }

    /// <summary>A cloak that writes its strengths into the embeddings (row 0), so the probe below can read them back.</summary>
    private sealed class StrengthEcho(EmbeddingMatrix original) : IStrengthCloak
    {
        public StrengthCloakResult Run(IReadOnlyList<AttributeStrength> strengths, CancellationToken ct)
        {
            var copy = original.Clone();
            for (var j = 0; j < strengths.Count; j++) copy.Row(0)[j] = (float)strengths[j].Mean;
            return new StrengthCloakResult(copy);
        }
    }

    /// <summary>Attribute j's leak as a function of its strength t: falls until t = 0.7, then rises (a cloak that creates structure).</summary>
    private sealed class UShapedProbe(Func<double, double>[] leak) : IPrivacyProbe
    {
        public PrivacyReading Measure(EmbeddingMatrix embeddings, CancellationToken ct) => new(
            leak.Select((f, j) => f(embeddings.Row(0)[j])).ToArray(), leak.Select(_ => 0.0).ToArray(), leak.Select(_ => "u").ToArray());
    }

    /// <summary>Utility 1 - sum_j cost_j x t_j^2 of the strengths <see cref="StrengthEcho"/> wrote into row 0.</summary>
    private sealed class EchoUtility(double[] costs) : IUtilityProbe
    {
        public string Name => "echo";

        public PairedRatio Measure(EmbeddingMatrix cloaked) =>
            new(1 - costs.Select((c, j) => c * Math.Pow(cloaked.Row(0)[j], 2)).Sum(), 0, cloaked.Rows);
    }

    [Fact]
    public void Under_the_floor_the_worst_leaks_partial_step_comes_before_a_nearly_met_attributes_full_step()
    {
        // attr0 leaks 0.5 and is expensive, attr1 leaks 0.04 (just over 0.03) and is cheap. Round 1: both raised
        // together (0.6 and 0.3) fall under the floor, and so does attr0 alone at 0.6; attr0 at half that step (0.3)
        // holds it, and so would attr1's full step. The worst leak goes first.
        var (x, _) = SyntheticUsers.Users(d: 4, classSizes: [[20, 20]], shift: 0.0, seed: 1);
        var probe = new UShapedProbe([t => 0.5 * (1 - t), t => 0.04 * (1 - t)]);
        var result = new TargetedCloaker().Cloak(x, ["attr0", "attr1"], new StrengthEcho(x), new PrivacyGoal(0.03, UtilityFloor: 0.75, MaxProbes: 1),
            probe, new EchoUtility([1.0, 0.1]), ct: TestContext.Current.CancellationToken);
        var accepted = result.Steps.Single(st => st.Round == 1 && st.AboveFloor);
        accepted.Strengths[0].Mean.ShouldBe(0.3, 1e-9, string.Join(Environment.NewLine, result.Steps.Select(st => $"{st.Round}: {string.Join(",", st.Strengths)} {st.UtilityRatio}")));
        accepted.Strengths[1].ShouldBe(AttributeStrength.None);
        result.Steps.Count(st => st.Round == 1 && !st.AboveFloor).ShouldBe(2);
    }

    /// <summary>
    /// <see cref="StrengthEcho"/> with a random draw: each draw writes its own utility jitter into row 0's last column
    /// (a noise-matched draw's shared cost, which the per-user standard error does not see).
    /// </summary>
    private sealed class DrawEcho(EmbeddingMatrix original, double[] jitter) : IStrengthCloak
    {
        public StrengthCloakResult Run(IReadOnlyList<AttributeStrength> strengths, CancellationToken ct) => Draw(strengths, 0);

        public StrengthCloakResult? Redraw(IReadOnlyList<AttributeStrength> strengths, int draw, CancellationToken ct) =>
            draw < jitter.Length ? Draw(strengths, draw) : null;

        private StrengthCloakResult Draw(IReadOnlyList<AttributeStrength> strengths, int draw)
        {
            var copy = original.Clone();
            for (var j = 0; j < strengths.Count; j++) copy.Row(0)[j] = (float)strengths[j].Mean;
            copy.Row(0)[^1] = (float)jitter[draw];
            return new StrengthCloakResult(copy);
        }
    }

    /// <summary>Utility 1 - cost x t^2 + the draw's jitter (row 0, last column), with no per-user standard error.</summary>
    private sealed class JitterUtility(double cost) : IUtilityProbe
    {
        public string Name => "jitter";

        public PairedRatio Measure(EmbeddingMatrix cloaked) => new(1 - cost * Math.Pow(cloaked.Row(0)[0], 2) + cloaked.Row(0)[^1], 0, cloaked.Rows);
    }

    [Fact]
    public void The_floor_reads_the_mean_over_draws_and_counts_their_spread_while_the_first_draw_is_served()
    {
        // Draw 0 is lucky (+0.03), draws 1 and 2 are not (-0.03): mean -0.01, spread (sd) 0.035. Judged on draw 0 alone,
        // the loop goes past t = 0.6; judged on the three, every accepted t keeps 1 - 0.25 t^2 - 0.01 - 0.035 >= 0.9.
        var (x, _) = SyntheticUsers.Users(d: 4, classSizes: [[20, 20]], shift: 0.0, seed: 1);
        x.Row(0).Clear(); // the original: strength 0, no jitter
        double[] jitter = [0.03, -0.03, -0.03];
        var probe = new UShapedProbe([t => 0.5 * (1 - t)]);
        TargetedCloakResult Run(int draws) => new TargetedCloaker().Cloak(x, ["attr0"], new DrawEcho(x, jitter),
            new PrivacyGoal(0.03, UtilityFloor: 0.9) { UtilityDraws = draws }, probe, new JitterUtility(0.25), ct: TestContext.Current.CancellationToken);

        var overDraws = Run(3);
        var t = overDraws.Strengths[0].Mean;
        t.ShouldBeGreaterThan(0, string.Join(Environment.NewLine, overDraws.Steps.Select(st => $"{st.Name}: {st.Strengths[0]} {string.Join(",", st.WorstAbsAdvantage)} {st.UtilityRatio} +/- {st.UtilityStandardError} {st.AboveFloor}")));
        (1 - 0.25 * t * t - 0.01 - Math.Sqrt(0.0012)).ShouldBeGreaterThanOrEqualTo(0.9 - 1e-6);
        overDraws.Steps.Where(st => st.AboveFloor && st.Round > 0).ShouldAllBe(st => st.UtilityRatio < 1 - 0.25 * st.Strengths[0].Mean * st.Strengths[0].Mean);
        overDraws.Embeddings.Row(0)[^1].ShouldBe(0.03f);
        Run(1).Strengths[0].Mean.ShouldBeGreaterThan(0.6);
    }

    [Fact]
    public void An_attribute_whose_reading_stops_falling_when_raised_stops_taking_rounds_while_the_others_go_on()
    {
        // attr0 falls to 0.1 by t = 0.5 and stays there (a leak the cloak does not reach); attr1 falls linearly.
        // Round 1: 0.6 / 0.6 read 0.1 / 0.08. Round 2: 0.84 / 0.84 read 0.1 (stalled) / 0.032. Round 3: 0.936 / 0.888
        // read 0.1 (stalled twice: not raised again) / 0.022 (met). Without the stall attr0 would go on to 1.
        var (x, _) = SyntheticUsers.Users(d: 4, classSizes: [[20, 20]], shift: 0.0, seed: 1);
        x.Row(0).Clear();
        var probe = new UShapedProbe([t => t < 0.5 ? 0.3 - 0.4 * t : 0.1, t => 0.2 * (1 - t)]);
        var result = new TargetedCloaker().Cloak(x, ["attr0", "attr1"], new StrengthEcho(x), new PrivacyGoal(0.03, MaxProbes: 20), probe,
            ct: TestContext.Current.CancellationToken);
        var trace = string.Join(Environment.NewLine, result.Steps.Select(st => $"{st.Name}: {string.Join(",", st.Strengths)} -> {string.Join(",", st.WorstAbsAdvantage)}"));
        result.Outcome.ShouldBe(TargetOutcome.NotMetRaisingWorsens, trace);
        result.Strengths[0].Mean.ShouldBe(0.936, 1e-6, trace);
        result.StillLeaking.ShouldBe(["attr0"], trace);
        result.Steps.Max(st => st.Round).ShouldBe(3, trace);
        result.Describe().ShouldContain("stalled");
    }

    /// <summary>Reads attr0's leak 0.1 (1 - t) 0.02 too low, and 0.02 too high on its second audit: a noisy probe's first dip under the target.</summary>
    private sealed class BiasedLowProbe : IPrivacyProbe
    {
        private static double Leak(EmbeddingMatrix x) => 0.1 * (1 - x.Row(0)[0]);

        public PrivacyReading Measure(EmbeddingMatrix embeddings, CancellationToken ct) => new([Math.Max(0, Leak(embeddings) - 0.02)], [0.0], ["low"]);

        public PrivacyReading Confirm(EmbeddingMatrix embeddings, CancellationToken ct) => new([Leak(embeddings) + 0.02], [0.0], ["high"]);
    }

    [Fact]
    public void A_reading_within_the_target_is_audited_again_and_the_loop_goes_on_when_the_two_average_over_it()
    {
        // t = 0.6 reads 0.02 then 0.06: the average, 0.04, is over 0.03, so the loop raises to 0.72 (0.008 and 0.048,
        // average 0.028) and stops there. Stopping on the first reading alone would have kept t = 0.6 (true leak 0.04).
        var (x, _) = SyntheticUsers.Users(d: 4, classSizes: [[20, 20]], shift: 0.0, seed: 1);
        var start = x.Clone();
        start.Row(0)[0] = 0;
        var result = new TargetedCloaker().Cloak(start, ["attr0"], new StrengthEcho(start), new PrivacyGoal(0.03), new BiasedLowProbe(),
            ct: TestContext.Current.CancellationToken);
        var trace = string.Join(Environment.NewLine, result.Steps.Select(st => $"{st.Name}: {string.Join(",", st.Strengths)} {string.Join(",", st.WorstAbsAdvantage)}"));
        result.Outcome.ShouldBe(TargetOutcome.Met, trace);
        result.Strengths[0].Mean.ShouldBe(0.72, 1e-9, trace);
        result.Steps.Where(st => st.Confirmation).Select(st => st.Name).ShouldBe(["round 1, second audit", "round 2, second audit"], trace);
    }

    /// <summary>
    /// The true leak falls with the strength, 0.1 (1 - t); the first raise's audit reads 0.08 too high (one audit's
    /// jitter), its second audit 0.08 too low.
    /// </summary>
    private sealed class JitteryProbe : IPrivacyProbe
    {
        private int _measured;
        private int _confirmed;

        private static double Leak(EmbeddingMatrix x) => 0.1 * (1 - x.Row(0)[0]);

        public PrivacyReading Measure(EmbeddingMatrix embeddings, CancellationToken ct) =>
            new([Leak(embeddings) + (_measured++ == 1 ? 0.08 : 0)], [0.0], ["first"]);

        public PrivacyReading Confirm(EmbeddingMatrix embeddings, CancellationToken ct) =>
            new([Math.Max(0, Leak(embeddings) - (_confirmed++ == 0 ? 0.08 : 0))], [0.0], ["second"]);
    }

    [Fact]
    public void A_reading_that_looks_worse_after_a_raise_is_audited_again_before_the_attribute_is_called_saturated()
    {
        // Round 0 reads 0.1. The first raise truly reads under it but its audit says 0.08 more, worse than 0.1 by more
        // than the tolerance; the second audit says 0.08 less, and their average is not worse, so the loop raises again
        // and meets the target instead of stopping with the attribute "saturated" on one audit's jitter.
        var (x, _) = SyntheticUsers.Users(d: 4, classSizes: [[20, 20]], shift: 0.0, seed: 1);
        var start = x.Clone();
        start.Row(0)[0] = 0;
        var result = new TargetedCloaker().Cloak(start, ["attr0"], new StrengthEcho(start), new PrivacyGoal(0.03), new JitteryProbe(),
            ct: TestContext.Current.CancellationToken);
        var trace = string.Join(Environment.NewLine, result.Steps.Select(st => $"{st.Name}: {string.Join(",", st.Strengths)} {string.Join(",", st.WorstAbsAdvantage)}"));
        result.Outcome.ShouldBe(TargetOutcome.Met, trace);
        result.Steps.ShouldContain(st => st.Confirmation && st.Name == "round 1, second audit", trace);
    }

    /// <summary>Like <see cref="StrengthEcho"/>, but strengths under 0.5 move nothing (James-Stein weights that keep every offset).</summary>
    private sealed class DeadZoneEcho(EmbeddingMatrix original) : IStrengthCloak
    {
        public StrengthCloakResult Run(IReadOnlyList<AttributeStrength> strengths, CancellationToken ct)
        {
            var copy = original.Clone();
            if (strengths[0].Mean >= 0.5) copy.Row(0)[0] = (float)strengths[0].Mean;
            return new StrengthCloakResult(copy);
        }
    }

    [Fact]
    public void A_round_that_moves_no_user_is_not_audited_and_does_not_spend_the_round_budget()
    {
        // Reading 0.04 against 0.03: the first raise (0.3) moves nothing, the second (0.51) brings it to 0.0196. With a
        // budget of one audited round the loop still gets there.
        var (x, _) = SyntheticUsers.Users(d: 4, classSizes: [[20, 20]], shift: 0.0, seed: 1);
        var start = x.Clone();
        start.Row(0)[0] = 0;
        var result = new TargetedCloaker().Cloak(start, ["attr0"], new DeadZoneEcho(start), new PrivacyGoal(0.03, MaxProbes: 1),
            new UShapedProbe([t => 0.04 * (1 - t)]), ct: TestContext.Current.CancellationToken);
        var trace = string.Join(Environment.NewLine, result.Steps.Select(st => $"{st.Name}: {string.Join(",", st.Strengths)} {string.Join(",", st.WorstAbsAdvantage)}"));
        result.Outcome.ShouldBe(TargetOutcome.Met, trace);
        result.Strengths[0].Mean.ShouldBe(0.51, 1e-9, trace);
        result.Steps.Select(st => st.Name).ShouldBe(["round 0", "round 1, moved nothing", "round 2"], trace);
    }

    [Fact]
    public void An_attribute_that_reads_worse_when_raised_is_not_raised_again_and_the_round_that_read_worse_is_dropped()
    {
        var (x, attributes) = SyntheticUsers.Users(d: 4, classSizes: [[200, 200], [200, 200]], shift: 2.0, seed: 1);
        // attr0 bottoms out at 0.06 near t = 0.7 and rises past it; attr1 falls steadily to 0 at full strength.
        var probe = new UShapedProbe([t => t == 0 ? 0.2 : 0.06 + 0.5 * Math.Abs(t - 0.7), t => 0.2 * (1 - t)]);
        var result = new TargetedCloaker().Cloak(x, attributes.Select(a => a.Name).ToArray(), new StrengthEcho(x), new PrivacyGoal(0.03), probe,
            ct: TestContext.Current.CancellationToken);
        var trace = string.Join(Environment.NewLine, result.Steps.Select(st => $"{string.Join(",", st.Strengths)} -> {string.Join(",", st.WorstAbsAdvantage)}"));
        result.Outcome.ShouldBe(TargetOutcome.NotMetRaisingWorsens, trace);
        // 0 -> 0.6 (0.11) -> 0.84 (0.13: worse, dropped); attr0 stays at 0.6 while attr1 goes on until it is within the target.
        result.Strengths[0].Mean.ShouldBe(0.6, 1e-9, trace);
        result.Steps.ShouldContain(st => st.Strengths[0].Mean > 0.8, trace);
        result.Steps[^1].WorstAbsAdvantage[1].ShouldBeLessThanOrEqualTo(0.03, trace);
        result.Steps[^1].Strengths[0].Mean.ShouldBe(0.6, 1e-9, trace);
        result.StillLeaking.ShouldBe(["attr0"]);
        result.Describe().ShouldContain("a stronger cloak read worse");
        // The returned matrix is the accepted round's, not the dropped one's.
        result.Embeddings.Row(0)[0].ShouldBe(0.6f, 1e-6f);
    }

    /// <summary>Attribute 0's signed leak 0.2 - 0.4 t: past t = 0.5 the attackers are systematically wrong (an overshoot).</summary>
    private sealed class OvershootProbe(EmbeddingMatrix original) : IPrivacyProbe
    {
        public PrivacyReading Measure(EmbeddingMatrix embeddings, CancellationToken ct)
        {
            var t = ReferenceEquals(embeddings, original) ? 0 : embeddings.Row(0)[0];
            var signed = 0.2 - 0.4 * t;
            return new PrivacyReading([Math.Abs(signed)], [0.0], ["o"]) { WorstSignedAdvantage = [signed] };
        }
    }

    [Fact]
    public void An_attribute_pushed_below_chance_is_bisected_between_the_last_accepted_strength_and_the_overshoot()
    {
        var (x, attributes) = SyntheticUsers.Users(d: 4, classSizes: [[200, 200]], shift: 2.0, seed: 1);
        var result = new TargetedCloaker().Cloak(x, ["attr0"], new StrengthEcho(x), new PrivacyGoal(0.03), new OvershootProbe(x),
            ct: TestContext.Current.CancellationToken);
        var trace = string.Join(Environment.NewLine, result.Steps.Select(st => $"{string.Join(",", st.Strengths)} -> {string.Join(",", st.WorstAbsAdvantage)}"));
        // 0.6 overshoots (-0.04, dropped); 0.3 reads +0.08 (accepted); then halfway to the overshoot, 0.45, reads +0.02.
        result.Outcome.ShouldBe(TargetOutcome.Met, trace);
        result.Strengths[0].Mean.ShouldBe(0.45, 1e-9, trace);
        result.Steps.ShouldContain(st => Math.Abs(st.Strengths[0].Mean - 0.6) < 1e-9, trace);
        (0.2 - 0.4 * result.Embeddings.Row(0)[0]).ShouldBeInRange(0, 0.03, trace);
    }

    [Fact]
    public void A_reading_that_creeps_up_by_less_than_the_jitter_per_round_is_caught_against_its_lowest_value()
    {
        var (x, attributes) = SyntheticUsers.Users(d: 4, classSizes: [[200, 200]], shift: 2.0, seed: 1);
        // Lowest (0.05) at t = 0.5; every raise beyond it adds 0.04 per unit of strength, under 0.01 per round.
        static double Leak(double t) => t < 0.5 ? 0.2 : 0.05 + 0.04 * (t - 0.5);
        var probe = new UShapedProbe([t => t == 0 ? 0.2 : Leak(t)]);
        var result = new TargetedCloaker().Cloak(x, ["attr0"], new StrengthEcho(x), new PrivacyGoal(0.03), probe, ct: TestContext.Current.CancellationToken);
        var trace = string.Join(Environment.NewLine, result.Steps.Select(st => $"{string.Join(",", st.Strengths)} -> {string.Join(",", st.WorstAbsAdvantage)}"));
        result.Outcome.ShouldBe(TargetOutcome.NotMetRaisingWorsens, trace);
        result.Strengths[0].Mean.ShouldBeLessThan(1, trace);
        var lowest = result.Steps.Where(st => st.WorstAbsAdvantage.Count > 0).Min(st => st.WorstAbsAdvantage[0]);
        Leak(result.Strengths[0].Mean).ShouldBeLessThanOrEqualTo(lowest + 0.01, trace);
        // The dropped round: stronger than the result, within 0.01 of the round before it, more than 0.01 over the lowest.
        var dropped = result.Steps[^1];
        dropped.Strengths[0].Mean.ShouldBeGreaterThan(result.Strengths[0].Mean, trace);
        (dropped.WorstAbsAdvantage[0] - Leak(result.Strengths[0].Mean)).ShouldBeLessThan(0.01, trace);
        dropped.WorstAbsAdvantage[0].ShouldBeGreaterThan(lowest + 0.01, trace);
    }

    [Fact]
    public void Loop_says_when_the_target_cannot_be_met_above_the_floor_and_returns_the_last_round_above_it()
    {
        TorchRuntime.EnsureInitialised();
        var (x, attributes) = SyntheticUsers.Users(d: 4, classSizes: [[200, 200]], shift: 2.0, seed: 1);
        var probe = new SeparationProbe(x, attributes, [0.5]);
        var utility = new DisplacementUtility(x, slope: 1.0);
        var result = new TargetedCloaker().Cloak(x, attributes, new CloakOptions { MaxIterations = 5 },
            new PrivacyGoal(0.03, UtilityFloor: 0.9) { UtilityDraws = 1 }, probe, utility, ct: TestContext.Current.CancellationToken);
        result.Outcome.ShouldBe(TargetOutcome.NotMetAboveFloor);
        result.StillLeaking.ShouldBe(["attr0"]);
        result.Describe().ShouldContain("NOT met above the utility floor");
        utility.Ratio(result.Embeddings).ShouldBeGreaterThanOrEqualTo(0.9);
        result.Steps.ShouldAllBe(s => s.UtilityStandardError == null || s.UtilityStandardError == 0);
        result.Steps.ShouldContain(s => !s.AboveFloor);
    }
}
