using AttrCloak.Streaming.Generations;

namespace AttrCloak.Streaming.Tests.Generations;

/// <summary>The life-cycle rules of model generations (pure: what each request changes, or why it is refused).</summary>
public sealed class GenerationRegistryTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Applies the changes as a store would: the records replaced, the version one higher.</summary>
    private static GenerationRegistry Write(GenerationRegistry r, IReadOnlyList<Generation> changed) =>
        new(r.Version + 1, r.Generations.Where(g => changed.All(c => c.ModelVersion != g.ModelVersion)).Concat(changed).OrderBy(g => g.Order).ToList());

    [Fact]
    public void The_first_model_serves_at_once_unseated_and_later_models_fill()
    {
        var r = Write(GenerationRegistry.Empty, GenerationRegistry.Empty.WithCreated("A", T0));
        r.Serving!.ModelVersion.ShouldBe("A");
        r.Serving.Seated.ShouldBeFalse();
        r.Serving.Promoted.ShouldBe(1);
        r.WithCreated("A", T0).ShouldBeEmpty(); // exists: nothing to do

        r = Write(r, r.WithCreated("B", T0.AddHours(1)));
        r.Find("B")!.State.ShouldBe(GenerationState.Filling);
        r.Find("B")!.Order.ShouldBeGreaterThan(r.Find("A")!.Order);
        r.PublishOrder.Select(g => g.ModelVersion).ShouldBe(["A", "B"]); // a user only B holds gets B's cold-start cloak
        r.Live.Select(g => g.ModelVersion).ShouldBe(["B", "A"]);
    }

    [Fact]
    public void Seating_a_filling_generation_promotes_it_supersedes_the_serving_one_and_asks_for_a_sweep()
    {
        var r = Write(GenerationRegistry.Empty, GenerationRegistry.Empty.WithBootstrapped("A", T0));
        r.Find("A")!.SeatEpoch.ShouldBe(1);
        r.Find("A")!.SweepEpoch.ShouldBe(1);
        // Bootstrap does not count its users; the first worker to look takes the size then as the re-seat base, once.
        r.Find("A")!.SeatedUsers.ShouldBe(0);
        r = Write(r, r.WithSeatedUsers("A", 40));
        r.Find("A")!.SeatedUsers.ShouldBe(40);
        r.WithSeatedUsers("A", 80).ShouldBeEmpty();
        r = Write(r, r.WithCreated("B", T0));

        // The lease: one worker at a time; another gets it only after it expired.
        var lease = r.WithSeatLease("B", "w1", TimeSpan.FromSeconds(60), T0);
        lease.ShouldHaveSingleItem().SeatLease.ShouldBe("w1");
        r = Write(r, lease);
        r.WithSeatLease("B", "w2", TimeSpan.FromSeconds(60), T0.AddSeconds(30)).ShouldBeEmpty();
        r.WithSeated("B", "w2", T0, 10).ShouldBeEmpty(); // not the holder: nothing
        r.WithSeatLease("B", "w2", TimeSpan.FromSeconds(60), T0.AddSeconds(61)).ShouldHaveSingleItem().SeatLease.ShouldBe("w2");

        r = Write(r, r.WithSeated("B", "w1", T0.AddSeconds(40), 10));
        var b = r.Find("B")!;
        b.State.ShouldBe(GenerationState.Serving);
        b.SeatEpoch.ShouldBe(1);
        b.SweepEpoch.ShouldBe(1);
        b.SeatLease.ShouldBeNull();
        b.SeatedUsers.ShouldBe(10);
        b.Promoted.ShouldBeGreaterThan(r.Find("A")!.Promoted);
        r.Find("A")!.State.ShouldBe(GenerationState.Superseded);
        r.Serving!.ModelVersion.ShouldBe("B");
        r.PublishOrder.Select(g => g.ModelVersion).ShouldBe(["B", "A"]); // users B does not hold keep A's record
    }

    [Fact]
    public void The_serving_generation_cannot_be_retired_a_superseded_or_filling_one_can_and_a_retired_one_stays_known()
    {
        var r = Write(GenerationRegistry.Empty, GenerationRegistry.Empty.WithBootstrapped("A", T0));
        Should.Throw<GenerationRuleException>(() => r.WithRetiring("A", T0)).Message.ShouldContain("promote its successor first");
        Should.Throw<GenerationRuleException>(() => r.WithRetiring("nope", T0)).Message.ShouldContain("no generation 'nope'");
        r = Write(r, r.WithCreated("B", T0));
        r = Write(r, r.WithRetiring("B", T0)); // an abandoned rollout
        r.Find("B")!.State.ShouldBe(GenerationState.Retiring);
        r.Find("B")!.Live.ShouldBeFalse();
        r.PublishOrder.Select(g => g.ModelVersion).ShouldBe(["A"]);
        r = Write(r, r.WithRetired("B"));
        r.Find("B")!.State.ShouldBe(GenerationState.Retired);
        r.WithCreated("B", T0).ShouldBeEmpty(); // late events of B are recognised, not a new generation
        Should.Throw<GenerationRuleException>(() => r.WithBootstrapped("B", T0)).Message.ShouldContain("new model version");
        Should.Throw<GenerationRuleException>(() => r.WithPromoteRequested("B")).Message.ShouldContain("only a filling generation");
    }

    [Fact]
    public void Bootstrapping_a_new_model_while_another_serves_promotes_it_at_once()
    {
        var r = Write(GenerationRegistry.Empty, GenerationRegistry.Empty.WithCreated("A", T0));
        r = Write(r, r.WithBootstrapped("B", T0));
        r.Serving!.ModelVersion.ShouldBe("B");
        r.Find("B")!.Seated.ShouldBeTrue();
        r.Find("A")!.State.ShouldBe(GenerationState.Superseded);
    }

    [Fact]
    public void Promotion_and_seating_requests_set_a_flag_the_seating_clears()
    {
        var r = Write(GenerationRegistry.Empty, GenerationRegistry.Empty.WithBootstrapped("A", T0));
        r = Write(r, r.WithCreated("B", T0));
        r = Write(r, r.WithPromoteRequested("B"));
        r.Find("B")!.PromoteRequested.ShouldBeTrue();
        r.WithPromoteRequested("B").ShouldBeEmpty();
        r.WithPromoteRequested("A").ShouldBeEmpty(); // already serving
        r = Write(r, r.WithSeatRequested("A")); // e.g. after `stats rebuild`
        r.Find("A")!.PromoteRequested.ShouldBeTrue();
        r = Write(r, r.WithSeatLease("A", "w", TimeSpan.FromMinutes(1), T0));
        r = Write(r, r.WithSeated("A", "w", T0, 10));
        r.Find("A")!.PromoteRequested.ShouldBeFalse();
        r.Find("A")!.SeatEpoch.ShouldBe(2);
        r.Find("A")!.State.ShouldBe(GenerationState.Serving);
        r.WithSweepRequested("A").ShouldHaveSingleItem().SweepEpoch.ShouldBe(3);
        r.WithSweepRequested("B").ShouldBeEmpty(); // filling: nothing of it is published yet
    }
}
