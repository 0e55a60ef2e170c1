using AttrCloak.Core.Evaluation;

namespace AttrCloak.Audit.Tests.Metrics;

public sealed class ClassificationMetricsTests
{
    [Fact]
    public void Balanced_accuracy_is_the_mean_per_class_recall_on_a_hand_example()
    {
        int[] yTrue = [0, 0, 0, 0, 1, 1, 2, 2];
        int[] yPred = [0, 0, 0, 0, 0, 0, 2, 1];
        // recalls: class 0 = 4/4, class 1 = 0/2, class 2 = 1/2
        ClassificationMetrics.BalancedAccuracy(yTrue, yPred).ShouldBe(0.5, 1e-12);
        ClassificationMetrics.Accuracy(yTrue, yPred).ShouldBe(5.0 / 8, 1e-12);
        ClassificationMetrics.MajorityRate(yTrue).ShouldBe(0.5, 1e-12);
    }

    [Fact]
    public void Balanced_accuracy_averages_only_over_classes_present_in_the_truth()
    {
        // Class 2 never occurs in the truth: it is not averaged, and predicting it is just wrong.
        int[] yTrue = [0, 0, 1, 1];
        int[] yPred = [0, 2, 1, 1];
        ClassificationMetrics.BalancedAccuracy(yTrue, yPred).ShouldBe(0.75, 1e-12);
    }

    [Fact]
    public void Chance_is_one_over_k()
    {
        ClassificationMetrics.Chance(2).ShouldBe(0.5);
        ClassificationMetrics.Chance(7).ShouldBe(1.0 / 7, 1e-15);
        ClassificationMetrics.Chance(21).ShouldBe(1.0 / 21, 1e-15);
    }

    [Fact]
    public void Auc_is_one_for_a_perfect_ranking_zero_for_a_reversed_one_and_half_for_constant_scores()
    {
        int[] y = [0, 0, 0, 1, 1];
        ClassificationMetrics.BinaryAuc(y, [0.1, 0.2, 0.3, 0.8, 0.9]).ShouldBe(1.0, 1e-12);
        ClassificationMetrics.BinaryAuc(y, [0.9, 0.8, 0.7, 0.2, 0.1]).ShouldBe(0.0, 1e-12);
        ClassificationMetrics.BinaryAuc(y, [0.4, 0.4, 0.4, 0.4, 0.4]).ShouldBe(0.5, 1e-12);
    }

    [Fact]
    public void Auc_counts_a_tied_positive_negative_pair_as_one_half()
    {
        // Pairs (pos, neg): (0.8, 0.4) 1, (0.8, 0.2) 1, (0.4, 0.4) 1/2, (0.4, 0.2) 1 => 3.5 / 4.
        int[] y = [1, 1, 0, 0];
        ClassificationMetrics.BinaryAuc(y, [0.8, 0.4, 0.4, 0.2]).ShouldBe(0.875, 1e-12);
    }

    [Fact]
    public void Auc_matches_brute_force_pair_counting_with_many_ties()
    {
        var rng = new Random(7);
        var y = new int[200];
        var s = new double[200];
        for (var i = 0; i < y.Length; i++)
        {
            y[i] = rng.Next(2);
            s[i] = rng.Next(6) + 0.5 * y[i] * rng.Next(2); // few distinct values: lots of ties
        }
        double wins = 0, pairs = 0;
        for (var i = 0; i < y.Length; i++)
            for (var j = 0; j < y.Length; j++)
            {
                if (y[i] != 1 || y[j] != 0) continue;
                pairs++;
                wins += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
            }
        ClassificationMetrics.BinaryAuc(y, s).ShouldBe(wins / pairs, 1e-12);
    }

    [Fact]
    public void Auc_is_undefined_without_both_classes()
    {
        double.IsNaN(ClassificationMetrics.BinaryAuc([1, 1, 1], [0.1, 0.2, 0.3])).ShouldBeTrue();
    }

    [Fact]
    public void Macro_one_vs_rest_auc_averages_the_per_class_aucs()
    {
        int[] y = [0, 1, 2, 0, 1, 2];
        // Column 0 ranks class 0 first (AUC 1), column 1 is constant (0.5), column 2 ranks class 2 last (0).
        float[] p =
        [
            0.9f, 0.3f, 0.9f,
            0.1f, 0.3f, 0.8f,
            0.2f, 0.3f, 0.1f,
            0.8f, 0.3f, 0.7f,
            0.2f, 0.3f, 0.9f,
            0.1f, 0.3f, 0.2f,
        ];
        ClassificationMetrics.MacroOneVsRestAuc(y, p, 3).ShouldBe((1 + 0.5 + 0) / 3, 1e-12);
        ClassificationMetrics.Auc(y, p, 3).ShouldBe((1 + 0.5 + 0) / 3, 1e-12);
    }

    [Fact]
    public void Macro_auc_skips_classes_absent_from_the_truth()
    {
        int[] y = [0, 0, 1, 1];
        // Class 2 is absent: only columns 0 (AUC 1) and 1 (AUC 1) count, column 2's garbage does not.
        float[] p = [0.8f, 0.1f, 0.1f, 0.7f, 0.2f, 0.9f, 0.1f, 0.8f, 0.0f, 0.2f, 0.7f, 0.3f];
        ClassificationMetrics.MacroOneVsRestAuc(y, p, 3).ShouldBe(1.0, 1e-12);
    }

    [Fact]
    public void Two_class_auc_uses_the_class_one_probability()
    {
        int[] y = [0, 1, 0, 1];
        float[] p = [0.9f, 0.1f, 0.3f, 0.7f, 0.6f, 0.4f, 0.2f, 0.8f];
        ClassificationMetrics.Auc(y, p, 2).ShouldBe(1.0, 1e-12);
    }

    [Fact]
    public void ArgMax_breaks_ties_towards_the_lowest_class()
    {
        ClassificationMetrics.ArgMax([0.2f, 0.4f, 0.4f, 0.5f, 0.5f, 0f], 3).ShouldBe([1, 0]);
    }
}
