using AttrCloak.Core.Data;

namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// Strata of the population along a principal component, for class-mean equalisation WITHIN each stratum: an
/// attribute becomes one "cell" attribute per stratum (the attribute's labels of the stratum's users, unknown
/// elsewhere), whose class means <see cref="MeanEqualisation"/> puts on the stratum's own mean. The component is the
/// leading one of the attribute's pooled within-class covariance (<see cref="Direction"/>).
/// <para>
/// Why: on trained embeddings a class's offset is not one vector but changes along the population's main axis (on
/// ML-100K MF the women's offset differs between light and heavy raters, and that axis is the first component). Equal
/// class means over the whole population leave that interaction, which a non-linear attacker reads (leak-probe, MF
/// seed 1, mlp: gender 0.119 with equal means, 0.040 within 5 strata; age 0.113 and 0.037). The direction and the
/// decision to cut are one statistic per attribute of the whole population, never a user's own label, so they select
/// nothing per user that a shadow set could invert; with noise-matched targets each cell's mean is a fresh draw of its
/// own sampling error, as for whole classes.
/// </para>
/// <para>
/// Small classes are not cut finer than <see cref="MinCellUsers"/> users per cell on average: an attribute gets
/// median class size / <see cref="MinCellUsers"/> strata at most. A cell of a few users has a sampling error as large
/// as the signal, so its noise-matched target moves its users a lot for nothing (ML-100K's occupations, median 27
/// users, cut in 5: NDCG@10 fell by 5 % at strength 0.5).
/// </para>
/// </summary>
public static class PrincipalStrata
{
    /// <summary>The fewest users a median class keeps per stratum.</summary>
    public const int MinCellUsers = 20;

    /// <summary>Each user's stratum 0..count-1: equal-sized quantile bins of the score on the population's own leading
    /// principal component (no labels; the leak-probe experiment's reference).</summary>
    public static int[] Assign(EmbeddingMatrix x, int count) => Bins(Scores(x), count);

