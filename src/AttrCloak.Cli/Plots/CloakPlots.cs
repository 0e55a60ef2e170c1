using AttrCloak.Cli.Experiments;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using ScottPlot;

namespace AttrCloak.Cli.Plots;

/// <summary>
/// PNG figures of a cloaking run: the paper's Fig. 4 (per-class distributions of selected embedding dimensions,
/// before and after) and the optimisation curves (alpha_u, L_AU per attribute, L_R over iterations).
/// </summary>
public static class CloakPlots
{
    private const int DimensionsShown = 4;

    /// <summary>Figures for the first seed of every cloaked method of a `reproduce` run.</summary>
    public static IReadOnlyList<string> WriteAll(ReproduceResult result, string dir)
    {
        var data = result.Data ?? throw new InvalidOperationException("the result holds no data set");
        var first = result.Seeds[0];
        var original = result.Runs.First(r => r.Seed == first && r.Method == ReproduceResult.Original).Embeddings!;
        var files = new List<string>();
        foreach (var run in result.Runs.Where(r => r.Seed == first && r.Cloak is not null))
            files.AddRange(WriteRun(data, original, run.Cloak!, dir, run.Method));
        files.Add(PrivacySummary(result, dir));
        return files;
    }

    public static IReadOnlyList<string> WriteRun(RecDataset data, EmbeddingMatrix original, CloakResult result, string dir, string method)
    {
        var files = WriteDistributions(data, result.AttributeNames, original, result.Embeddings, dir, method).ToList();
        files.Add(Curves(result, Path.Combine(dir, $"{method.ToLowerInvariant()}_curves.png"), method));
        return files;
    }

    /// <summary>The paper's Fig. 4 for every binary attribute among <paramref name="attributes"/> (a cloak without curves, e.g. AttrCloak-OT).</summary>
    public static IReadOnlyList<string> WriteDistributions(RecDataset data, IEnumerable<string> attributes, EmbeddingMatrix original,
        EmbeddingMatrix cloaked, string dir, string method)
    {
        Directory.CreateDirectory(dir);
        var files = new List<string>();
        foreach (var name in attributes)
        {
            var a = data.AttributeIndex(name);
            // Fig. 4 shows gender; every binary attribute gets the same figure.
            if (data.Attributes[a].ClassCount != 2) continue;
            files.Add(Distributions(data.Attributes[a], data.Labels[a], original, cloaked,
                Path.Combine(dir, $"{method.ToLowerInvariant()}_{name}_distributions.png"), method));
        }
        return files;
    }

    /// <summary>
    /// Kernel density of each class on the dimensions where the classes differ most before cloaking
    /// (largest standardised mean difference); top row before, bottom row after.
    /// </summary>
    private static string Distributions(AttributeSpec spec, int[] labels, EmbeddingMatrix before, EmbeddingMatrix after, string path, string method)
    {
        var dims = Enumerable.Range(0, before.Cols)
            .OrderByDescending(j => Separation(before, labels, j))
            .Take(Math.Min(DimensionsShown, before.Cols)).ToArray();
        var multiplot = new Multiplot();
        multiplot.AddPlots(2 * dims.Length);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(2, dims.Length);
        for (var row = 0; row < 2; row++)
        {
            var matrix = row == 0 ? before : after;
            for (var k = 0; k < dims.Length; k++)
            {
                var plot = multiplot.GetPlot(row * dims.Length + k);
                var column = Enumerable.Range(0, matrix.Rows).Select(i => (double)matrix.Values[i * matrix.Cols + dims[k]]).ToArray();
                var lo = column.Min();
                var hi = column.Max();
                for (var c = 0; c < spec.ClassCount; c++)
                {
                    var values = column.Where((_, i) => labels[i] == c).ToArray();
                    if (values.Length < 2) continue;
                    var (xs, ys) = Density(values, lo, hi);
                    var line = plot.Add.ScatterLine(xs, ys);
                    line.LegendText = $"{spec.ClassNames[c]} ({c})";
                    line.LineWidth = 2;
                }
                plot.Title($"{(row == 0 ? "before" : "after")} · dim {dims[k]}");
                plot.ShowLegend(Alignment.UpperRight);
            }
        }
        multiplot.SavePng(path, 360 * dims.Length, 640);
        return path;
    }

    private static string Curves(CloakResult result, string path, string method)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(3);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(1, 3);
        var it = result.Trace.Select(t => (double)t.Iteration).ToArray();

        var alpha = multiplot.GetPlot(0);
        alpha.Add.ScatterLine(it, result.Trace.Select(t => t.AlphaU).ToArray()).LineWidth = 2;
        alpha.Title($"{method}: alpha_u (clip [{result.AlphaMin}, {result.AlphaMax}])");
        alpha.XLabel("iteration");

