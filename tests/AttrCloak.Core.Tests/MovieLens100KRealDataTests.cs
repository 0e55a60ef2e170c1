using System.Diagnostics;
using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;

namespace AttrCloak.Core.Tests;

/// <summary>
/// Checks the loader against the real ML-100K figures of the reference evaluation. The data lives outside the repository;
/// where it is absent these tests are reported as skipped, with the reason.
/// </summary>
public sealed class MovieLens100KRealDataTests
{
    [Fact]
    public void Counts_match_the_published_data_set()
    {
        var data = Load();
        data.UserCount.ShouldBe(943);
        data.ItemCount.ShouldBe(1682);
        data.Interactions.Count.ShouldBe(100_000);
        data.UserIds[0].ShouldBe("1");
        data.UserIds[^1].ShouldBe("943");
        data.Labels.ShouldAllBe(column => column.All(c => c != RecDataset.UnknownLabel));
    }

    [Fact]
    public void Majority_rates_match_the_evaluation_protocol()
    {
        var data = Load();
        data.Attributes.Select(a => a.ClassCount).ShouldBe([2, 7, 21]);
        data.Attributes[2].ClassNames[0].ShouldBe("administrator"); // u.occupation file order
        Share(data.Labels[0], 1).ShouldBe(0.711, 0.001); // male
        MajorityShare(data.Labels[1]).ShouldBe(0.329, 0.001);
        MajorityShare(data.Labels[2]).ShouldBe(0.208, 0.001);
    }

    private static RecDataset Load()
    {
        var directory = TestData.RequireMovieLens100K();
        var sw = Stopwatch.StartNew();
        var data = DatasetLoader.Load(DatasetKind.MovieLens100K, directory);
        TestContext.Current.TestOutputHelper?.WriteLine($"loaded {directory} in {sw.Elapsed.TotalMilliseconds:F0} ms");
        return data;
    }

    private static double Share(int[] labels, int c) => labels.Count(l => l == c) / (double)labels.Length;

    private static double MajorityShare(int[] labels) => labels.GroupBy(l => l).Max(g => g.Count()) / (double)labels.Length;
}
