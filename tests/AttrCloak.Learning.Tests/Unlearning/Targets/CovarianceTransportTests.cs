using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Learning.Tests.Unlearning;

public sealed class CovarianceTransportTests
{
    private static double[] RandomSpd(Random rng, int d)
    {
        var a = new double[d * d];
        for (var i = 0; i < a.Length; i++) a[i] = rng.NextDouble() * 2 - 1;
        var m = new double[d * d];
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++)
            {
                var v = i == j ? 0.5 : 0.0;
                for (var k = 0; k < d; k++) v += a[i * d + k] * a[j * d + k];
                m[i * d + j] = v;
            }
        return m;
    }

    private static double[] Multiply(double[] a, double[] b, int d)
    {
        var c = new double[d * d];
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++)
            {
                var v = 0.0;
                for (var k = 0; k < d; k++) v += a[i * d + k] * b[k * d + j];
                c[i * d + j] = v;
            }
        return c;
    }

    [Fact]
    public void The_map_turns_the_source_covariance_into_the_target_and_is_symmetric()
    {
        const int d = 6;
        var rng = new Random(3);
        var s = RandomSpd(rng, d);
        var t = RandomSpd(rng, d);
        var b = CovarianceTransport.TransportMatrix(s, t, d);
        var mapped = Multiply(Multiply(b, s, d), b, d);
        for (var i = 0; i < d * d; i++) mapped[i].ShouldBe(t[i], 1e-8);
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++) b[i * d + j].ShouldBe(b[j * d + i], 1e-10);
    }

    [Fact]
    public void A_class_already_at_its_target_is_not_moved()
    {
        const int d = 5;
        var s = RandomSpd(new Random(4), d);
        var b = CovarianceTransport.TransportMatrix(s, s, d);
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++) b[i * d + j].ShouldBe(i == j ? 1 : 0, 1e-8);
    }
}
