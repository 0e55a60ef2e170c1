using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Tests.Statistics;

/// <summary>The class statistics math (pure: packed sums, moments, exact add and remove).</summary>
public sealed class SufficientStatisticsTests
{
    [Fact]
    public void Packed_upper_triangle_rows_follow_each_other()
    {
        const int d = 5;
        SufficientStatistics.Length(d).ShouldBe(1 + 5 + 15);
        for (var i = 0; i + 1 < d; i++)
            SufficientStatistics.RowStart(d, i + 1).ShouldBe(SufficientStatistics.RowStart(d, i) + d - i);
        (SufficientStatistics.RowStart(d, d - 1) + 1).ShouldBe(SufficientStatistics.Length(d));
    }

    [Fact]
    public void Moments_of_two_points_are_known()
    {
        double[] c = [0.5, -1];
        var acc = new double[SufficientStatistics.Length(2)];
        SufficientStatistics.AddOuter(acc, SufficientStatistics.Centre([1f, 2f], c), 1);
        SufficientStatistics.AddOuter(acc, SufficientStatistics.Centre([3f, -2f], c), 1);

        var (n, mean, cov) = SufficientStatistics.Moments(acc, c);

        n.ShouldBe(2);
        mean.ShouldBe([2.0, 0.0]);
        // Biased covariance of (1,2),(3,-2): var x = 1, var y = 4, cov = -2.
        cov.ShouldBe([1.0, -2.0, -2.0, 4.0]);
    }

    [Fact]
    public void Adding_and_removing_a_point_restores_the_sums_and_an_empty_class_is_exactly_zero()
    {
        var rng = new Random(3);
        const int d = 13; // not a multiple of the vector width
        var c = new double[d];
        var acc = new double[SufficientStatistics.Length(d)];
        var points = Enumerable.Range(0, 50).Select(_ => SufficientStatistics.Centre(RandomVector(rng, d, offset: 2), c)).ToList();
        foreach (var p in points) SufficientStatistics.AddOuter(acc, p, 1);
        var before = (double[])acc.Clone();
        var extra = SufficientStatistics.Centre(RandomVector(rng, d, scale: 100), c);

        SufficientStatistics.AddOuter(acc, extra, 1);
        SufficientStatistics.AddOuter(acc, extra, -1);
        MaxAbsDiff(acc, before).ShouldBeLessThan(1e-10);

        var delta = new double[acc.Length];
        foreach (var p in points) SufficientStatistics.AddOuter(delta, p, -1);
        SufficientStatistics.AddInPlace(acc, delta);
        acc.ShouldAllBe(v => v == 0);
    }

    private static float[] RandomVector(Random rng, int d, double offset = 0, double scale = 1)
    {
        var v = new float[d];
        for (var i = 0; i < d; i++)
            v[i] = (float)(offset + scale * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()) + 0.3 * i / d);
        return v;
    }

    private static double MaxAbsDiff(double[] a, double[] b)
    {
        a.Length.ShouldBe(b.Length);
        var m = 0.0;
        for (var i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
