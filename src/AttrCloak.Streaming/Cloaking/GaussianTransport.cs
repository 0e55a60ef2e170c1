using AttrCloak.Learning;
using TorchSharp;
using static TorchSharp.torch;

namespace AttrCloak.Streaming.Cloaking;

/// <summary>
/// The Gaussian optimal-transport (Monge) map between N(m0, S) and N(m1, T): x -> m1 + B (x - m0) with
/// B = S^-1/2 (S^1/2 T S^1/2)^1/2 S^-1/2, the symmetric positive semi-definite matrix that pushes the first Gaussian
/// onto the second with the least expected squared displacement (the DF retention loss). Built in float64 with
/// libtorch's batched symmetric eigensolver; this runs on refresh, never per event.
/// </summary>
public static class GaussianTransport
{
    /// <summary>
    /// B for each pair (sources[i], targets[i]) of d x d row-major symmetric covariances. Both should be positive
    /// definite (add a ridge first); eigenvalues are floored at <paramref name="floor"/> to keep tiny negative rounding
    /// out of the square roots.
    /// </summary>
    public static double[][] MongeMatrices(IReadOnlyList<double[]> sources, IReadOnlyList<double[]> targets, int d, double floor = 1e-12)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(targets);
        if (sources.Count != targets.Count) throw new ArgumentException($"{sources.Count} sources but {targets.Count} targets");
        var count = sources.Count;
        if (count == 0) return [];
        var packedS = new double[count * d * d];
        var packedT = new double[count * d * d];
        for (var i = 0; i < count; i++)
        {
            if (sources[i].Length != d * d || targets[i].Length != d * d)
                throw new ArgumentException($"covariance {i} is not {d} x {d}");
            sources[i].CopyTo(packedS, i * d * d);
            targets[i].CopyTo(packedT, i * d * d);
        }

        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        var s = Symmetrise(tensor(packedS, [count, d, d], ScalarType.Float64));
        var t = Symmetrise(tensor(packedT, [count, d, d], ScalarType.Float64));
        var (sqrtS, invSqrtS) = SquareRoots(s, d, floor, inverseToo: true);
        var inner = Symmetrise(sqrtS.matmul(t).matmul(sqrtS));
        var (sqrtInner, _) = SquareRoots(inner, d, floor, inverseToo: false);
        var b = Symmetrise(invSqrtS!.matmul(sqrtInner).matmul(invSqrtS!));
        var values = b.contiguous().data<double>().ToArray();
        var result = new double[count][];
        for (var i = 0; i < count; i++) result[i] = values.AsSpan(i * d * d, d * d).ToArray();
        return result;
    }

    /// <summary>(M + M^T) / 2, without an implicit Scalar (see AttrCloak.Learning.Scalars).</summary>
    private static Tensor Symmetrise(Tensor m)
    {
        using var half = tensor(0.5, ScalarType.Float64);
        return m.add(m.transpose(-1, -2), Scalars.One).mul(half);
    }

    /// <summary>M^1/2 (and M^-1/2) of a batch of symmetric matrices through one eigendecomposition.</summary>
    private static (Tensor Sqrt, Tensor? InverseSqrt) SquareRoots(Tensor m, int d, double floor, bool inverseToo)
    {
        var (eigenvalues, eigenvectors) = linalg.eigh(m);
        // The floor and square roots in C#: a handful of values, and no Scalar is created on the way.
        var lambda = eigenvalues.contiguous().data<double>().ToArray();
        var roots = new double[lambda.Length];
        var inverseRoots = new double[lambda.Length];
        for (var i = 0; i < lambda.Length; i++)
        {
            var l = Math.Max(lambda[i], floor);
            roots[i] = Math.Sqrt(l);
            inverseRoots[i] = 1 / roots[i];
        }
        // [batch, 1, d]: scales column j of the eigenvector matrix by the j-th value.
        long[] shape = [m.shape[0], 1, d];
        var ut = eigenvectors.transpose(-1, -2);
        var sqrt = eigenvectors.mul(tensor(roots, shape, ScalarType.Float64)).matmul(ut);
        var inverse = inverseToo ? eigenvectors.mul(tensor(inverseRoots, shape, ScalarType.Float64)).matmul(ut) : null;
        return (sqrt, inverse);
    }
}
