namespace AttrCloak.Cli.Experiments;

/// <summary>
/// The paper's anchor figures (Tables IV, V and VII of the ICDE 2025 slides): XGBoost / MLP attack accuracy per
/// attribute, NDCG@10 and unlearning seconds. Printed beside ours; the paper reports plain accuracy with its own
/// utility protocol, so compare attack figures loosely and utility only as the change relative to Original.
/// </summary>
public static class PaperFigures
{
    public sealed record Row(double[] Xgb, double[] Mlp, double Ndcg10, double? Seconds);

    private static readonly Dictionary<(string Dataset, string Backbone, string Method), Row> Table = new()
    {
        [("ml-100k", "mf", "Original")] = new([0.7626, 0.4496, 0.2281], [0.7414, 0.3289, 0.2454], 0.7721, null),
        [("ml-100k", "mf", "AttrCloak-DD")] = new([0.5822, 0.1989, 0.0995], [0.5928, 0.1724, 0.0358], 0.7769, 235.78),
        [("ml-100k", "mf", "AttrCloak-DF")] = new([0.5995, 0.2401, 0.1419], [0.6088, 0.1950, 0.0528], 0.7531, 12.81),
        [("ml-1m", "mf", "Original")] = new([0.7955, 0.4164, 0.1995], [0.7243, 0.3526, 0.1660], 0.6095, null),
        [("ml-1m", "mf", "AttrCloak-DD")] = new([0.5608, 0.1692, 0.1024], [0.5217, 0.1656, 0.0406], 0.6176, 1322.18),
        [("ml-1m", "mf", "AttrCloak-DF")] = new([0.6203, 0.2503, 0.0772], [0.6169, 0.1821, 0.0555], 0.6217, 39.20),
        [("ml-100k", "lightgcn", "Original")] = new([0.7029, 0.3422, 0.1923], [0.7520, 0.3382, 0.2255], 0.7847, null),
        [("ml-100k", "lightgcn", "AttrCloak-DD")] = new([0.5557, 0.1499, 0.0849], [0.5530, 0.1645, 0.0836], 0.7944, null),
        [("ml-100k", "lightgcn", "AttrCloak-DF")] = new([0.5066, 0.1698, 0.1154], [0.5782, 0.2069, 0.0716], 0.7203, null),
    };

    /// <summary>Attribute order of the paper's columns.</summary>
    public static readonly string[] Attributes = ["gender", "age", "occupation"];

    public static Row? Find(string dataset, string backbone, string method) =>
        Table.GetValueOrDefault((dataset.ToLowerInvariant(), backbone.ToLowerInvariant(), method));

    /// <summary>"XGB / MLP" for one attribute, or null when the paper has no such figure.</summary>
    public static string? Attack(string dataset, string backbone, string method, string attribute)
    {
        var row = Find(dataset, backbone, method);
        var k = Array.IndexOf(Attributes, attribute.ToLowerInvariant());
        return row is null || k < 0 ? null : $"{row.Xgb[k]:F3} / {row.Mlp[k]:F3}";
    }

    /// <summary>The paper's NDCG@10 of a method relative to its Original.</summary>
    public static double? Ndcg10Ratio(string dataset, string backbone, string method)
    {
        var row = Find(dataset, backbone, method);
        var original = Find(dataset, backbone, "Original");
        return row is null || original is null ? null : row.Ndcg10 / original.Ndcg10;
    }
}
