using AttrCloak.Learning.Unlearning;
using static TorchSharp.torch;

namespace AttrCloak.Learning.Tests.Unlearning;

public sealed class MgdaWeightTests
{
    [Fact]
    public void Orthogonal_unit_gradients_give_one_half()
    {
        MgdaWeight.Solve([1.0, 0.0], [0.0, 1.0], 0, 1).ShouldBe(0.5, 1e-15);
    }

    [Fact]
    public void Interior_solution_matches_hand_computation()
    {
        // a = (1, 1), r = (-1, 0.5): (r - a).r = (-2)(-1) + (-0.5)(0.5) = 1.75; |a - r|^2 = 4 + 0.25 = 4.25.
        MgdaWeight.Solve([1.0, 1.0], [-1.0, 0.5], 0, 1).ShouldBe(1.75 / 4.25, 1e-15);
    }

    [Fact]
    public void Interior_solution_is_the_minimum_norm_combination()
    {
        var rng = new Random(5);
        var a = Enumerable.Range(0, 20).Select(_ => SyntheticUsers.Gaussian(rng)).ToArray();
        var r = Enumerable.Range(0, 20).Select(_ => SyntheticUsers.Gaussian(rng)).ToArray();
        var alpha = MgdaWeight.Solve(a, r, 0, 1);
        double Norm(double w) => a.Zip(r, (x, y) => Math.Pow(w * x + (1 - w) * y, 2)).Sum();
        alpha.ShouldBeInRange(0.0, 1.0);
        Norm(alpha).ShouldBeLessThanOrEqualTo(Norm(Math.Max(0, alpha - 1e-3)));
        Norm(alpha).ShouldBeLessThanOrEqualTo(Norm(Math.Min(1, alpha + 1e-3)));
    }

    [Fact]
    public void Negative_raw_alpha_clips_to_the_mode_floor()
    {
        // a = (2, 0), r = (1, 0): (r - a).r = -1, |a - r|^2 = 1 -> raw alpha -1.
        MgdaWeight.Solve([2.0, 0.0], [1.0, 0.0], 0, 1).ShouldBe(0.0);   // DD bounds
        MgdaWeight.Solve([2.0, 0.0], [1.0, 0.0], 0.1, 1).ShouldBe(0.1); // DF bounds (paper's max(min(x,1),0.1))
    }

    [Fact]
    public void Raw_alpha_above_one_clips_to_one_and_to_the_prose_cap()
    {
        // a = (1, 0), r = (3, 0): (r - a).r = 6, |a - r|^2 = 4 -> raw alpha 1.5.
        MgdaWeight.Solve([1.0, 0.0], [3.0, 0.0], 0.1, 1).ShouldBe(1.0);
        MgdaWeight.Solve([1.0, 0.0], [3.0, 0.0], 0, 0.1).ShouldBe(0.1);
    }

    [Fact]
    public void Zero_denominator_gives_a_finite_midpoint_not_nan()
    {
        MgdaWeight.Solve([1.0, 2.0], [1.0, 2.0], 0, 1).ShouldBe(0.5);
        MgdaWeight.Solve([0.0, 0.0], [0.0, 0.0], 0.1, 1).ShouldBe(0.5);
        MgdaWeight.Solve([0.0, 0.0], [0.0, 0.0], 0, 0.1).ShouldBe(0.1);
        MgdaWeight.FromProducts(double.NaN, 0, 0, 1).ShouldBe(0.5);
        MgdaWeight.FromProducts(1, double.Epsilon, 0.1, 1).ShouldBe(1.0); // overflow to +Infinity clips
    }

    [Fact]
    public void Tensor_overload_agrees_with_the_array_overload()
    {
        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        var rng = new Random(9);
        var a = Enumerable.Range(0, 12).Select(_ => SyntheticUsers.Gaussian(rng)).ToArray();
        var r = Enumerable.Range(0, 12).Select(_ => SyntheticUsers.Gaussian(rng) * 0.3).ToArray();
        var viaTensor = MgdaWeight.Solve(tensor(a, [3, 4], float64), tensor(r, [3, 4], float64), 0, 1);
        viaTensor.ShouldBe(MgdaWeight.Solve(a, r, 0, 1), 1e-12);
    }

    [Fact]
    public void Invalid_bounds_are_rejected()
    {
        Should.Throw<ArgumentException>(() => MgdaWeight.Solve([1.0], [0.0], 0.5, 0.2));
        Should.Throw<ArgumentException>(() => MgdaWeight.Solve([1.0], [0.0], -0.1, 1));
        Should.Throw<ArgumentException>(() => MgdaWeight.Solve([1.0, 2.0], [0.0], 0, 1));
    }
}
