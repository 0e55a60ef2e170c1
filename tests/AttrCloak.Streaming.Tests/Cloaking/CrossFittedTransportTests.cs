using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Tools.Samples;

namespace AttrCloak.Streaming.Tests.Cloaking;

/// <summary>AttrCloak-OT: the worker's Gaussian maps cross-fitted over a batch, one strength per attribute.</summary>
public sealed class CrossFittedTransportTests
{
    private const int D = 16;

    private static (EmbeddingMatrix Users, LabeledAttribute[] Attributes) Users(int seed = 1) =>
        SyntheticUsers.Users(1200, D, [2, 4], shift: 2.0, seed: seed);

    private static AttributeStrength[] Strengths(params double[] means) => means.Select(m => new AttributeStrength(m, 0)).ToArray();

    [Fact]
    public void Strength_zero_leaves_every_embedding_as_it_was()
    {
        var (users, attributes) = Users();
        var result = new CrossFittedTransport(users, attributes).Run(Strengths(0, 0), TestContext.Current.CancellationToken);
        result.Embeddings.Values.ShouldBe(users.Values);
    }

    [Fact]
    public void Full_strength_removes_the_class_offsets_that_a_nearest_mean_attacker_reads_and_only_for_the_attributes_raised()
    {
        var (users, attributes) = Users();
        var before = attributes.Select(a => SyntheticUsers.NearestMeanBalancedAccuracy(users, a)).ToArray();
        var onlyFirst = new CrossFittedTransport(users, attributes).Run(Strengths(1, 0), TestContext.Current.CancellationToken).Embeddings;
        var after = attributes.Select(a => SyntheticUsers.NearestMeanBalancedAccuracy(onlyFirst, a)).ToArray();
        before[0].ShouldBeGreaterThan(0.75, "the synthetic classes must be separable for the test to mean anything");
        after[0].ShouldBeLessThan(0.56, $"attr0 before {before[0]:F3}");
        // The other attribute's offsets are untouched (its labels are independent of attr0's).
        after[1].ShouldBe(before[1], 0.03);
    }

    [Fact]
    public void A_users_own_row_never_shapes_the_map_applied_to_its_fold()
    {
        var (users, attributes) = Users();
        // The maps alone: the population's noise-matched draws that follow them are scaled by everyone's pooled
        // covariance (like batch DF's targets), so this property is of the cross-fitted maps.
        var mapsOnly = CrossFittedTransport.DefaultOptions(nullTargets: false) with { SamplingNoiseScale = 0, CovarianceNoiseScale = 0 };
        var transport = new CrossFittedTransport(users, attributes, folds: 2, seed: 7, options: mapsOnly);
        var baseline = transport.Run(Strengths(1, 1), TestContext.Current.CancellationToken).Embeddings;

        // A hostile row: one user far out. Its fold-mates are cloaked by maps of the other fold only.
        var hostile = users.Clone();
        const int target = 5;
        foreach (ref var v in hostile.Row(target)) v += 50;
        var withHostile = new CrossFittedTransport(hostile, attributes, folds: 2, seed: 7, options: mapsOnly).Run(Strengths(1, 1), TestContext.Current.CancellationToken).Embeddings;

        var sameFold = Enumerable.Range(0, users.Rows).Where(u => u != target && RowsEqual(baseline, withHostile, u)).Count();
        var changed = Enumerable.Range(0, users.Rows).Count(u => u != target && !RowsEqual(baseline, withHostile, u));
        // Exactly the other fold (about half the users) sees the hostile row in its statistics.
        sameFold.ShouldBeInRange(500, 700);
        (sameFold + changed).ShouldBe(users.Rows - 1);
    }

    [Fact]
    public void The_maps_aim_at_what_the_other_folds_were_served()
    {
        // Served = every original shifted by +1: the population-wide map carries each fold to the other fold's served fit.
        var (users, attributes) = Users();
        var served = users.Clone();
        for (var i = 0; i < served.Values.Length; i++) served.Values[i] += 1;
        var result = new CrossFittedTransport(users, attributes, served: served).Run(Strengths(0, 0), TestContext.Current.CancellationToken).Embeddings;
        var shift = result.Values.Zip(users.Values, (a, b) => (double)a - b).Average();
        shift.ShouldBe(1, 0.05);
        Should.Throw<ArgumentException>(() => new CrossFittedTransport(users, attributes, served: users.SelectRows(Enumerable.Range(0, 10).ToArray())))
            .Message.ShouldContain("served matrix is 10 x 16");
    }

