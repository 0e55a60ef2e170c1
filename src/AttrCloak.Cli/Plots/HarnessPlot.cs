using AttrCloak.Cli.Experiments;
using ScottPlot;

namespace AttrCloak.Cli.Plots;

/// <summary>The harness at a glance: per member, each method's worst |advantage| over attributes, with the pass bar.</summary>
public static class HarnessPlot
{
    private const string NoiseControl = "noise control (cloaked)";

    public static void Write(IReadOnlyList<MemberResult> results, HarnessOptions options, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        string[] methods = [Harness.Original, Harness.Df, Harness.Served, Harness.Dd, Harness.Ot, NoiseControl];
        var ticks = new List<Tick>();
        for (var i = 0; i < results.Count; i++)
        {
            var r = results[i];
            var x0 = i * (methods.Length + 1);
            for (var m = 0; m < methods.Length; m++)
            {
                double? value = methods[m] == NoiseControl
                    ? r.WorstNoise
                    : r.Methods.FirstOrDefault(f => f.Method == methods[m])?.Worst;
                if (value is not { } v) continue;
                plot.Add.Bar(new Bar { Position = x0 + m, Value = v, FillColor = palette.GetColor(m) });
            }
            ticks.Add(new Tick(x0 + 1, r.Member.Name));
        }
        var right = results.Count * (methods.Length + 1);
        var bar = plot.Add.Line(-1, options.PassEpsilon, right, options.PassEpsilon);
        bar.LinePattern = LinePattern.Dashed;
        bar.Color = Colors.Red;
        var aim = plot.Add.Line(-1, options.Epsilon, right, options.Epsilon);
        aim.LinePattern = LinePattern.Dotted;
        aim.Color = Colors.Black;
        for (var m = 0; m < methods.Length; m++) plot.Legend.ManualItems.Add(new LegendItem { LabelText = methods[m], FillColor = palette.GetColor(m) });
        plot.ShowLegend(Alignment.UpperRight);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 30;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Margins(bottom: 0);
        // Room for the rotated member names under the axis.
        plot.Axes.Bottom.MinimumSize = 90;
        plot.Title($"worst |balanced accuracy - chance| per member (dashed: bar {options.PassEpsilon}, dotted: target {options.Epsilon})");
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        plot.SavePng(path, Math.Max(900, 90 * results.Count), 560);
    }
}
