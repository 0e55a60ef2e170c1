using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using static TorchSharp.torch;

namespace AttrCloak.Learning.Tests.Unlearning;

public sealed class AttributeUnlearningLossTests
{
    public AttributeUnlearningLossTests() => TorchRuntime.EnsureInitialised();

    private static LabeledAttribute[] TinyAttributes() =>
    [
        new(AttributeSpec.Numbered("a", 2), [0, 1, 0, 1, 0, 1, 0, 1, 0, -1]),
        new(AttributeSpec.Numbered("b", 3), [0, 0, 0, 1, 1, 1, 2, 2, -1, 2]),
    ];

    [Theory]
    [InlineData(RidgeMode.Absolute, 0.1)]
    [InlineData(RidgeMode.RelativeToMeanVariance, 0.05)]
    public void Autograd_gradient_matches_central_finite_differences(RidgeMode mode, double epsilon)
    {
        using var scope = NewDisposeScope();
        const int n = 10, d = 3;
        var rng = new Random(11);
        var values = Enumerable.Range(0, n * d).Select(_ => SyntheticUsers.Gaussian(rng)).ToArray();
        using var loss = new AttributeUnlearningLoss(TinyAttributes(), n, new CovarianceRidge(epsilon, mode));

        var x = tensor(values, [n, d], float64).requires_grad_(true);
        var total = loss.Compute(x).Total;
        var grad = autograd.grad([total], [x])[0].data<double>().ToArray();

        double Eval(double[] v)
        {
            using var inner = NewDisposeScope();
            using var noGrad = no_grad();
            return loss.Compute(tensor(v, [n, d], float64)).Total.item<double>();
        }

        const double h = 1e-6;
        for (var i = 0; i < values.Length; i++)
        {
            var plus = (double[])values.Clone();
            var minus = (double[])values.Clone();
            plus[i] += h;
            minus[i] -= h;
            var numeric = (Eval(plus) - Eval(minus)) / (2 * h);
            grad[i].ShouldBe(numeric, 1e-6 * Math.Max(1, Math.Abs(numeric)), $"coordinate {i}");
        }
    }

    [Fact]
    public void Users_with_unknown_labels_get_no_gradient_from_that_attribute()
    {
        using var scope = NewDisposeScope();
        var rng = new Random(2);
        var attributes = TinyAttributes();
        using var loss = new AttributeUnlearningLoss([attributes[0]], 10, CovarianceRidge.Relative(1e-3));
        var x = tensor(Enumerable.Range(0, 30).Select(_ => SyntheticUsers.Gaussian(rng)).ToArray(), [10, 3], float64).requires_grad_(true);
        var grad = autograd.grad([loss.Compute(x).Total], [x])[0];
        grad[9].abs().sum().item<double>().ShouldBe(0.0);
        grad[0].abs().sum().item<double>().ShouldBeGreaterThan(0.0);
    }

    [Fact]
    public void Classes_smaller_than_the_dimension_even_a_single_user_stay_finite()
    {
        using var scope = NewDisposeScope();
        const int n = 12, d = 8;
        // Class sizes 1, 2 and 9 in 8 dimensions: two rank-deficient covariances, one of them exactly zero.
        int[] labels = [0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2];
        var rng = new Random(4);
        var values = Enumerable.Range(0, n * d).Select(_ => (float)SyntheticUsers.Gaussian(rng)).ToArray();
        foreach (var ridge in new[] { CovarianceRidge.Absolute(1e-6), CovarianceRidge.Relative(1e-6), CovarianceRidge.Relative(1.0) })
        {
            using var loss = new AttributeUnlearningLoss([new LabeledAttribute(AttributeSpec.Numbered("tiny", 3), labels)], n, ridge);
            var x = tensor(values, [n, d], float32).requires_grad_(true);
            var value = loss.Compute(x);
            var grad = autograd.grad([value.Total], [x])[0];
            double.IsFinite(value.Total.item<double>()).ShouldBeTrue();
            value.Total.item<double>().ShouldBeGreaterThan(0);
            grad.isfinite().all().item<bool>().ShouldBeTrue();
        }
    }

    [Fact]
    public void Relative_ridge_makes_the_loss_invariant_to_rescaling_the_embeddings()
    {
        using var scope = NewDisposeScope();
        var (e, attributes) = SyntheticUsers.Users(60, 5, [2, 3], shift: 1.0, seed: 8);
        using var relative = new AttributeUnlearningLoss(attributes, 60, CovarianceRidge.Relative(0.1));
        using var absolute = new AttributeUnlearningLoss(attributes, 60, CovarianceRidge.Absolute(0.1));
        var x = tensor(e.Values, [60, 5], float32).to_type(float64);
        relative.Compute(x.mul(10.0)).Total.item<double>().ShouldBe(relative.Compute(x).Total.item<double>(), 1e-9);
        // With an absolute ridge shrinking the embeddings lowers the loss: the degenerate escape the relative mode closes.
        absolute.Compute(x.mul(0.1)).Total.item<double>().ShouldBeLessThan(absolute.Compute(x).Total.item<double>() * 0.5);
    }

    [Fact]
    public void Loss_is_the_mean_of_the_class_share_weighted_kl_per_attribute()
    {
        using var scope = NewDisposeScope();
        var (e, attributes) = SyntheticUsers.Users(40, 3, [2, 4], shift: 2.0, seed: 6);
        using var both = new AttributeUnlearningLoss(attributes, 40, CovarianceRidge.Absolute(0.01));
        var x = tensor(e.Values, [40, 3], float32);
        var value = both.Compute(x);
        var per = value.PerAttribute.data<double>().ToArray();
        per.Length.ShouldBe(2);
        value.Total.item<double>().ShouldBe(per.Average(), 1e-12);

        // Attribute 0 against an explicit weighted sum of independent KLs.
        var stats = GaussianFit.Fit(x, attributes[0].Labels, 2);
        var d = 3;
        double expected = 0;
        var means = stats.Means.data<double>().ToArray();
        var covs = stats.Covariances.data<double>().ToArray();
        var gm = stats.GlobalMean.data<double>().ToArray();
        var gc = stats.GlobalCovariance.data<double>().ToArray();
        var weights = stats.Weights.data<double>().ToArray();
        double[,] ToMatrix(double[] flat, int offset)
        {
            var m = new double[d, d];
            for (var i = 0; i < d; i++) for (var j = 0; j < d; j++) m[i, j] = flat[offset + i * d + j];
            return m;
        }
        for (var k = 0; k < 2; k++)
            expected += weights[k] * DenseMath.Kl(means[(k * d)..((k + 1) * d)], ToMatrix(covs, k * d * d), gm, ToMatrix(gc, 0), 0.01);
        per[0].ShouldBe(expected, 1e-9);
    }
}
