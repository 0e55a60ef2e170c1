using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Learning.Tests.Unlearning;

public sealed class PrincipalStrataTests
{
    private static double[] Mean(EmbeddingMatrix x, IEnumerable<int> rows)
    {
        var list = rows.ToArray();
        var sum = new double[x.Cols];
        foreach (var u in list)
            for (var i = 0; i < x.Cols; i++) sum[i] += x.Row(u)[i];
        return sum.Select(v => v / list.Length).ToArray();
    }

    [Fact]
    public void Strata_are_equal_sized_bins_along_the_leading_principal_component()
    {
        TorchRuntime.EnsureInitialised();
        // Axis 2 has ten times the spread of the others: the leading component.
        var rng = new Random(5);
        const int n = 200, d = 4;
        var values = new float[n * d];
        for (var u = 0; u < n; u++)
            for (var i = 0; i < d; i++) values[u * d + i] = (float)(rng.NextDouble() - 0.5) * (i == 2 ? 10 : 1);
        var x = new EmbeddingMatrix(n, d, values);
        var strata = PrincipalStrata.Assign(x, 4);
        Enumerable.Range(0, 4).Select(s => strata.Count(v => v == s)).ShouldAllBe(c => c == 50);
        // Monotone along axis 2 (either sign of the eigenvector): every stratum's range is disjoint from the next one's.
        var ranges = Enumerable.Range(0, 4).Select(s => Enumerable.Range(0, n).Where(u => strata[u] == s).Select(u => x.Row(u)[2]).ToArray())
            .Select(v => (Min: v.Min(), Max: v.Max())).ToArray();
        var ascending = ranges[0].Max < ranges[1].Min;
        for (var s = 0; s + 1 < 4; s++)
            (ascending ? ranges[s].Max < ranges[s + 1].Min : ranges[s].Min > ranges[s + 1].Max).ShouldBeTrue($"stratum {s} overlaps stratum {s + 1}");
        PrincipalStrata.Assign(x, 1).ShouldAllBe(s => s == 0);
    }

    [Fact]
    public void Each_cell_keeps_its_attribute_labels_inside_its_stratum_only()
    {
        var spec = new AttributeSpec("gender", ["F", "M"]);
        var attribute = new LabeledAttribute(spec, [0, 1, LabeledAttribute.Unknown, 1, 0, 0]);
        var strata = new[] { 0, 0, 1, 1, 2, 2 };
        var cells = PrincipalStrata.Split(attribute, strata, 3).ToArray();
        cells.Length.ShouldBe(3);
        cells.ShouldAllBe(c => c.Name == "gender");
        cells[0].Labels.ShouldBe([0, 1, -1, -1, -1, -1]);
        cells[1].Labels.ShouldBe([-1, -1, -1, 1, -1, -1]);
        cells[2].Labels.ShouldBe([-1, -1, -1, -1, 0, 0]);
    }

    [Fact]
    public void An_attribute_with_small_classes_is_cut_into_fewer_strata_or_none()
    {
        TorchRuntime.EnsureInitialised();
        var (x, attributes) = SyntheticUsers.Users(d: 4, classSizes: [[100, 100], [20, 20, 20, 20, 20, 20, 20, 20, 20, 20]], shift: 1.0, seed: 2);
        var cells = PrincipalStrata.Plan(x, attributes, 5, onlyWhereOffsetsVary: false).Cells;
        // Median class 100 users: 100 / MinCellUsers = 5 strata; median 20: 1 (kept whole, the attribute itself).
        cells.Count(c => c.Parent == 0).ShouldBe(5);
        cells.Single(c => c.Parent == 1).Cell.ShouldBeSameAs(attributes[1]);
    }

