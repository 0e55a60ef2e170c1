using System.Reflection;

namespace AttrCloak.Learning;

/// <summary>
/// Long-lived <see cref="Scalar"/>s and Scalar-safe replacements for the TorchSharp calls that would otherwise
/// create temporary ones.
/// <para>
/// Why: TorchSharp 0.107's <see cref="Scalar"/> wraps a native at::Scalar* in a plain IntPtr (no SafeHandle) and
/// has a finaliser that frees it. Every implicit conversion (<c>t.mul(2.0)</c>, <c>a + b</c>, which is
/// <c>add(b, 1)</c>, <c>square()</c>, which is <c>pow(2)</c>, <c>softplus()</c>, <c>torch.normal</c>,
/// torch.optim.Adam's step...) creates such a Scalar, reads its handle and passes it to libtorch without a
/// GC.KeepAlive. From that read on the managed object is unreachable, so a GC triggered by ANOTHER thread can
/// run its finaliser, and free the native Scalar, while libtorch is still reading it: "Expected false to be
/// true ... toFloat" or silently wrong values. A single thread cannot trigger it (it does not allocate while it
/// is inside the native call), which is why the failures only appeared with concurrent work.
/// </para>
/// <para>
/// Rules for code in this solution: (1) constants come from the static fields here: static fields are GC roots,
/// so these objects are never finalised; (2) a run-time value is converted explicitly and held by a using
/// variable, <c>using var s = value.ToScalar();</c>, whose Dispose at the end of the scope keeps it reachable
/// until after every native call that reads it; (3) never call an overload that supplies a Scalar internally
/// (<c>add(Tensor)</c>, <c>add_(Tensor)</c>, <c>add(Scalar)</c>, <c>add_(Scalar)</c>, <c>square()</c>,
/// <c>softplus()</c>, <c>addcdiv_(a, b)</c>, <c>torch.normal(double, double, ...)</c>, the arithmetic operators
/// with a number or two tensors except <c>-</c>/<c>*</c> on two tensors) or torch.optim optimisers;
/// use the helpers below instead. The types match what TorchSharp's own implicit conversions use (int 1 as the
/// alpha of add, int 2 for square, double beta/threshold for softplus), so results are bit-identical.
/// </para>
/// </summary>
public static class Scalars
{
    /// <summary>int 1: the alpha TorchSharp's add(Tensor)/add_(Scalar) pass; valid for integer tensors too.</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>int 2: the exponent of TorchSharp's square().</summary>
    public static readonly Scalar Two = 2.ToScalar();

    /// <summary>double 0, for clamps of floating tensors.</summary>
    public static readonly Scalar Zero = 0.0.ToScalar();

    /// <summary>bool true, for masks.</summary>
    public static readonly Scalar True = true.ToScalar();

    /// <summary><paramref name="a"/> + <paramref name="b"/> (the operator, without its temporary alpha).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary><paramref name="a"/> += <paramref name="b"/> in place.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary>square() = pow(2), with a kept-alive exponent.</summary>
    public static Tensor Squared(this Tensor t) => t.pow(Two);

    /// <summary><c>nn.functional.softplus(x)</c> (beta 1, threshold 20), bit for bit, without temporary Scalars.</summary>
    public static Tensor Softplus(Tensor x) => SoftplusCall.Invoke(x);

    /// <summary>
    /// <c>torch.normal(mean, std, shape, generator)</c> of TorchSharp 0.107 (randn, then mul_(std), then add_(mean)),
    /// same draws, with the Scalars held until the native calls return.
    /// </summary>
    public static Tensor Normal(double mean, double std, long[] shape, Generator generator)
    {
        using var stdScalar = std.ToScalar();
        using var meanScalar = mean.ToScalar();
        return torch.randn(shape, generator: generator).mul_(stdScalar).add_(meanScalar, One);
    }

    private static class SoftplusCall
    {
        private static readonly Scalar Beta = 1.0.ToScalar();
        private static readonly Scalar Threshold = 20.0.ToScalar();

        // Tensor.softplus(double, double) is only "softplus1(beta, threshold)" with implicit Scalars; the
        // Scalar overload is internal, hence reflection. Fail loudly if a TorchSharp upgrade removes it.
        private static readonly Func<Tensor, Scalar, Scalar, Tensor> Native =
            typeof(Tensor).GetMethod("softplus1", BindingFlags.NonPublic | BindingFlags.Instance, [typeof(Scalar), typeof(Scalar)])
                ?.CreateDelegate<Func<Tensor, Scalar, Scalar, Tensor>>()
            ?? throw new MissingMethodException("TorchSharp.torch+Tensor", "softplus1(Scalar, Scalar) (see Scalars)");

        public static Tensor Invoke(Tensor x) => Native(x, Beta, Threshold);
    }
}
