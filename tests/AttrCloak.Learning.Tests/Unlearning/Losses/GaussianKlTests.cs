using AttrCloak.Learning.Unlearning;
using static TorchSharp.torch;

namespace AttrCloak.Learning.Tests.Unlearning;

public sealed class GaussianKlTests
{
    public GaussianKlTests() => TorchRuntime.EnsureInitialised();

    private static Tensor Matrix(double[,] a) => tensor(DenseMath.Flatten(a), [a.GetLength(0), a.GetLength(1)], float64);

    [Fact]
    public void Kl_of_identical_gaussians_is_zero()
    {
        using var scope = NewDisposeScope();
        var rng = new Random(1);
        var s = DenseMath.RandomSpd(rng, 5);
        var mu = tensor(new[] { 0.3, -1.0, 2.0, 0.0, 0.5 }, float64);
        var kl = GaussianKl.Divergence(mu, Matrix(s), mu, Matrix(s), 1e-6).item<double>();
        Math.Abs(kl).ShouldBeLessThan(1e-10);
    }

    [Fact]
    public void Closed_form_matches_explicit_inverse_and_determinant_batched()
    {
        using var scope = NewDisposeScope();
        var rng = new Random(7);
        const int d = 4;
        const double ridge = 0.05;
        var sg = DenseMath.RandomSpd(rng, d);
        var muG = Enumerable.Range(0, d).Select(_ => SyntheticUsers.Gaussian(rng)).ToArray();
        var classes = Enumerable.Range(0, 3).Select(_ => (
            Mu: Enumerable.Range(0, d).Select(_ => SyntheticUsers.Gaussian(rng)).ToArray(),
            Sigma: DenseMath.RandomSpd(rng, d))).ToArray();

        var muK = stack(classes.Select(c => tensor(c.Mu, float64)).ToArray());
        var sigmaK = stack(classes.Select(c => Matrix(c.Sigma)).ToArray());
        var kl = GaussianKl.Divergence(muK, sigmaK, tensor(muG, float64), Matrix(sg), ridge).data<double>().ToArray();

        kl.Length.ShouldBe(3);
        for (var k = 0; k < classes.Length; k++)
        {
            var expected = DenseMath.Kl(classes[k].Mu, classes[k].Sigma, muG, sg, ridge);
            expected.ShouldBeGreaterThan(0);
            kl[k].ShouldBe(expected, 1e-9 * Math.Max(1, expected));
        }
    }

    [Fact]
    public void One_dimensional_case_matches_the_textbook_formula()
    {
        using var scope = NewDisposeScope();
        const double muK = 0.7, varK = 0.4, muG = -0.2, varG = 1.3, ridge = 0.01;
        double vk = varK + ridge, vg = varG + ridge;
        var expected = 0.5 * (Math.Log(vg / vk) - 1 + vk / vg + (muG - muK) * (muG - muK) / vg);
        var kl = GaussianKl.Divergence(tensor(new[] { muK }, float64), tensor(new[] { varK }, [1, 1], float64),
            tensor(new[] { muG }, float64), tensor(new[] { varG }, [1, 1], float64), ridge).item<double>();
        kl.ShouldBe(expected, 1e-12);
    }

    [Fact]
    public void Class_statistics_match_a_direct_per_class_computation()
    {
        using var scope = NewDisposeScope();
        var rng = new Random(3);
        const int n = 11, d = 3, k = 4; // class 2 is empty, user 5 unknown
        int[] labels = [0, 1, 0, 3, 1, -1, 0, 3, 1, 0, 3];
        var x = new double[n * d];
        for (var i = 0; i < x.Length; i++) x[i] = SyntheticUsers.Gaussian(rng);
        var stats = GaussianFit.Fit(tensor(x, [n, d], float64), labels, k);

        int[] present = [0, 1, 3];
        var means = stats.Means.data<double>().ToArray();
        var covs = stats.Covariances.data<double>().ToArray();
        var known = labels.Count(c => c >= 0);
        var globalMean = new double[d];
        for (var u = 0; u < n; u++) if (labels[u] >= 0) for (var t = 0; t < d; t++) globalMean[t] += x[u * d + t] / known;

        for (var j = 0; j < present.Length; j++)
        {
            var users = Enumerable.Range(0, n).Where(u => labels[u] == present[j]).ToArray();
            var mu = new double[d];
            foreach (var u in users) for (var t = 0; t < d; t++) mu[t] += x[u * d + t] / users.Length;
            for (var t = 0; t < d; t++) means[j * d + t].ShouldBe(mu[t], 1e-12);
            for (var a = 0; a < d; a++)
                for (var b = 0; b < d; b++)
                {
                    var c = users.Sum(u => (x[u * d + a] - mu[a]) * (x[u * d + b] - mu[b])) / users.Length;
                    covs[(j * d + a) * d + b].ShouldBe(c, 1e-12);
                }
        }
        var gm = stats.GlobalMean.data<double>().ToArray();
        var gc = stats.GlobalCovariance.data<double>().ToArray();
        for (var a = 0; a < d; a++)
        {
            gm[a].ShouldBe(globalMean[a], 1e-12);
            for (var b = 0; b < d; b++)
            {
                var c = Enumerable.Range(0, n).Where(u => labels[u] >= 0)
                    .Sum(u => (x[u * d + a] - globalMean[a]) * (x[u * d + b] - globalMean[b])) / known;
                gc[a * d + b].ShouldBe(c, 1e-12);
            }
        }
        stats.Weights.data<double>().ToArray().ShouldBe([4.0 / 10, 3.0 / 10, 3.0 / 10], 1e-15);
    }
}