    [Fact]
    public void Every_class_offset_ends_a_draw_of_its_sampling_error_where_the_maps_alone_pin_it_at_zero()
    {
        // Averaged over the folds, the global fit's mean shifts put every class's overall mean on the global one (each
        // class mean is in the other folds' estimates), the empirical matching an attacker inverts from a shadow set.
        // The population's noise-matched draws (PopulationNoiseMatching, the default) and the null population's class
        // fits both leave an offset of the size sampling alone gives.
        var (users, attributes) = Users();
        var ct = TestContext.Current.CancellationToken;
        var mapsOnly = CrossFittedTransport.DefaultOptions(nullTargets: false) with { SamplingNoiseScale = 0, CovarianceNoiseScale = 0 };
        var pinned = new CrossFittedTransport(users, attributes, options: mapsOnly).Run(Strengths(1, 0), ct).Embeddings;
        var drawn = new CrossFittedTransport(users, attributes).Run(Strengths(1, 0), ct).Embeddings;
        var toNull = new CrossFittedTransport(users, attributes, nullTargets: true).Run(Strengths(1, 0), ct).Embeddings;
        var labels = attributes[0].Labels;
        var n1 = labels.Count(l => l == 1);
        // Under no signal each coordinate of the class-1 offset from the global mean has variance about
        // sigma^2 (1/n1 - 1/n): the sum of its squares over D coordinates, in units of the per-coordinate variance.
        var expected = D * (1.0 / n1 - 1.0 / users.Rows);
        var before = SquaredOffset(users, labels);
        var afterPinned = SquaredOffset(pinned, labels);
        var afterDrawn = SquaredOffset(drawn, labels);
        var afterNull = SquaredOffset(toNull, labels);
        before.ShouldBeGreaterThan(20 * expected, "the synthetic classes must be offset for the test to mean anything");
        afterPinned.ShouldBeLessThan(0.35 * expected, $"maps alone: {afterPinned:G3} against sampling {expected:G3}");
        afterDrawn.ShouldBeInRange(0.5 * expected, 4 * expected, $"with the draws: {afterDrawn:G3} against sampling {expected:G3}");
        afterNull.ShouldBeInRange(0.5 * expected, 4 * expected, $"null targets: {afterNull:G3} against sampling {expected:G3}");
        // The attribute left at strength 0 gets no draws of its own (nothing of it was pinned); its class offsets move
        // only by its members' share of the first attribute's draws (1.585 -> 1.575 here, against 0.5 expected
        // sampling noise).
        var second = attributes[1].Labels;
        var secondPinned = SquaredOffset(pinned, second);
        SquaredOffset(drawn, second).ShouldBe(secondPinned, 0.02 * secondPinned);
        Should.Throw<ArgumentException>(() => new CrossFittedTransport(users, attributes, served: users, nullTargets: true))
            .Message.ShouldContain("give one or the other");
    }

    /// <summary>|mean of class 1 - global mean|^2, each coordinate in units of its population variance.</summary>
    private static double SquaredOffset(EmbeddingMatrix x, int[] labels)
    {
        var sum = 0.0;
        for (var j = 0; j < x.Cols; j++)
        {
            double all = 0, allSq = 0, one = 0;
            var ones = 0;
            for (var u = 0; u < x.Rows; u++)
            {
                var v = x.Row(u)[j];
                all += v;
                allSq += v * (double)v;
                if (labels[u] == 1) { one += v; ones++; }
            }
            var mean = all / x.Rows;
            var variance = allSq / x.Rows - mean * mean;
            var offset = one / ones - mean;
            sum += offset * offset / variance;
        }
        return sum;
    }

    [Fact]
    public void Bad_arguments_are_refused_with_a_message()
    {
        var (users, attributes) = Users();
        Should.Throw<ArgumentException>(() => new CrossFittedTransport(users, attributes, folds: 1)).Message.ShouldContain("2 to 20 folds");
        Should.Throw<ArgumentException>(() => new CrossFittedTransport(users.SelectRows([0, 1, 2]), attributes)).Message.ShouldContain("too few for 2 folds");
        Should.Throw<ArgumentException>(() => new CrossFittedTransport(users.SelectRows(Enumerable.Range(0, 10).ToArray()), attributes)).Message.ShouldContain("1200 labels for 10 users");
        Should.Throw<ArgumentException>(() => new CrossFittedTransport(users, attributes).Run(Strengths(1), TestContext.Current.CancellationToken))
            .Message.ShouldContain("1 strengths for 2 attributes");
    }

    private static bool RowsEqual(EmbeddingMatrix a, EmbeddingMatrix b, int u) => a.Row(u).SequenceEqual(b.Row(u));
}
