using System.Globalization;

namespace AttrCloak.Cli.Rendering;

/// <summary>Mean and sample standard deviation of a figure over seeds.</summary>
public readonly record struct Stat(double Mean, double Std, int Count)
{
    public static Stat Of(IEnumerable<double> values)
    {
        var v = values.ToArray();
        if (v.Length == 0) return new Stat(double.NaN, double.NaN, 0);
        var mean = v.Average();
        var std = v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : 0;
        return new Stat(mean, std, v.Length);
    }

    public string Format(string format = "F3") => Count switch
    {
        0 => "-",
        1 => Mean.ToString(format, CultureInfo.InvariantCulture),
        _ => $"{Mean.ToString(format, CultureInfo.InvariantCulture)} ± {Std.ToString(format, CultureInfo.InvariantCulture)}",
    };
}