    /// <summary>n users, axis 0 the leading component; class 1 shifted along axis 1 by +0.6, or by +0.6 sign(x_0) when the offset varies.</summary>
    private static (EmbeddingMatrix X, LabeledAttribute Attribute) Interacting(bool offsetVaries, int seed)
    {
        const int n = 1200, d = 8;
        var rng = new Random(seed);
        var labels = new int[n];
        var values = new float[n * d];
        for (var u = 0; u < n; u++)
        {
            labels[u] = rng.Next(2);
            for (var i = 0; i < d; i++) values[u * d + i] = (float)(Gaussian(rng) * (i == 0 ? 4 : 1));
            if (labels[u] == 1) values[u * d + 1] += 0.6f * (offsetVaries ? Math.Sign(values[u * d]) : 1);
        }
        return (new EmbeddingMatrix(n, d, values), new LabeledAttribute(new AttributeSpec("gender", ["F", "M"]), labels));
    }

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Only_an_attribute_whose_class_offset_changes_along_the_component_is_cut(int seed)
    {
        TorchRuntime.EnsureInitialised();
        var (varying, varyingAttribute) = Interacting(offsetVaries: true, seed);
        var cut = PrincipalStrata.Plan(varying, [varyingAttribute], 5).Decisions.Single();
        cut.Strata.ShouldBe(5, cut.ToString());
        var (constant, constantAttribute) = Interacting(offsetVaries: false, seed);
        var kept = PrincipalStrata.Plan(constant, [constantAttribute], 5).Decisions.Single();
        kept.Strata.ShouldBe(1, kept.ToString());
        // No signal at all: the statistic sits at its no-interaction level (1) once the whitening bias is taken out
        // (mean of 20 label shuffles; one has 32 degrees of freedom here, a standard deviation of 0.25).
        var rng = new Random(seed);
        var ratios = Enumerable.Range(0, 20).Select(_ =>
        {
            var labels = (int[])constantAttribute.Labels.Clone();
            rng.Shuffle(labels);
            return PrincipalStrata.Plan(constant, [constantAttribute with { Labels = labels }], 5).Decisions.Single().InteractionRatio!.Value;
        }).ToArray();
        ratios.Average().ShouldBeInRange(0.85, 1.15, string.Join(" ", ratios.Select(r => r.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture))));
    }

    [Fact]
    public void Users_without_a_label_are_left_where_they_are_and_nothing_becomes_non_finite()
    {
        TorchRuntime.EnsureInitialised();
        var (x, attributes) = SyntheticUsers.Users(d: 6, classSizes: [[150, 250]], shift: 1.5, seed: 4, unknownRate: 0.2);
        var labels = attributes[0].Labels;
        labels.Count(l => l == LabeledAttribute.Unknown).ShouldBeGreaterThan(40);
        var options = CloakPresets.DataFree with { Strata = 4, StrataEverywhere = true };
        var equalisation = MeanEqualisation.Build(x, attributes, null, [new AttributeStrength(1, 0)], options);
        equalisation.Decisions!.Single().Strata.ShouldBeGreaterThan(1);
        var cloaked = x.Clone();
        equalisation.Apply(cloaked);
        cloaked.Values.ShouldAllBe(v => float.IsFinite(v));
        for (var u = 0; u < x.Rows; u++)
            if (labels[u] == LabeledAttribute.Unknown)
                cloaked.Row(u).ToArray().ShouldBe(x.Row(u).ToArray(), $"user {u} has no label");
    }

    [Fact]
    public void With_strata_every_cell_ends_with_equal_class_means_and_the_offset_along_the_component_is_gone()
    {
        TorchRuntime.EnsureInitialised();
        var (x, attributes) = SyntheticUsers.Users(d: 6, classSizes: [[120, 180]], shift: 2.0, seed: 8);
        const int count = 3;
        var options = CloakPresets.DataFree with { Target = EqualisationTarget.Empirical, Strata = count, StrataEverywhere = true, MaxIterations = 0 };
        var equalisation = MeanEqualisation.Build(x, attributes, null, [new AttributeStrength(1, 0)], options);
        var cloaked = x.Clone();
        equalisation.Apply(cloaked);
        equalisation.Decisions!.Single().Strata.ShouldBe(count);
        var cells = equalisation.LastStage;
        cells.Count.ShouldBe(count);
        var all = Enumerable.Range(0, x.Rows).ToArray();
        foreach (var cell in cells)
        {
            var inStratum = all.Where(u => cell.Labels[u] >= 0).ToArray();
            inStratum.Length.ShouldBe(x.Rows / count);
            var stratumMean = Mean(cloaked, inStratum);
            for (var c = 0; c < 2; c++)
            {
                var classMean = Mean(cloaked, inStratum.Where(u => cell.Labels[u] == c));
                for (var i = 0; i < x.Cols; i++) classMean[i].ShouldBe(stratumMean[i], 1e-3, $"class {c} dim {i}");
            }
        }
        // Along the component the whole classes agree too (the strata are balanced): what the strata alone would keep.
        var p = PrincipalStrata.Direction(x, attributes[0]);
        double Along(int c) => all.Where(u => attributes[0].Labels[u] == c).Average(u => Enumerable.Range(0, x.Cols).Sum(i => cloaked.Row(u)[i] * p[i]));
        Along(0).ShouldBe(Along(1), 0.05);
    }
}
