using System.Globalization;
using System.Text;
using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;
using AttrCloak.Core.Data.Synthetic;

namespace AttrCloak.Tools.Experiments.Data;

/// <summary>
/// Writes a synthetic data set with ML-1M's shape (6,040 users, 3,706 items, about a million interactions, the same
/// three attributes) in ML-1M's own layout (<c>ratings.dat</c>, <c>users.dat</c>), so that `attrcloak reproduce
/// --dataset ml-1m` can be run and timed end to end at ML-1M's size without the real data set (which stays outside the
/// repository). Its seed and latent dimension differ from every harness member's, so nothing was tuned on it.
/// </summary>
internal static class Ml1mShapedWriter
{
    private static readonly int[] AgeCodes = [1, 18, 25, 35, 45, 50, 56];

    public static void Run(ExperimentContext context)
    {
        var output = Environment.GetEnvironmentVariable("ATTRCLOAK_OUT")
            ?? throw new ExperimentUnavailableException("set ATTRCLOAK_OUT to the folder to write ratings.dat and users.dat into");
        var options = new SyntheticOptions
        {
            Users = Int("ATTRCLOAK_USERS", 6040),
            Items = Int("ATTRCLOAK_ITEMS", 3706),
            MeanInteractionsPerUser = 165, // ML-1M: 1,000,209 ratings over 6,040 users
            MinInteractionsPerUser = 20,
            LatentDimensions = 24,
            AttributeStrength = Double("ATTRCLOAK_STRENGTH", 0.25),
            Seed = Int("ATTRCLOAK_SEED", 1_000_209),
        };
        var data = SyntheticDataset.Generate(options);
        Directory.CreateDirectory(output);
        var ratings = new StringBuilder();
        foreach (var x in data.Interactions)
            ratings.Append(CultureInfo.InvariantCulture, $"{x.User + 1}::{x.Item + 1}::4::{x.Timestamp}\n");
        File.WriteAllText(Path.Combine(output, MovieLens1MLoader.RatingsFile), ratings.ToString());
        var users = new StringBuilder();
        int g = data.AttributeIndex("gender"), a = data.AttributeIndex("age"), o = data.AttributeIndex("occupation");
        for (var u = 0; u < data.UserCount; u++)
            users.Append(CultureInfo.InvariantCulture,
                $"{u + 1}::{(data.Labels[g][u] == 0 ? "F" : "M")}::{AgeCodes[data.Labels[a][u]]}::{data.Labels[o][u]}::00000\n");
        File.WriteAllText(Path.Combine(output, MovieLens1MLoader.UsersFile), users.ToString());
        context.WriteLine($"wrote {data.UserCount:N0} users, {data.ItemCount:N0} items, {data.Interactions.Count:N0} interactions to {output} (ML-1M layout)");
    }

    private static int Int(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), CultureInfo.InvariantCulture, out var v) ? v : fallback;

    private static double Double(string name, double fallback) =>
        double.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : fallback;
}
