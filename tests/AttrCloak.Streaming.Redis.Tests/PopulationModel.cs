using AttrCloak.Core.Data;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Redis.Tests;

/// <summary>
/// The direct computation the store is checked against: the population (original and served embeddings) as plain
/// objects, and per attribute and class a two-pass float64 fit (mean first, then the centred outer products), like
/// numpy's mean and cov(bias=True).
/// </summary>
internal sealed class PopulationModel(AttributeSpec[] catalog, int d)
{
    public readonly Dictionary<string, (float[] Original, float[] Cloaked, int[] Classes)> Users = new();

    public void Set(string user, float[] original, float[] cloaked, int[] classes) => Users[user] = (original, cloaked, classes);

    public void Remove(string user) => Users.Remove(user);

    public (long Count, double[] Mean, double[] Covariance) Fit(int attribute, int cls, StatisticsPopulation population = StatisticsPopulation.Served)
    {
        var rows = Users.Values.Where(u => cls < 0 ? u.Classes[attribute] >= 0 : u.Classes[attribute] == cls)
            .Select(u => population == StatisticsPopulation.Served ? u.Cloaked : u.Original).ToList();
        var mean = new double[d];
        var cov = new double[d * d];
        if (rows.Count == 0) return (0, mean, cov);
        foreach (var r in rows)
            for (var i = 0; i < d; i++) mean[i] += r[i];
        for (var i = 0; i < d; i++) mean[i] /= rows.Count;
        foreach (var r in rows)
            for (var i = 0; i < d; i++)
                for (var j = 0; j < d; j++)
                    cov[i * d + j] += (r[i] - mean[i]) * (r[j] - mean[j]);
        for (var i = 0; i < cov.Length; i++) cov[i] /= rows.Count;
        return (rows.Count, mean, cov);
    }

    /// <summary>Asserts the snapshot (served and original statistics) equals the direct computation (absolute tolerance on O(1) data).</summary>
    public void ShouldMatch(StatisticsSnapshot snapshot, double tolerance = 1e-9)
    {
        snapshot.Dimension.ShouldBe(d);
        ShouldMatch(snapshot.Attributes, StatisticsPopulation.Served, tolerance);
        ShouldMatch(snapshot.Originals, StatisticsPopulation.Original, tolerance);
    }

    private void ShouldMatch(IReadOnlyList<ClassStatisticsSnapshot> attributes, StatisticsPopulation population, double tolerance)
    {
        attributes.Count.ShouldBe(catalog.Length);
        for (var a = 0; a < catalog.Length; a++)
        {
            var s = attributes[a];
            var what = $"{population} {catalog[a].Name}";
            s.Attribute.ShouldBe(catalog[a].Name);
            for (var k = 0; k < catalog[a].ClassCount; k++)
            {
                var (n, mean, cov) = Fit(a, k, population);
                s.Counts[k].ShouldBe(n, $"count of {what}={k}");
                MaxAbsDiff(s.Means[k], mean).ShouldBeLessThan(tolerance, $"mean of {what}={k}");
                MaxAbsDiff(s.Covariances[k], cov).ShouldBeLessThan(tolerance, $"covariance of {what}={k}");
            }
            var (gn, gmean, gcov) = Fit(a, -1, population);
            s.GlobalCount.ShouldBe(gn);
            MaxAbsDiff(s.GlobalMean, gmean).ShouldBeLessThan(tolerance, $"global mean of {what}");
            MaxAbsDiff(s.GlobalCovariance, gcov).ShouldBeLessThan(tolerance, $"global covariance of {what}");
        }
    }

    public static double MaxAbsDiff(double[] a, double[] b)
    {
        a.Length.ShouldBe(b.Length);
        var m = 0.0;
        for (var i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
