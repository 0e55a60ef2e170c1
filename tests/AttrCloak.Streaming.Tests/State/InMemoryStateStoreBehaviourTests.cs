using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Tests.State;

/// <summary>The shared store behaviour against <see cref="InMemoryStateStore"/>, plus what only the in-process store has.</summary>
public sealed class InMemoryStateStoreBehaviourTests : StateStoreBehaviour
{
    protected override IStateStore NewStore(StateStoreOptions options) => new InMemoryStateStore(options);

    protected override Task<StatisticsVerificationReport> VerifyAsync(IStateStore store, StateStoreOptions options) =>
        Task.FromResult(((InMemoryStateStore)store).VerifyStatistics());

    protected override Task CorruptAsync(IStateStore store, StateStoreOptions options, StatisticsPopulation population,
        int attribute, int cls, int index, double delta)
    {
        ((InMemoryStateStore)store).CorruptForTests(population, attribute, cls, index, delta);
        return Task.CompletedTask;
    }

    protected override Task AssertNoTraceAsync(IStateStore store, StateStoreOptions options, string userId, IReadOnlyList<float[]> embeddings)
    {
        var (vectors, strings) = ((InMemoryStateStore)store).DumpForTests();
        vectors.ShouldNotBeEmpty();
        strings.ShouldAllBe(s => !s.Contains(userId));
        foreach (var v in vectors)
            foreach (var e in embeddings)
                v.AsSpan().SequenceEqual(e).ShouldBeFalse("the store still holds an embedding of the forgotten user");
        return Task.CompletedTask;
    }

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;
        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public async Task A_forget_tombstone_expires_after_its_ttl_and_then_lets_an_older_event_through()
    {
        var ct = TestContext.Current.CancellationToken;
        var clock = new ManualClock(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var options = NewOptions();
        options.TombstoneTtl = TimeSpan.FromHours(1);
        var store = new InMemoryStateStore(options, clock);
        var rng = new Random(1);
        var old = new UserStateChange("u", "e1", 1) { Original = new float[D], Cloaked = new float[D], Classes = [0, 0] };
        old.Original![0] = (float)rng.NextDouble();

        (await store.ApplyAsync([UserStateChange.ForgetUser("u", "f", 2)], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        clock.Now += TimeSpan.FromMinutes(59);
        (await store.ApplyAsync([old], ct))[0].Outcome.ShouldBe(ApplyOutcome.Stale);
        clock.Now += TimeSpan.FromMinutes(2);
        // Like Redis after the TTL: the tombstone is gone, so a very late older event re-creates the user.
        (await store.ApplyAsync([old], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        store.DumpForTests().Strings.Count(s => s.Length == 64).ShouldBe(0); // no tombstone name left
    }

    [Fact]
    public void Options_that_make_no_sense_are_refused_with_every_problem_named()
    {
        var error = Should.Throw<ArgumentException>(() => new InMemoryStateStore(new StateStoreOptions { Dimension = 0 }));

        error.Message.ShouldContain("Dimension");
        error.Message.ShouldContain("Attributes");
        new InMemoryStateStore(new StateStoreOptions { Dimension = 4, Attributes = Catalog }).UserCount.ShouldBe(0); // no secret needed
    }
}
