using AttrCloak.Cli.Streaming;
using AttrCloak.Core.Data;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>
/// The benches' population seeding (batch AttrCloak-DF, as bootstrap): it must actually hide the classes, otherwise the
/// soak's shadow audit measures a population that still carries them.
/// </summary>
public sealed class BatchSeedingTests
{
    [Fact]
    public void Batch_DF_seeding_pulls_the_class_means_together_and_keeps_the_shape()
    {
        const int Users = 600, D = 16;
        var catalog = new[] { new AttributeSpec("gender", ["F", "M"]), new AttributeSpec("age", ["young", "mid", "old"]) };
        var rng = new Random(7);
        // Class-dependent means as in the benches' population (about 0.1 per dimension) on noise of sd 0.29.
        var classes = Enumerable.Range(0, Users).Select(_ => new[] { rng.Next(2), rng.Next(3) }).ToArray();
        var originals = classes.Select(c => Enumerable.Range(0, D)
            .Select(i => (float)((rng.NextDouble() - 0.5) + 0.1 * (c[0] * 2 - 1) * (i % 2 == 0 ? 1 : -1) + 0.1 * c[1] * (i % 3 == 0 ? 1 : 0))).ToArray()).ToArray();

        var cloaked = BatchSeeding.DataFree.Cloak(originals, classes, catalog, TestContext.Current.CancellationToken);

        BatchSeeding.DataFree.Method.ShouldBe("batch AttrCloak-DF");
        cloaked.Length.ShouldBe(Users);
        cloaked.ShouldAllBe(row => row.Length == D && row.All(float.IsFinite));
        var before = MeanGap(originals, classes, 0);
        var after = MeanGap(cloaked, classes, 0);
        // DF matches the class Gaussians: the gap between the gender means shrinks to a small part of what it was.
        after.ShouldBeLessThan(before * 0.25, $"gender mean gap {before:F3} -> {after:F3}");
        MeanGap(cloaked, classes, 1).ShouldBeLessThan(MeanGap(originals, classes, 1) * 0.5);
    }

    /// <summary>Euclidean distance between the means of the first and last class of an attribute.</summary>
    private static double MeanGap(float[][] rows, int[][] classes, int attribute)
    {
        var last = classes.Max(c => c[attribute]);
        double[] Mean(int k)
        {
            var members = rows.Where((_, u) => classes[u][attribute] == k).ToArray();
            return Enumerable.Range(0, rows[0].Length).Select(i => members.Average(r => (double)r[i])).ToArray();
        }
        var (a, b) = (Mean(0), Mean(last));
        return Math.Sqrt(a.Zip(b, (x, y) => (x - y) * (x - y)).Sum());
    }
}
