using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Tools.Experiments.Support;

/// <summary>
/// Seeded synthetic users for the unlearning benchmarks: N(0, I) embeddings plus a class-dependent mean shift per
/// attribute (the unlearning tests' Synthetic.Users, copied so that the same seed gives the same users).
/// </summary>
internal static class SyntheticUsers
{
    /// <summary>
    /// Users with attribute j's classes of the given sizes (each row of <paramref name="classSizes"/> sums to n),
    /// labels assigned by an independent seeded shuffle per attribute, and a random mean offset of norm about
    /// <paramref name="shift"/> per class.
    /// </summary>
    public static (EmbeddingMatrix Embeddings, LabeledAttribute[] Attributes) Users(int d, int[][] classSizes, double shift, int seed)
    {
        var n = classSizes[0].Sum();
        var rng = new Random(seed);
        var x = new double[n * d];
        for (var i = 0; i < x.Length; i++) x[i] = Gaussian(rng);
        var attributes = new LabeledAttribute[classSizes.Length];
        for (var j = 0; j < classSizes.Length; j++)
        {
            var sizes = classSizes[j];
            if (sizes.Sum() != n) throw new ArgumentException("every attribute's class sizes must sum to n", nameof(classSizes));
            var k = sizes.Length;
            var labels = sizes.SelectMany((size, c) => Enumerable.Repeat(c, size)).ToArray();
            rng.Shuffle(labels);
            var offsets = new double[k * d];
            for (var i = 0; i < offsets.Length; i++) offsets[i] = Gaussian(rng) * shift / Math.Sqrt(d);
            for (var u = 0; u < n; u++)
                for (var t = 0; t < d; t++) x[u * d + t] += offsets[labels[u] * d + t];
            attributes[j] = new LabeledAttribute(AttributeSpec.Numbered($"attr{j}", k), labels);
        }
        var values = x.Select(v => (float)v).ToArray();
        return (new EmbeddingMatrix(n, d, values), attributes);
    }

    /// <summary>||after - before||_F / ||before||_F.</summary>
    public static double RelativeChange(EmbeddingMatrix before, EmbeddingMatrix after)
    {
        double num = 0, den = 0;
        for (var i = 0; i < before.Values.Length; i++)
        {
            var diff = (double)after.Values[i] - before.Values[i];
            num += diff * diff;
            den += (double)before.Values[i] * before.Values[i];
        }
        return Math.Sqrt(num / den);
    }

    private static double Gaussian(Random rng)
    {
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
