using System.Diagnostics;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Learning.Tests.Backbones;

public sealed class UtilityEvaluatorTests
{
    [Fact]
    public void Ranks_candidates_by_dot_product_with_known_answers()
    {
        // 1-d vectors make every score obvious: score = user * item.
        var items = new EmbeddingMatrix(6, 1, [0f, 1f, 2f, 3f, 4f, 5f]);
        var users = new EmbeddingMatrix(3, 1, [1f, -1f, 1f]);
        int[][] candidates =
        [
            [5, 0, 1, 2], // positive scores 5, highest: rank 0
            [2, 0, 1, 3], // scores -2 vs 0, -1, -3: two above, rank 2
            [],           // no held-out item: skipped
        ];
        var m = UtilityEvaluator.Evaluate(users, items, candidates);
        m.Users.ShouldBe(2);
        m.Hr5.ShouldBe(1.0);
        m.Hr10.ShouldBe(1.0);
        m.Ndcg10.ShouldBe((1.0 + 1.0 / Math.Log2(4)) / 2, 1e-12);
    }

    [Fact]
    public void Ties_rank_pessimistically_and_rank_ten_misses()
    {
        var items = new EmbeddingMatrix(12, 2, Enumerable.Repeat(1f, 24).ToArray());
        var users = new EmbeddingMatrix(1, 2, [1f, 1f]);
        // All 11 negatives tie with the positive: rank 11, outside the top 10.
        var m = UtilityEvaluator.Evaluate(users, items, [Enumerable.Range(0, 12).ToArray()]);
        m.Hr10.ShouldBe(0);
        m.Ndcg10.ShouldBe(0);
    }

    [Fact]
    public void Matches_a_scalar_reference_on_random_vectors_with_odd_dimension()
    {
        var rng = new Random(3);
        const int d = 13; // not a multiple of the SIMD width: exercises the scalar tail
        var users = new EmbeddingMatrix(20, d, Enumerable.Range(0, 20 * d).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
        var items = new EmbeddingMatrix(50, d, Enumerable.Range(0, 50 * d).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
        var candidates = Enumerable.Range(0, 20).Select(_ => Enumerable.Range(0, 50).OrderBy(_ => rng.Next()).Take(20).ToArray()).ToArray();
        var reference = candidates.Select((list, u) => list.Select(i =>
        {
            double s = 0;
            for (var k = 0; k < d; k++) s += users.Row(u)[k] * items.Row(i)[k];
            return (float)s;
        }).ToArray()).ToArray();
        var expected = RankingMetrics.FromScores(reference);
        var actual = UtilityEvaluator.Evaluate(users, items, candidates);
        actual.Ndcg10.ShouldBe(expected.Ndcg10, 1e-9);
        actual.Hr5.ShouldBe(expected.Hr5, 1e-9);
    }

    [Fact]
    public void Rejects_mismatched_shapes_and_out_of_range_items()
    {
        var items = new EmbeddingMatrix(3, 2, new float[6]);
        Should.Throw<ArgumentException>(() => UtilityEvaluator.Evaluate(new EmbeddingMatrix(1, 3, new float[3]), items, [[0]]))
            .Message.ShouldContain("dimensions");
        Should.Throw<ArgumentException>(() => UtilityEvaluator.Evaluate(new EmbeddingMatrix(1, 2, new float[2]), items, [[0, 7]]))
            .Message.ShouldContain("7");
        Should.Throw<ArgumentException>(() => UtilityEvaluator.Evaluate(new EmbeddingMatrix(2, 2, new float[4]), items, [[0]]));
    }

    /// <summary>
    /// ML-1M size (6,040 users x 100 candidates, 64 dims): checks the vectorised path against the scalar reference
    /// on a sample of users and prints the time; no timed assertion (benchmarks are commands, not tests).
    /// </summary>
    [Fact]
    public void Ml1m_sized_evaluation_matches_the_scalar_reference_and_prints_its_time()
    {
        var rng = new Random(1);
        const int d = 64;
        var users = new EmbeddingMatrix(6040, d, Enumerable.Range(0, 6040 * d).Select(_ => (float)rng.NextDouble()).ToArray());
        var items = new EmbeddingMatrix(3706, d, Enumerable.Range(0, 3706 * d).Select(_ => (float)rng.NextDouble()).ToArray());
        var candidates = Enumerable.Range(0, 6040).Select(_ => Enumerable.Range(0, 100).Select(_ => rng.Next(3706)).ToArray()).ToArray();
        UtilityEvaluator.Evaluate(users, items, candidates); // warm-up (JIT)
        var clock = Stopwatch.StartNew();
        var actual = UtilityEvaluator.Evaluate(users, items, candidates);
        TestContext.Current.TestOutputHelper?.WriteLine($"ML-1M-sized evaluation: {clock.Elapsed.TotalMilliseconds:F0} ms");

        actual.Users.ShouldBe(6040);
        var reference = new float[candidates.Length][];
        for (var u = 0; u < candidates.Length; u++)
        {
            var userRow = users.Row(u);
            reference[u] = new float[candidates[u].Length];
            for (var c = 0; c < candidates[u].Length; c++)
            {
                var itemRow = items.Row(candidates[u][c]);
                double s = 0;
                for (var k = 0; k < d; k++) s += userRow[k] * itemRow[k];
                reference[u][c] = (float)s;
            }
        }
        var expected = RankingMetrics.FromScores(reference);
        TestContext.Current.TestOutputHelper?.WriteLine($"HR@10 {actual.Hr10} vs {expected.Hr10}, NDCG@10 {actual.Ndcg10} vs {expected.Ndcg10}");
        // Float vs double accumulation may reorder a near-tie for a handful of the 6,040 users, hence not 1e-9.
        actual.Hr10.ShouldBe(expected.Hr10, 1e-3);
        actual.Ndcg10.ShouldBe(expected.Ndcg10, 1e-3);
    }
}
