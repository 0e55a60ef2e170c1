using AttrCloak.Core.Data;

namespace AttrCloak.Learning.Unlearning;

/// <summary>Per-class sums and counts of an attribute's labelled users, and their share-weighted global mean.</summary>
internal readonly record struct ClassSums(double[] Sums, double[] Counts, double[] GlobalMean)
{
    /// <summary>One pass over <paramref name="x"/>: Sums is row-major [ClassCount, d]; users with an unknown label are left out.</summary>
    public static ClassSums Of(EmbeddingMatrix x, LabeledAttribute attribute)
    {
        int d = x.Cols, k = attribute.ClassCount;
        var sums = new double[k * d];
        var counts = new double[k];
        for (var u = 0; u < attribute.Labels.Length; u++)
        {
            var c = attribute.Labels[u];
            if (c < 0) continue;
            counts[c]++;
            var row = x.Row(u);
            for (var i = 0; i < d; i++) sums[c * d + i] += row[i];
        }
        var total = counts.Sum();
        var global = new double[d];
        for (var c = 0; c < k; c++)
            for (var i = 0; i < d; i++) global[i] += sums[c * d + i] / total;
        return new ClassSums(sums, counts, global);
    }
}
