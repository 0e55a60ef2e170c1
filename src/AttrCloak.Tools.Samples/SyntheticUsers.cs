using AttrCloak.Core.Data;

namespace AttrCloak.Tools.Samples;

/// <summary>
/// Seeded synthetic users: N(0, I) embeddings plus a class-dependent mean shift per attribute, and the simple
/// measures taken of them. Used by the unlearning tests and the unlearning experiments, so the same seed gives the
/// same users in both.
/// </summary>
public static class SyntheticUsers
{
    public static (EmbeddingMatrix Embeddings, LabeledAttribute[] Attributes) Users(
        int n, int d, int[] classCounts, double shift, int seed, double unknownRate = 0.0) =>
        Users(d, classCounts.Select(k => Balanced(n, k)).ToArray(), shift, seed, unknownRate);

    /// <summary>Class sizes as equal as possible.</summary>
    public static int[] Balanced(int n, int k) => Enumerable.Range(0, k).Select(c => n / k + (c < n % k ? 1 : 0)).ToArray();

    /// <summary>
    /// Users with attribute j's classes of the given sizes (each row of <paramref name="classSizes"/> sums to n),
    /// labels assigned by an independent seeded shuffle per attribute, and a random mean offset of norm about
    /// <paramref name="shift"/> per class.
    /// </summary>
    public static (EmbeddingMatrix Embeddings, LabeledAttribute[] Attributes) Users(
        int d, int[][] classSizes, double shift, int seed, double unknownRate = 0.0)
    {
        var n = classSizes[0].Sum();
        var rng = new Random(seed);
        var x = new double[n * d];
        for (var i = 0; i < x.Length; i++) x[i] = Gaussian(rng);
        var attributes = new LabeledAttribute[classSizes.Length];
        for (var j = 0; j < classSizes.Length; j++)
        {
            var sizes = classSizes[j];
            if (sizes.Sum() != n) throw new ArgumentException("every attribute's class sizes must sum to n");
            var k = sizes.Length;
            var labels = sizes.SelectMany((size, c) => Enumerable.Repeat(c, size)).ToArray();
            rng.Shuffle(labels);
            var offsets = new double[k * d];
            for (var i = 0; i < offsets.Length; i++) offsets[i] = Gaussian(rng) * shift / Math.Sqrt(d);
            for (var u = 0; u < n; u++)
                for (var t = 0; t < d; t++) x[u * d + t] += offsets[labels[u] * d + t];
            for (var u = 0; u < n; u++)
                if (unknownRate > 0 && rng.NextDouble() < unknownRate) labels[u] = LabeledAttribute.Unknown;
            attributes[j] = new LabeledAttribute(AttributeSpec.Numbered($"attr{j}", k), labels);
        }
        var values = x.Select(v => (float)v).ToArray();
        return (new EmbeddingMatrix(n, d, values), attributes);
    }

    public static double Gaussian(Random rng)
    {
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>
    /// Balanced accuracy of a nearest-class-mean attacker trained on even users and scored on odd users
    /// (user-disjoint halves), on the same kind of embedding it attacks.
    /// </summary>
    public static double NearestMeanBalancedAccuracy(EmbeddingMatrix e, LabeledAttribute a)
    {
        var d = e.Cols;
        var sums = new double[a.ClassCount, d];
        var counts = new int[a.ClassCount];
        for (var u = 0; u < e.Rows; u += 2)
        {
            var c = a.Labels[u];
            if (c < 0) continue;
            counts[c]++;
            var row = e.Row(u);
            for (var t = 0; t < d; t++) sums[c, t] += row[t];
        }
        var hits = new int[a.ClassCount];
        var totals = new int[a.ClassCount];
        for (var u = 1; u < e.Rows; u += 2)
        {
            var c = a.Labels[u];
            if (c < 0) continue;
            var row = e.Row(u);
            int best = -1;
            var bestDistance = double.PositiveInfinity;
            for (var k = 0; k < a.ClassCount; k++)
            {
                if (counts[k] == 0) continue;
                double dist = 0;
                for (var t = 0; t < d; t++)
                {
                    var diff = row[t] - sums[k, t] / counts[k];
                    dist += diff * diff;
                }
                if (dist < bestDistance) { bestDistance = dist; best = k; }
            }
            totals[c]++;
            if (best == c) hits[c]++;
        }
        var recalls = Enumerable.Range(0, a.ClassCount).Where(k => totals[k] > 0).Select(k => (double)hits[k] / totals[k]);
        return recalls.Average();
    }

    /// <summary>
    /// Relative change of the minimal "oracle" cloak that subtracts every attribute's estimated class-mean offset
    /// (mu_k - mu_global) from each user: about the least any cloak must move users to remove the mean shifts.
    /// </summary>
    public static double OracleRelativeChange(EmbeddingMatrix e, IReadOnlyList<LabeledAttribute> attributes)
    {
        var cloaked = e.Clone();
        var d = e.Cols;
        foreach (var a in attributes)
        {
            var sums = new double[a.ClassCount, d];
            var counts = new int[a.ClassCount];
            var global = new double[d];
            var known = 0;
            for (var u = 0; u < e.Rows; u++)
            {
                var c = a.Labels[u];
                if (c < 0) continue;
                counts[c]++;
                known++;
                for (var t = 0; t < d; t++) { sums[c, t] += cloaked.Values[u * d + t]; global[t] += cloaked.Values[u * d + t]; }
            }
            for (var u = 0; u < e.Rows; u++)
            {
                var c = a.Labels[u];
                if (c < 0) continue;
                for (var t = 0; t < d; t++) cloaked.Values[u * d + t] -= (float)(sums[c, t] / counts[c] - global[t] / known);
            }
        }
        return RelativeChange(e, cloaked);
    }

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
}
