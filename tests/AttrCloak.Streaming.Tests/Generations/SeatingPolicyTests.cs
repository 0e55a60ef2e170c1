using AttrCloak.Core.Data;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Tests.Generations;

/// <summary>When a generation is ready to be seated (promoted), from class counts alone.</summary>
public sealed class SeatingPolicyTests
{
    private static readonly AttributeSpec[] Catalog = [new("gender", ["F", "M"]), new("age", ["young", "old"])];
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly GenerationOptions Options = new() { MinClassUsers = 5, MinUserShare = 0.9, ReseatGrowth = 2 };

    /// <summary>Statistics with <paramref name="perClass"/>[attribute][class] users.</summary>
    private static StatisticsSnapshot Counts(params int[][] perClass)
    {
        var served = new ClassStatisticsAccumulator(2, Catalog);
        var original = new ClassStatisticsAccumulator(2, Catalog);
        // One user per (gender, age) pair at a time: enough to produce any per-class counts whose totals agree.
        var genders = Enumerable.Range(0, 2).SelectMany(k => Enumerable.Repeat(k, perClass[0][k])).ToList();
        var ages = Enumerable.Range(0, 2).SelectMany(k => Enumerable.Repeat(k, perClass[1][k])).ToList();
        genders.Count.ShouldBe(ages.Count);
        for (var i = 0; i < genders.Count; i++)
        {
            served.Add([i, 1], [genders[i], ages[i]]);
            original.Add([i, 2], [genders[i], ages[i]]);
        }
        return ClassStatisticsAccumulator.Combine(served, original, new StatisticsVersion("t", 1));
    }

    private static Generation Filling => new("B", GenerationState.Filling, 2, T0);

    [Fact]
    public void A_first_generation_waits_until_every_class_has_the_minimum()
    {
        var cold = new Generation("A", GenerationState.Serving, 1, T0);
        SeatingPolicy.NotReady(cold, Counts([4, 6], [5, 5]), 10, null, Options).ShouldBe("class 'F' of 'gender' has 4 users, 5 needed");
        SeatingPolicy.NotReady(cold, Counts([5, 5], [5, 5]), 10, null, Options).ShouldBeNull();
        SeatingPolicy.NotReady(cold, Counts([0, 0], [0, 0]), 0, null, Options).ShouldBe("it has no users yet");
    }

    [Fact]
    public void A_new_model_needs_a_share_of_the_serving_users_and_per_class_at_most_what_the_serving_one_has()
    {
        var serving = (Counts([3, 97], [50, 50]), 100L);
        SeatingPolicy.NotReady(Filling, Counts([3, 80], [40, 43]), 83, serving, Options).ShouldBe("83 users, 90 needed (90 % of the serving generation's 100)");
        // Class F has only 3 users in the serving generation: 3 are enough, not 5.
        SeatingPolicy.NotReady(Filling, Counts([3, 87], [45, 45]), 90, serving, Options).ShouldBeNull();
        SeatingPolicy.NotReady(Filling, Counts([2, 88], [45, 45]), 90, serving, Options).ShouldBe("class 'F' of 'gender' has 2 users, 3 needed");
    }

    [Fact]
    public void An_operators_request_needs_one_user_and_without_automatic_promotion_nothing_else_promotes()
    {
        var serving = (Counts([50, 50], [50, 50]), 100L);
        SeatingPolicy.NotReady(Filling with { PromoteRequested = true }, Counts([1, 0], [1, 0]), 1, serving, Options).ShouldBeNull();
        var manual = new GenerationOptions { AutoPromote = false };
        SeatingPolicy.NotReady(Filling, Counts([50, 50], [50, 50]), 100, serving, manual).ShouldNotBeNull().ShouldContain("attrcloak generations promote");
    }

    [Fact]
    public void A_cold_start_whose_class_never_fills_is_seated_at_the_cold_seat_size_a_new_model_is_not()
    {
        var cold = new Generation("A", GenerationState.Serving, 1, T0);
        var options = new GenerationOptions { MinClassUsers = 5, MinUserShare = 0.9, ColdSeatUsers = 100 };
        SeatingPolicy.NotReady(cold, Counts([2, 97], [50, 49]), 99, null, options).ShouldBe("class 'F' of 'gender' has 2 users, 5 needed");
        SeatingPolicy.NotReady(cold, Counts([2, 98], [50, 50]), 100, null, options).ShouldBeNull();
        SeatingPolicy.NotReady(cold, Counts([2, 998], [500, 500]), 1000, null, new GenerationOptions { MinClassUsers = 5, ColdSeatUsers = 0 }).ShouldNotBeNull();
        // A new model beside a serving one is judged by the serving one's class sizes, whatever its own size.
        SeatingPolicy.NotReady(Filling, Counts([2, 998], [500, 500]), 1000, (Counts([50, 50], [50, 50]), 100L), options)
            .ShouldBe("class 'F' of 'gender' has 2 users, 5 needed");
    }

    [Fact]
    public void The_serving_generation_is_re_seated_once_it_has_grown_the_given_factor_past_its_last_seating()
    {
        var seated = new Generation("A", GenerationState.Serving, 1, T0) { SeatEpoch = 1, SeatedUsers = 500 };
        SeatingPolicy.ReseatDue(seated, 999, Options).ShouldBeNull();
        SeatingPolicy.ReseatDue(seated, 1000, Options).ShouldBe(
            "it grew from 500 users at its last seating to 1000 (re-seated at 2x: the maps alone let the classes drift apart)");
        SeatingPolicy.ReseatDue(seated, 1499, new GenerationOptions { ReseatGrowth = 3 }).ShouldBeNull();
        SeatingPolicy.ReseatDue(seated, 10_000, new GenerationOptions()).ShouldBeNull(); // off by default (docs/threat-model.md)
        SeatingPolicy.ReseatDue(seated, 10_000, new GenerationOptions { ReseatGrowth = 0 }).ShouldBeNull(); // off
        SeatingPolicy.ReseatDue(seated with { SeatedUsers = 0 }, 10_000, Options).ShouldBeNull(); // base not known yet
        SeatingPolicy.ReseatDue(seated with { SeatEpoch = 0 }, 10_000, Options).ShouldBeNull(); // never seated: NotReady decides
        SeatingPolicy.ReseatDue(seated with { State = GenerationState.Superseded }, 10_000, Options).ShouldBeNull();
    }
}
