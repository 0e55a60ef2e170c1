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
        var transport = new CrossFittedTransport(users, attributes, folds: 2, seed: 7);
        var baseline = transport.Run(Strengths(1, 1), TestContext.Current.CancellationToken).Embeddings;

        // A hostile row: one user far out. Its fold-mates are cloaked by maps of the other fold only.
        var hostile = users.Clone();
        const int target = 5;
        foreach (ref var v in hostile.Row(target)) v += 50;
        var withHostile = new CrossFittedTransport(hostile, attributes, folds: 2, seed: 7).Run(Strengths(1, 1), TestContext.Current.CancellationToken).Embeddings;

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
