namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// Gaussian fits of one attribute's classes and of all its labelled users, float64, biased (1/N) as in the
/// slides (Eq. 13-16). Row k of <see cref="Means"/>/<see cref="Covariances"/> is class
/// <see cref="AttributeLayout.PresentClasses"/>[k]. The tensors stay attached to autograd when the input did.
/// </summary>
public sealed record ClassStatistics(
    Tensor Means,
    Tensor Covariances,
    Tensor Weights,
    Tensor GlobalMean,
    Tensor GlobalCovariance);

/// <summary>Fits per-class and global Gaussians with a few batched ops (no per-class loop).</summary>
public static class GaussianFit
{
    /// <summary>
    /// Class means [K, d], covariances [K, d, d], shares [K], global mean [d] and covariance [d, d] of the rows of
    /// <paramref name="users"/> ([n, d], any floating dtype; computed in float64) grouped by <paramref name="layout"/>.
    /// </summary>
    public static ClassStatistics Fit(Tensor users, AttributeLayout layout)
    {
        ArgumentNullException.ThrowIfNull(users);
        ArgumentNullException.ThrowIfNull(layout);
        if (users.dim() != 2 || users.shape[0] != layout.UserCount)
            throw new ArgumentException($"users must be [{layout.UserCount}, d], got [{string.Join(", ", users.shape)}]");

        var d = users.shape[1];
        var k = layout.PresentClasses.Length;
        var x = users.to_type(float64);
        // [C, ChunkSize, d] blocks of one class each; masked slots contribute nothing to sums or to gradients.
        var blocks = x.index_select(0, layout.PadIndex).view(layout.ChunkCount, AttributeLayout.ChunkSize, d);
        var counts = layout.Counts.unsqueeze(-1);
        var chunkSums = blocks.mul(layout.Mask).sum(1L);
        // Explicit, held Scalars throughout (see Scalars): implicit ones can be finalised mid-call.
        using var one = 1.0.ToScalar();
        var means = torch.zeros(k, d, dtype: float64).index_add(0, layout.ChunkClass, chunkSums, one).div(counts);
        // Centre by the class's own mean before the outer products: float64 cancellation is then harmless.
        var centred = blocks.sub(means.index_select(0, layout.ChunkClass).unsqueeze(1)).mul(layout.Mask);
        var chunkScatter = centred.transpose(1, 2).bmm(centred);
        var covariances = torch.zeros(k, d, d, dtype: float64).index_add(0, layout.ChunkClass, chunkScatter, one)
            .div(counts.unsqueeze(-1));

        // Global fit over the same labelled users from the class fits (law of total covariance), which is exact for
        // biased estimates and saves a second n*d*d pass.
        var w = layout.Weights;
        var globalMean = w.unsqueeze(0).mm(means).squeeze(0);
        var shift = means.sub(globalMean);
        var within = covariances.mul(w.view(k, 1, 1)).sum(0L);
        var between = shift.transpose(0, 1).mm(shift.mul(w.unsqueeze(-1)));
        var globalCovariance = within.Plus(between);
        return new ClassStatistics(means, covariances, w, globalMean, globalCovariance);
    }

    /// <summary>Convenience overload that builds the layout on the fly (tests, one-off fits).</summary>
    public static ClassStatistics Fit(Tensor users, int[] labels, int classCount)
    {
        using var layout = AttributeLayout.Create(labels, classCount);
        var stats = Fit(users, layout);
        // Weights belongs to the layout being disposed; hand back an owned copy.
        return stats with { Weights = stats.Weights.clone() };
    }
}
