using AttrCloak.Core.Data;

namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// Sends every class's covariance to its target (the current global covariance plus the class's offset C_k of
/// <see cref="ClassTargets"/>) in closed form: the Gaussian optimal-transport map of the class,
/// x -> m_k + B_k (x - m_k) with B_k = S^-1/2 (S^1/2 T_k S^1/2)^1/2 S^-1/2, the least-displacement linear map that
/// turns covariance S into T_k, class means unchanged. S is the class covariance shrunk toward the pooled
/// within-class covariance with the weight of <c>priorUsers</c> users (a class smaller than the dimension has a
/// singular covariance, and its map is then mostly the identity).
/// <para>
/// Why not gradient steps on L_AU: Adam moves every coordinate of every user by about its step whatever the
/// gradient's size, a per-user non-linear move that a shadow MLP learns and inverts (noise control, ML-100K labels,
/// covariance strength 1: mlp 0.135 below chance on gender); a per-class linear map to a noise-matched target
/// leaves nothing of the kind.
/// </para>
/// </summary>
public static class CovarianceTransport
{
    /// <summary>Applies one map per class of each attribute with a covariance target, attribute after attribute.</summary>
    public static void Apply(EmbeddingMatrix x, IReadOnlyList<LabeledAttribute> attributes, IReadOnlyList<ClassTargets?> targets, double priorUsers)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(attributes);
        ArgumentNullException.ThrowIfNull(targets);
        for (var a = 0; a < attributes.Count; a++)
            if (targets[a] is { CovarianceOffsetValues: not null } t)
                ApplyOne(x, attributes[a], t, priorUsers);
    }

    private static void ApplyOne(EmbeddingMatrix x, LabeledAttribute attribute, ClassTargets target, double priorUsers)
    {
        var d = x.Cols;
        var k = attribute.ClassCount;
        var members = new List<int>[k];
        for (var c = 0; c < k; c++) members[c] = [];
        for (var u = 0; u < attribute.Labels.Length; u++)
            if (attribute.Labels[u] >= 0) members[attribute.Labels[u]].Add(u);
        var labelled = members.Sum(m => m.Count);
        if (labelled < 2) return;

        var means = new double[k][];
        var covs = new double[k][];
        var globalMean = new double[d];
        for (var c = 0; c < k; c++)
        {
            means[c] = new double[d];
            foreach (var u in members[c])
            {
                var row = x.Row(u);
                for (var i = 0; i < d; i++) means[c][i] += row[i];
            }
            for (var i = 0; i < d; i++)
            {
                globalMean[i] += means[c][i] / labelled;
                if (members[c].Count > 0) means[c][i] /= members[c].Count;
            }
        }
        var global = new double[d * d];
        var within = new double[d * d];
        var centred = new double[d];
        for (var c = 0; c < k; c++)
        {
            covs[c] = new double[d * d];
            foreach (var u in members[c])
            {
                var row = x.Row(u);
                for (var i = 0; i < d; i++) centred[i] = row[i] - means[c][i];
                for (var i = 0; i < d; i++)
                {
                    var ci = centred[i];
                    var gi = row[i] - globalMean[i];
                    for (var j = 0; j < d; j++)
                    {
                        covs[c][i * d + j] += ci * centred[j];
                        global[i * d + j] += gi * (row[j] - globalMean[j]);
                    }
                }
            }
            for (var i = 0; i < d * d; i++) within[i] += covs[c][i] / labelled;
            if (members[c].Count > 0)
                for (var i = 0; i < d * d; i++) covs[c][i] /= members[c].Count;
        }
        for (var i = 0; i < d * d; i++) global[i] /= labelled;

        var offsets = target.CovarianceOffsetValues!;
        var fitIndex = target.FitIndex;
        var moved = new double[d];
        for (var c = 0; c < k; c++)
        {
            var n = members[c].Count;
            var f = fitIndex is null ? c : fitIndex[c];
            if (n < 2 || f < 0) continue;
            var s = new double[d * d];
            for (var i = 0; i < d * d; i++) s[i] = (n * covs[c][i] + priorUsers * within[i]) / (n + priorUsers);
            var t = new double[d * d];
            for (var i = 0; i < d * d; i++) t[i] = global[i] + offsets[f * d * d + i];
            var b = TransportMatrix(s, t, d);
            foreach (var u in members[c])
            {
                var row = x.Row(u);
                for (var i = 0; i < d; i++) centred[i] = row[i] - means[c][i];
                for (var i = 0; i < d; i++)
                {
                    var v = 0.0;
                    for (var j = 0; j < d; j++) v += b[i * d + j] * centred[j];
                    moved[i] = v;
                }
                for (var i = 0; i < d; i++) row[i] = (float)(means[c][i] + moved[i]);
            }
        }
    }

    /// <summary>B = S^-1/2 (S^1/2 T S^1/2)^1/2 S^-1/2, with both matrices' eigenvalues floored (T may be indefinite after its noise).</summary>
    internal static double[] TransportMatrix(double[] s, double[] t, int d)
    {
        using var scope = torch.NewDisposeScope();
        var floorScale = Math.Max(Trace(s, d) / d, 1e-30) * 1e-6;
        var (sHalf, sInvHalf) = SqrtAndInverseSqrt(torch.tensor(s, [d, d], float64), floorScale);
        var tt = Symmetric(torch.tensor(t, [d, d], float64));
        var (tv, tq) = torch.linalg.eigh(tt);
        tt = tq.matmul(torch.diag(tv.clamp_min(floorScale))).matmul(tq.mT);
        var middle = Symmetric(sHalf.matmul(tt).matmul(sHalf));
        var (mv, mq) = torch.linalg.eigh(middle);
        var middleHalf = mq.matmul(torch.diag(mv.clamp_min(0).sqrt())).matmul(mq.mT);
        var b = Symmetric(sInvHalf.matmul(middleHalf).matmul(sInvHalf));
        return b.data<double>().ToArray();
    }

    private static (Tensor Half, Tensor InverseHalf) SqrtAndInverseSqrt(Tensor m, double floor)
    {
        var (v, q) = torch.linalg.eigh(Symmetric(m));
        var root = v.clamp_min(floor).sqrt();
        return (q.matmul(torch.diag(root)).matmul(q.mT), q.matmul(torch.diag(root.reciprocal())).matmul(q.mT));
    }

    private static Tensor Symmetric(Tensor m) => (m + m.mT) / 2;

    private static double Trace(double[] m, int d)
    {
        var sum = 0.0;
        for (var i = 0; i < d; i++) sum += m[i * d + i];
        return sum;
    }
}