    /// <summary>One cell attribute per (attribute, stratum), with the index of the attribute it came from, and what was
    /// decided per attribute: at most <paramref name="count"/> strata, fewer for an attribute with small classes, none for
    /// one whose class offsets do not change along the component.</summary>
    public static StrataPlan Plan(EmbeddingMatrix x, IReadOnlyList<LabeledAttribute> attributes, int count, bool onlyWhereOffsetsVary = true)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(attributes);
        if (count < 1) throw new ArgumentException($"the number of strata must be >= 1, got {count}");
        var cells = new List<(LabeledAttribute, int)>();
        var decisions = new List<StrataDecision>();
        for (var a = 0; a < attributes.Count; a++)
        {
            var strata = Math.Clamp(MedianClassSize(attributes[a]) / MinCellUsers, 1, count);
            if (strata == 1)
            {
                cells.Add((attributes[a], a));
                decisions.Add(new StrataDecision(attributes[a].Name, 1, null));
                continue;
            }
            var bins = Bins(Scores(x, attributes[a]), strata);
            var (ratio, dof) = Interaction(x, attributes[a], bins, strata);
            if (onlyWhereOffsetsVary && ratio <= 1 + 3 * Math.Sqrt(2 / dof))
            {
                cells.Add((attributes[a], a));
                decisions.Add(new StrataDecision(attributes[a].Name, 1, ratio));
                continue;
            }
            foreach (var cell in Split(attributes[a], bins, strata)) cells.Add((cell, a));
            decisions.Add(new StrataDecision(attributes[a].Name, strata, ratio));
        }
        return new StrataPlan(cells, decisions);
    }

    /// <summary>The attribute's labels cut by <paramref name="strata"/>: one cell attribute per stratum.</summary>
    public static IEnumerable<LabeledAttribute> Split(LabeledAttribute attribute, int[] strata, int count)
    {
        ArgumentNullException.ThrowIfNull(attribute);
        ArgumentNullException.ThrowIfNull(strata);
        for (var s = 0; s < count; s++)
        {
            var labels = attribute.Labels;
            var inStratum = new int[labels.Length];
            for (var u = 0; u < labels.Length; u++) inStratum[u] = strata[u] == s ? labels[u] : LabeledAttribute.Unknown;
            yield return attribute with { Labels = inStratum };
        }
    }


    /// <summary>
    /// Whether the attribute's class offsets change from stratum to stratum by more than sampling noise: the
    /// whitened spread of each class's per-stratum offsets around its mean offset, T = sum_k sum_s n_ks
    /// ||delta_ks - delta_k||^2 (W^-1), against its no-interaction level, a chi-square with (K - 1)(S - 1) d degrees of
    /// freedom; stratify only when T exceeds it by three standard deviations. Computed once from the labels of the
    /// population being cloaked (one bit per attribute, nothing per user), so it selects nothing a shadow set could invert.
    /// Without it the strata only add noise where offsets are constant (the synthetic set's 500 users: gender 0.137
    /// with 5 strata at the loop's end).
    /// </summary>
    public static (double Ratio, double DegreesOfFreedom) Interaction(EmbeddingMatrix x, LabeledAttribute attribute, int[] strata, int count)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(attribute);
        ArgumentNullException.ThrowIfNull(strata);
        int n = x.Rows, d = x.Cols, k = attribute.ClassCount;
        var cellCounts = new double[count, k];
        var cellSums = new double[count * k * d];
        for (var u = 0; u < n; u++)
        {
            var c = attribute.Labels[u];
            if (c < 0) continue;
            var s = strata[u];
            cellCounts[s, c]++;
            var row = x.Row(u);
            for (var i = 0; i < d; i++) cellSums[(s * k + c) * d + i] += row[i];
        }
        using var scope = torch.NewDisposeScope();
        // Pooled within-cell covariance: deviations from each (stratum, class) mean.
        var residualValues = new double[n * d];
        var labelled = 0;
        for (var u = 0; u < n; u++)
        {
            var c = attribute.Labels[u];
            if (c < 0) continue;
            labelled++;
            var cell = strata[u] * k + c;
            var row = x.Row(u);
            for (var i = 0; i < d; i++) residualValues[u * d + i] = row[i] - cellSums[cell * d + i] / cellCounts[strata[u], c];
        }
        var residuals = torch.tensor(residualValues, [n, d], float64);
        using var divisor = ((double)Math.Max(labelled - count * k, 1)).ToScalar();
        var (values, vectors) = torch.linalg.eigh(residuals.mT.matmul(residuals).div_(divisor));
        using var floor = (values.max().item<double>() * 1e-9).ToScalar();
        var whiten = vectors.matmul(torch.diag(values.clamp_min(floor).rsqrt()));
        // Per cell: offset from the stratum's labelled mean, whitened.
        var statistic = 0.0;
        var classes = 0;
        var offsets = new double[count * k * d];
        var weights = new double[count * k];
        for (var s = 0; s < count; s++)
        {
            var total = 0.0;
            var stratumMean = new double[d];
            for (var c = 0; c < k; c++)
            {
                total += cellCounts[s, c];
                for (var i = 0; i < d; i++) stratumMean[i] += cellSums[(s * k + c) * d + i];
            }
            if (total == 0) continue;
            for (var c = 0; c < k; c++)
            {
                if (cellCounts[s, c] == 0) continue;
                weights[s * k + c] = cellCounts[s, c];
                for (var i = 0; i < d; i++) offsets[(s * k + c) * d + i] = cellSums[(s * k + c) * d + i] / cellCounts[s, c] - stratumMean[i] / total;
            }
        }
        var z = torch.tensor(offsets, [count * k, d], float64).matmul(whiten).data<double>().ToArray();
        for (var c = 0; c < k; c++)
        {
            var mean = new double[d];
            var weight = 0.0;
            for (var s = 0; s < count; s++)
            {
                var w = weights[s * k + c];
                weight += w;
                for (var i = 0; i < d; i++) mean[i] += w * z[(s * k + c) * d + i];
            }
            if (weight == 0) continue;
            classes++;
            for (var s = 0; s < count; s++)
                for (var i = 0; i < d; i++)
                {
                    var delta = z[(s * k + c) * d + i] - mean[i] / weight;
                    statistic += weights[s * k + c] * delta * delta;
                }
        }
        var dof = Math.Max(classes - 1, 1) * (count - 1.0) * d;
        // Whitening with an estimated W inflates squared norms by m / (m - d - 1) (the mean of an inverse Wishart with m
        // degrees of freedom): 1.15 at 500 users and d = 64, which alone would pass for an interaction.
        var m = labelled - (double)count * k;
        var deflation = m > d + 1 ? (m - d - 1) / m : 0;
        return (statistic / dof * deflation, dof);
    }

    private static int MedianClassSize(LabeledAttribute attribute)
    {
        var sizes = new int[attribute.ClassCount];
        foreach (var c in attribute.Labels)
            if (c >= 0) sizes[c]++;
        var present = sizes.Where(n => n > 0).OrderBy(n => n).ToArray();
        return present.Length == 0 ? 0 : present[present.Length / 2];
    }

    /// <summary>Every user's score on the leading principal component of all users.</summary>
    private static double[] Scores(EmbeddingMatrix x) => Scores(x, null);

    /// <summary>
    /// Every user's score on the leading principal component of the attribute's pooled WITHIN-class covariance (of all
    /// users without an attribute): where the attribute's own offsets dominate the population's spread, the plain
    /// component is the attribute's direction and its strata would be nearly one class each, with nothing left to
    /// equalise inside them.
    /// </summary>
    internal static double[] Scores(EmbeddingMatrix x, LabeledAttribute? attribute) => Project(x, Direction(x, attribute));

    /// <summary>Every user's score on <paramref name="direction"/>.</summary>
    internal static double[] Project(EmbeddingMatrix x, double[] direction)
    {
        var scores = new double[x.Rows];
        for (var u = 0; u < x.Rows; u++)
        {
            var row = x.Row(u);
            for (var i = 0; i < row.Length; i++) scores[u] += row[i] * direction[i];
        }
        return scores;
    }

    /// <summary>The unit leading eigenvector of the attribute's pooled within-class covariance (of all users without one).</summary>
    public static double[] Direction(EmbeddingMatrix x, LabeledAttribute? attribute)
    {
        ArgumentNullException.ThrowIfNull(x);
        int n = x.Rows, d = x.Cols;
        if (n < 2) return new double[d];
        var centredValues = new double[n * d];
        if (attribute is null)
        {
            var mean = new double[d];
            for (var u = 0; u < n; u++)
                for (var i = 0; i < d; i++) mean[i] += x.Row(u)[i] / (double)n;
            for (var u = 0; u < n; u++)
                for (var i = 0; i < d; i++) centredValues[u * d + i] = x.Row(u)[i] - mean[i];
        }
        else
        {
            var k = attribute.ClassCount;
            var sums = new double[k * d];
            var counts = new int[k];
            for (var u = 0; u < n; u++)
            {
                var c = attribute.Labels[u];
                if (c < 0) continue;
                counts[c]++;
                for (var i = 0; i < d; i++) sums[c * d + i] += x.Row(u)[i];
            }
            for (var u = 0; u < n; u++)
            {
                var c = attribute.Labels[u];
                if (c < 0) continue;
                for (var i = 0; i < d; i++) centredValues[u * d + i] = x.Row(u)[i] - sums[c * d + i] / counts[c];
            }
        }
        using var scope = torch.NewDisposeScope();
        var centred = torch.tensor(centredValues, [n, d], float64);
        var (_, vectors) = torch.linalg.eigh(centred.mT.matmul(centred));
        return vectors[.., d - 1].data<double>().ToArray();
    }

    internal static int[] Bins(double[] scores, int count)
    {
        if (count < 1) throw new ArgumentException($"the number of strata must be >= 1, got {count}");
        var n = scores.Length;
        var strata = new int[n];
        if (count == 1) return strata;
        var order = Enumerable.Range(0, n).OrderBy(u => scores[u]).ThenBy(u => u).ToArray();
        for (var rank = 0; rank < n; rank++) strata[order[rank]] = (int)((long)rank * count / n);
        return strata;
    }
}

/// <summary>The cells <see cref="MeanProjection"/> equalises and, per attribute, how many strata it got.</summary>
public sealed record StrataPlan(IReadOnlyList<(LabeledAttribute Cell, int Parent)> Cells, IReadOnlyList<StrataDecision> Decisions);

/// <summary>One attribute's strata: how many, and its class offsets' spread across the candidate strata relative to
/// sampling noise (null when its classes were too small to cut at all).</summary>
public sealed record StrataDecision(string Attribute, int Strata, double? InteractionRatio)
{
    public override string ToString() => InteractionRatio is { } r
        ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Attribute} {Strata} (offsets vary {r:0.00}x noise)")
        : $"{Attribute} {Strata} (classes too small)";
}
