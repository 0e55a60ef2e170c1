using AttrCloak.Audit.Attackers;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Audit.Tests.Attackers;

public sealed class CalibratedAttackerTests
{
    /// <summary>
    /// A test double of an attacker that knows the true class (stored in feature 0) and always answers the
    /// next one: balanced accuracy 0, far below chance, yet it leaks everything.
    /// </summary>
    private sealed class NextClassAttacker : IAttacker
    {
        public string Name => "next";

        public IAttackModel Fit(EmbeddingMatrix x, int[] y, int classCount, int seed) => new Model(classCount);

        private sealed class Model(int k) : IAttackModel
        {
            public int ClassCount => k;

            public float[] PredictProba(EmbeddingMatrix x)
            {
                var p = new float[x.Rows * k];
                for (var i = 0; i < x.Rows; i++) p[i * k + ((int)MathF.Round(x.Row(i)[0]) + 1) % k] = 1f;
                return p;
            }

            public void Dispose()
            {
            }
        }
    }

    private static (EmbeddingMatrix X, int[] Y) ClassInFeatureZero(int n, int k, int seed)
    {
        var rng = new Random(seed);
        var y = Enumerable.Range(0, n).Select(i => i % k).ToArray();
        var values = new float[n * 3];
        for (var i = 0; i < n; i++)
        {
            values[i * 3] = y[i];
            values[i * 3 + 1] = (float)rng.NextDouble();
            values[i * 3 + 2] = (float)rng.NextDouble();
        }
        return (new EmbeddingMatrix(n, 3, values), y);
    }

    [Fact]
    public void A_systematically_wrong_attacker_becomes_a_good_one()
    {
        const int k = 4;
        var (x, y) = ClassInFeatureZero(120, k, 1);
        var inner = new NextClassAttacker();
        using var raw = inner.Fit(x, y, k, 0);
        ClassificationMetrics.BalancedAccuracy(y, ClassificationMetrics.ArgMax(raw.PredictProba(x), k)).ShouldBe(0.0);

        var calibrated = new CalibratedAttacker(inner);
        calibrated.Name.ShouldBe("next+cal");
        using var model = calibrated.Fit(x, y, k, seed: 3);
        var (xTest, yTest) = ClassInFeatureZero(80, k, 2);
        var proba = model.PredictProba(xTest);
        ClassificationMetrics.BalancedAccuracy(yTest, ClassificationMetrics.ArgMax(proba, k)).ShouldBe(1.0);
        ClassificationMetrics.Auc(yTest, proba, k).ShouldBe(1.0, 1e-9);
        // The inner "says" class j+1 for class j: row j+1 of the table puts almost all mass on class j.
        proba[0 * k + yTest[0]].ShouldBeGreaterThan(0.9f);
    }

    [Fact]
    public void Classes_absent_from_the_shadow_set_get_probability_zero()
    {
        const int k = 4;
        var (x, y) = ClassInFeatureZero(120, k, 1);
        var keep = Enumerable.Range(0, y.Length).Where(i => y[i] != 1).ToArray();
        using var model = new CalibratedAttacker(new NextClassAttacker())
            .Fit(x.SelectRows(keep), keep.Select(i => y[i]).ToArray(), k, seed: 0);
        var proba = model.PredictProba(x);
        for (var i = 0; i < y.Length; i++) proba[i * k + 1].ShouldBe(0f);
        for (var i = 0; i < y.Length; i++) proba.AsSpan(i * k, k).ToArray().Sum().ShouldBe(1f, 1e-5f);
    }
}
