using AttrCloak.Core.Data;

namespace AttrCloak.Tools.Experiments.Support;

/// <summary>
/// Seeded synthetic embeddings for the audit benchmark: Gaussian noise plus a per-class mean shift (the audit tests'
/// Synthetic.Gaussian, copied so that the same seed gives the same embeddings).
/// </summary>
internal static class SyntheticEmbeddings
{
    /// <summary>
    /// Row i = N(0, I) + separation * mean(label_i) summed over the given label columns, where each class
    /// mean is a fixed random unit vector. separation 0 gives pure noise.
    /// </summary>
    public static EmbeddingMatrix Gaussian(int dims, int seed, double separation, params (int[] Labels, int ClassCount)[] attributes)
    {
        var n = attributes.Length == 0 ? throw new ArgumentException("need labels", nameof(attributes)) : attributes[0].Labels.Length;
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

    private static double[] UnitVector(Random rng, int dims)
    {
        var v = Enumerable.Range(0, dims).Select(_ => Normal(rng)).ToArray();
        var norm = Math.Sqrt(v.Sum(x => x * x));
        return v.Select(x => x / norm).ToArray();
    }

    private static double Normal(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
