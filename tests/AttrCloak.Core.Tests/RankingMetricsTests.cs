using AttrCloak.Core.Evaluation;

namespace AttrCloak.Core.Tests;

public sealed class RankingMetricsTests
{
    private const double Tolerance = 1e-12;

    /// <summary>A positive scored <paramref name="positive"/> among 99 negatives of which <paramref name="above"/> score 1.0, <paramref name="tied"/> tie and the rest score -1.0.</summary>
    private static float[] Candidates(float positive, int above, int tied)
    {
        var scores = new float[100];
        scores[0] = positive;
        for (var j = 1; j < 100; j++) scores[j] = j <= above ? 1f : j <= above + tied ? positive : -1f;
        return scores;
    }

    [Fact]
    public void A_positive_ranked_first_scores_one_everywhere()
    {
        var m = RankingMetrics.FromScores([Candidates(0.5f, 0, 0)]);
        m.ShouldBe(new RankingMetrics(1, 1, 1, 1, 1));
    }

    [Fact]
    public void Rank_three_gets_the_logarithmic_discount()
    {
        var m = RankingMetrics.FromScores([Candidates(0.5f, 3, 0)]);
        m.Hr5.ShouldBe(1);
        m.Ndcg5.ShouldBe(1 / Math.Log2(5), Tolerance);
        m.Ndcg10.ShouldBe(1 / Math.Log2(5), Tolerance);
    }

    [Fact]
    public void Ties_rank_pessimistically()
    {
        // Two negatives above and three tied: the positive is placed after all five, at rank 5 (0-based).
        var m = RankingMetrics.FromScores([Candidates(0.5f, 2, 3)]);
        m.Hr5.ShouldBe(0);
        m.Ndcg5.ShouldBe(0);
        m.Hr10.ShouldBe(1);
        m.Ndcg10.ShouldBe(1 / Math.Log2(7), Tolerance);
    }

    [Fact]
    public void A_constant_scorer_hits_nothing()
    {
        var m = RankingMetrics.FromScores([Enumerable.Repeat(0.3f, 100).ToArray()]);
        m.ShouldBe(new RankingMetrics(0, 0, 0, 0, 1));
    }

    [Fact]
    public void A_NaN_negative_counts_as_ranked_above_and_a_NaN_positive_is_an_error()
    {
        var scores = Candidates(0.5f, 0, 0);
        scores[7] = float.NaN;
        RankingMetrics.FromScores([scores]).Ndcg10.ShouldBe(1 / Math.Log2(3), Tolerance);
        Should.Throw<ArgumentException>(() => RankingMetrics.FromScores([Candidates(float.NaN, 0, 0)]));
    }

    [Fact]
    public void Users_are_averaged_and_users_without_candidates_skipped()
    {
        // Ranks 0, 4 and 9, plus one user with no held-out item.
        var m = RankingMetrics.FromScores([Candidates(0, 0, 0), Candidates(0, 4, 0), Candidates(0, 9, 0), []]);
        m.Users.ShouldBe(3);
        m.Hr5.ShouldBe(2 / 3.0, Tolerance);
        m.Hr10.ShouldBe(1, Tolerance);
        m.Ndcg5.ShouldBe((1 + 1 / Math.Log2(6)) / 3, Tolerance);
        m.Ndcg10.ShouldBe((1 + 1 / Math.Log2(6) + 1 / Math.Log2(11)) / 3, Tolerance);
    }

    [Fact]
    public void No_users_gives_zeros()
    {
        RankingMetrics.FromScores([]).ShouldBe(new RankingMetrics(0, 0, 0, 0, 0));
    }

    [Fact]
    public void Per_user_NDCG_averages_to_the_metric_and_marks_users_without_candidates()
    {
        var lists = new[] { Candidates(0, 0, 0), Candidates(0, 4, 0), Candidates(0, 12, 0), [] };
        var perUser = RankingMetrics.Ndcg10PerUser(lists);
        perUser[..3].ShouldBe([1, 1 / Math.Log2(6), 0], Tolerance);
        double.IsNaN(perUser[3]).ShouldBeTrue();
        perUser[..3].Average().ShouldBe(RankingMetrics.FromScores(lists).Ndcg10, Tolerance);
    }

    [Fact]
    public void Paired_ratio_and_its_standard_error_follow_the_delta_method()
    {
        // Changed = 0.9 x original for every user: the ratio is exact and has no spread.
        var exact = PairedRatio.Of([1.0, 0.5, 0.25, double.NaN], [0.9, 0.45, 0.225, 7]);
        exact.Ratio.ShouldBe(0.9, Tolerance);
        exact.StandardError.ShouldBe(0, 1e-12);
        exact.Users.ShouldBe(3);
        // Two users, one unchanged and one halved: R = 1.5 / 2 = 0.75; z = (0.25, -0.25), sd = sqrt(0.125),
        // SE = sd / sqrt(2) / mean(original) = 0.25.
        var spread = PairedRatio.Of([1.0, 1.0], [1.0, 0.5]);
        spread.Ratio.ShouldBe(0.75, Tolerance);
        spread.StandardError.ShouldBe(0.25, Tolerance);
    }
}
