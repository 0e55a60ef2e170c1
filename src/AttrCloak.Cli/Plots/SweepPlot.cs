using AttrCloak.Cli.Commands;
using ScottPlot;

namespace AttrCloak.Cli.Plots;

/// <summary>Privacy (worst-attacker advantage over chance, per attribute) against utility (NDCG@10 ratio).</summary>
public static class SweepPlot
{
    public static string Write(IReadOnlyList<SweepPoint> points, string path)
    {
        var plot = new Plot();
        var attributes = points[0].Privacy.Attributes.Select(a => a.Name).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        for (var k = 0; k < attributes.Length; k++)
        {
            var xs = points.Select(p => p.NdcgRatio).ToArray();
            var ys = points.Select(p => p.Privacy.Attributes[k].WorstBalancedAccuracy - p.Privacy.Attributes[k].Chance).ToArray();
            var scatter = plot.Add.ScatterPoints(xs, ys);
            scatter.LegendText = attributes[k];
            scatter.Color = palette.GetColor(k);
            scatter.MarkerSize = 9;
        }
        var zero = plot.Add.HorizontalLine(0);
        zero.LinePattern = LinePattern.Dashed;
        zero.Color = Colors.Black;
        plot.XLabel("NDCG@10 relative to original (higher is better)");
        plot.YLabel("worst balanced accuracy - chance (lower is better)");
        plot.Title("AttrCloak privacy-utility sweep");
        plot.ShowLegend(Alignment.UpperLeft);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        plot.SavePng(path, 900, 600);
        return path;
    }
}
