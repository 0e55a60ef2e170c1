using AttrCloak.Core.Data;

namespace AttrCloak.Tools.Samples;

/// <summary>
/// Seeded synthetic embeddings: Gaussian noise plus a per-class mean shift. Used by the audit tests and the audit
/// experiment, so the same seed gives the same embeddings in both.
/// </summary>
public static class SyntheticEmbeddings
{
    public static int[] BalancedLabels(int n, int classCount) =>
        Enumerable.Range(0, n).Select(i => i % classCount).ToArray();

    public static int[] RandomLabels(int n, int classCount, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => rng.Next(classCount)).ToArray();
    }

    /// <summary>
    /// Row i = N(0, I) + separation * mean(label_i) summed over the given label columns, where each class
    /// mean is a fixed random unit vector. separation 0 gives pure noise.
    /// </summary>
    public static EmbeddingMatrix Gaussian(int dims, int seed, double separation, params (int[] Labels, int ClassCount)[] attributes)
    {
        var n = attributes.Length == 0 ? throw new ArgumentException("need labels") : attributes[0].Labels.Length;
        var rng = new Random(seed);
        var means = attributes.Select(a => Enumerable.Range(0, a.ClassCount).Select(_ => UnitVector(rng, dims)).ToArray()).ToArray();
        var values = new float[n * dims];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < dims; j++)
            {
                var v = Normal(rng);
                for (var a = 0; a < attributes.Length; a++)
                {
                    var c = attributes[a].Labels[i];
                    if (c >= 0) v += separation * means[a][c][j];
                }
                values[i * dims + j] = (float)v;
            }
        return new EmbeddingMatrix(n, dims, values);
    }

    public static (EmbeddingMatrix X, int[] Y) Take(EmbeddingMatrix x, int[] y, int from, int count) =>
        (x.SelectRows(Enumerable.Range(from, count).ToArray()), y.Skip(from).Take(count).ToArray());

    private static double[] UnitVector(Random rng, int dims)
    {
        var v = Enumerable.Range(0, dims).Select(_ => Normal(rng)).ToArray();
        var norm = Math.Sqrt(v.Sum(x => x * x));
        return v.Select(x => x / norm).ToArray();
    }

    private static double Normal(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