        var au = multiplot.GetPlot(1);
        var total = au.Add.ScatterLine(it, result.Trace.Select(t => t.LossAu).ToArray());
        total.LegendText = "L_AU (mean)";
        total.LineWidth = 3;
        for (var j = 0; j < result.AttributeNames.Count; j++)
        {
            var line = au.Add.ScatterLine(it, result.Trace.Select(t => t.LossAuPerAttribute[j]).ToArray());
            line.LegendText = result.AttributeNames[j];
        }
        au.Title("attribute-unlearning loss");
        au.XLabel("iteration");
        au.ShowLegend(Alignment.UpperRight);

        var r = multiplot.GetPlot(2);
        r.Add.ScatterLine(it, result.Trace.Select(t => t.LossR).ToArray()).LineWidth = 2;
        r.Title(result.Mode == CloakMode.DataFree ? "L_Reg (L2 anchor)" : "L_Rec (recommendation loss)");
        r.XLabel("iteration");

        multiplot.SavePng(path, 1500, 420);
        return path;
    }

    /// <summary>Bars of the worst attacker's balanced accuracy per attribute and method, with chance marked.</summary>
    private static string PrivacySummary(ReproduceResult result, string dir)
    {
        var plot = new Plot();
        var methods = result.Runs.Select(r => r.Method).Distinct().ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        var ticks = new List<Tick>();
        for (var a = 0; a < result.Attributes.Count; a++)
        {
            var name = result.Attributes[a];
            for (var m = 0; m < methods.Length; m++)
            {
                var values = result.Runs.Where(r => r.Method == methods[m])
                    .Select(r => r.Privacy.Attributes.First(x => x.Name == name).WorstBalancedAccuracy).ToArray();
                var x = a * (methods.Length + 1) + m;
                var bar = plot.Add.Bar(new Bar { Position = x, Value = values.Average(), FillColor = palette.GetColor(m) });
                _ = bar;
            }
            var chance = result.Runs[0].Privacy.Attributes.First(x => x.Name == name).Chance;
            var line = plot.Add.Line(a * (methods.Length + 1) - 0.5, chance, a * (methods.Length + 1) + methods.Length - 0.5, chance);
            line.LinePattern = LinePattern.Dashed;
            line.Color = Colors.Black;
            ticks.Add(new Tick(a * (methods.Length + 1) + (methods.Length - 1) / 2.0, name));
        }
        for (var m = 0; m < methods.Length; m++) plot.Legend.ManualItems.Add(new LegendItem { LabelText = methods[m], FillColor = palette.GetColor(m) });
        plot.ShowLegend(Alignment.UpperRight);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Axes.Margins(bottom: 0);
        plot.Title($"{result.Dataset}: worst-attacker balanced accuracy (dashed: chance)");
        var path = Path.Combine(dir, "privacy_summary.png");
        plot.SavePng(path, 900, 500);
        return path;
    }

    private static double Separation(EmbeddingMatrix m, int[] labels, int j)
    {
        double s0 = 0, s1 = 0, q = 0;
        int n0 = 0, n1 = 0;
        for (var i = 0; i < m.Rows; i++)
        {
            var v = m.Values[i * m.Cols + j];
            if (labels[i] == 0) { s0 += v; n0++; }
            else if (labels[i] == 1) { s1 += v; n1++; }
            q += v * v;
        }
        if (n0 == 0 || n1 == 0) return 0;
        var mean = (s0 + s1) / (n0 + n1);
        var std = Math.Sqrt(Math.Max(q / m.Rows - mean * mean, 1e-12));
        return Math.Abs(s0 / n0 - s1 / n1) / std;
    }

    /// <summary>Gaussian kernel density (Silverman's bandwidth) on 120 points over [lo, hi].</summary>
    private static (double[] Xs, double[] Ys) Density(double[] values, double lo, double hi)
    {
        var mean = values.Average();
        var std = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / Math.Max(1, values.Length - 1));
        var h = Math.Max(1.06 * std * Math.Pow(values.Length, -0.2), 1e-6);
        var xs = new double[120];
        var ys = new double[120];
        for (var k = 0; k < xs.Length; k++)
        {
            var x = lo + (hi - lo) * k / (xs.Length - 1);
            double sum = 0;
            foreach (var v in values) { var z = (x - v) / h; sum += Math.Exp(-0.5 * z * z); }
            xs[k] = x;
            ys[k] = sum / (values.Length * h * Math.Sqrt(2 * Math.PI));
        }
        return (xs, ys);
    }
}
