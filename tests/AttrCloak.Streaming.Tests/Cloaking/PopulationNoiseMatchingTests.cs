using AttrCloak.Core.Data;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Tools.Samples;

namespace AttrCloak.Streaming.Tests.Cloaking;

/// <summary>AttrCloak-OT's noise-matched draws: only the sampling error the cloak removed is given back.</summary>
public sealed class PopulationNoiseMatchingTests
{
    private const int D = 16;

    private static (EmbeddingMatrix Users, LabeledAttribute[] Attributes) Users() =>
        SyntheticUsers.Users(1200, D, [2, 4], shift: 2.0, seed: 3);

    private static readonly TransportCloakerOptions Options = CrossFittedTransport.DefaultOptions(nullTargets: false);

    [Fact]
    public void A_population_the_cloak_left_alone_gets_no_draws()
    {
        var (users, attributes) = Users();
        var cloaked = users.Clone();
        new PopulationNoiseMatching(users, attributes.Select(a => a.Attribute).ToArray(), attributes.Select(a => a.Labels).ToArray(), "test").Apply(cloaked, Options);
        cloaked.Values.ShouldBe(users.Values);
    }

    [Fact]
    public void Class_offsets_removed_exactly_get_back_a_draw_of_their_sampling_size_and_nothing_when_the_draws_are_off()
    {
        var (users, attributes) = Users();
        var labels = attributes[0].Labels;
        // Exact empirical matching of the first attribute: every class mean moved onto the global mean.
        var pinned = users.Clone();
        var global = Mean(users, _ => true);
        var classMeans = Enumerable.Range(0, 2).Select(k => Mean(users, u => labels[u] == k)).ToArray();
        for (var u = 0; u < pinned.Rows; u++)
            for (var i = 0; i < D; i++) pinned.Row(u)[i] -= (float)(classMeans[labels[u]][i] - global[i]);
        var specs = attributes.Select(a => a.Attribute).ToArray();
        var allLabels = attributes.Select(a => a.Labels).ToArray();
        var firstOnly = Options with { AttributeDeviationScales = new Dictionary<string, double> { [specs[0].Name] = 1, [specs[1].Name] = 0 } };

        var off = pinned.Clone();
        var matching = new PopulationNoiseMatching(users, specs, allLabels, "test");
        matching.Apply(off, firstOnly with { SamplingNoiseScale = 0, CovarianceNoiseScale = 0 });
        off.Values.ShouldBe(pinned.Values);

        var drawn = pinned.Clone();
        matching.Apply(drawn, firstOnly);
        var n1 = labels.Count(l => l == 1);
        // Whitened by the (here isotropic, unit) within-class spread: d (1/n_1 - 1/n) without signal.
        var expected = D * (1.0 / n1 - 1.0 / users.Rows);
        var offset = Mean(drawn, u => labels[u] == 1).Zip(Mean(drawn, _ => true), (a, b) => (a - b) * (a - b)).Sum();
        SquaredOffsetOf(pinned, labels).ShouldBeLessThan(1e-6);
        offset.ShouldBeInRange(0.3 * expected, 3 * expected, $"expected about {expected:G3}");
        // The second attribute was at strength 0: none of its own draws (its users move only with the first's classes).
        var second = attributes[1].Labels;
        for (var k = 0; k < 4; k++)
        {
            var before = Mean(pinned, u => second[u] == k);
            var after = Mean(drawn, u => second[u] == k);
            before.Zip(after, (a, b) => Math.Abs(a - b)).Max().ShouldBeLessThan(0.1);
        }
    }

    private static double SquaredOffsetOf(EmbeddingMatrix x, int[] labels) =>
        Mean(x, u => labels[u] == 1).Zip(Mean(x, _ => true), (a, b) => (a - b) * (a - b)).Sum();

    private static double[] Mean(EmbeddingMatrix x, Func<int, bool> member)
    {
        var sum = new double[x.Cols];
        var n = 0;
        for (var u = 0; u < x.Rows; u++)
        {
            if (!member(u)) continue;
            n++;
            for (var i = 0; i < x.Cols; i++) sum[i] += x.Row(u)[i];
        }
        return sum.Select(v => v / n).ToArray();
    }
}
