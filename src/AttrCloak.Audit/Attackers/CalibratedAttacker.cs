using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Audit.Attackers;

/// <summary>
/// Turns systematic mistakes into information (reference evaluation: below chance is leakage too). After fitting
/// <paramref name="inner"/> on the shadow users, it measures how the inner attacker errs on them with an
/// inner stratified k-fold: out-of-fold predicted class j against true class k gives a confusion table
/// T[j, k] = P(true = k | predicted = j). A new user is then assigned row j of T for the class j the inner
/// model predicts, so an attacker that always says "next class" becomes a perfect one.
/// <para>Smoothing: T[j, k] = (count[j, k] + K' * prior_k) / (count[j] + K'), with K' the number of present
/// classes and prior_k their add-one-smoothed frequency: the same pseudo-count as Laplace's add-one, but a
/// class the inner model never predicted out of fold falls back to the class prior rather than uniform.
/// Classes absent from the shadow set get probability 0.</para>
/// <para>Output: (1 - <paramref name="softWeight"/>) * T[j] + <paramref name="softWeight"/> * sum_j' q_j' T[j'],
/// with q the inner probabilities. The hard row decides the class; the small soft term only orders users
/// that share a row, so the AUC is not computed from K distinct values.</para>
/// </summary>
public sealed class CalibratedAttacker(IAttacker inner, int innerFolds = 3, double softWeight = 0.1) : IAttacker
{
    private readonly IAttacker _inner = inner ?? throw new ArgumentNullException(nameof(inner));
    private readonly int _innerFolds = innerFolds >= 2
        ? innerFolds
        : throw new ArgumentOutOfRangeException(nameof(innerFolds), innerFolds, "need at least 2 inner folds");
    private readonly double _softWeight = softWeight is >= 0 and <= 1
        ? softWeight
        : throw new ArgumentOutOfRangeException(nameof(softWeight), softWeight, "must be in [0, 1]");

    public string Name => _inner.Name + "+cal";

    public IAttacker Inner => _inner;

    public IAttackModel Fit(EmbeddingMatrix x, int[] y, int classCount, int seed)
    {
        var classes = ClassMap.Build(y, classCount, x.Rows);
        if (classes.PresentCount == 1) return new ConstantModel(classCount, classes.Present[0]);

        var counts = new double[classCount, classCount];
        if (x.Rows >= _innerFolds)
        {
            var folds = StratifiedKFold.Assign(y, _innerFolds, Seeds.Derive(seed, 1));
            for (var f = 0; f < _innerFolds; f++)
            {
                var (train, test) = StratifiedKFold.Split(folds, f);
                if (train.Length == 0 || test.Length == 0) continue;
                using var model = _inner.Fit(x.SelectRows(train), train.Select(i => y[i]).ToArray(), classCount,
                    Seeds.Derive(seed, 2, f));
                var predicted = ClassificationMetrics.ArgMax(model.PredictProba(x.SelectRows(test)), classCount);
                for (var t = 0; t < test.Length; t++) counts[predicted[t], y[test[t]]] += 1;
            }
        }

        var present = classes.Present;
        var prior = new double[classCount];
        var classTotals = new double[classCount];
        foreach (var c in y) classTotals[c]++;
        foreach (var c in present) prior[c] = (classTotals[c] + 1) / (y.Length + present.Length);
        var table = new float[classCount * classCount];
        for (var j = 0; j < classCount; j++)
        {
            double rowTotal = 0;
            for (var k = 0; k < classCount; k++) rowTotal += counts[j, k];
            foreach (var k in present)
                table[j * classCount + k] = (float)((counts[j, k] + present.Length * prior[k]) / (rowTotal + present.Length));
        }

        var full = _inner.Fit(x, y, classCount, seed);
        return new CalibratedModel(full, table, classCount, _softWeight);
    }

    private sealed class CalibratedModel(IAttackModel inner, float[] table, int classCount, double softWeight) : IAttackModel
    {
        public int ClassCount => classCount;

        /// <summary>Row j of the confusion table, P(true = k | inner predicted j) (tests and diagnostics).</summary>
        public ReadOnlySpan<float> Row(int j) => table.AsSpan(j * classCount, classCount);

        public float[] PredictProba(EmbeddingMatrix x)
        {
            var q = inner.PredictProba(x);
            var predicted = ClassificationMetrics.ArgMax(q, classCount);
            var result = new float[q.Length];
            var soft = new double[classCount];
            for (var i = 0; i < x.Rows; i++)
            {
                Array.Clear(soft);
                for (var j = 0; j < classCount; j++)
                {
                    var w = q[i * classCount + j];
                    if (w == 0) continue;
                    for (var k = 0; k < classCount; k++) soft[k] += w * table[j * classCount + k];
                }
                var hard = Row(predicted[i]);
                for (var k = 0; k < classCount; k++)
                    result[i * classCount + k] = (float)((1 - softWeight) * hard[k] + softWeight * soft[k]);
            }
            return result;
        }

        public void Dispose() => inner.Dispose();
    }
}
