using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Tests.State;

public sealed class UserCacheTests
{
    private static readonly UserState S5 = new("a", 5, "e5", [1f], [2f], [0]);

    [Fact]
    public void Entries_say_state_tombstone_or_nothing_and_the_least_recently_used_generation_goes()
    {
        var cache = new UserCache(4); // two generations of 2
        cache.Set("a", new PriorUser(S5, null));
        cache.Set("b", new PriorUser(null, 3));
        cache.Set("c", PriorUser.Nothing); // young full: a, b become the old generation
        cache.TryGet("a", out var a).ShouldBeTrue(); // a hit moves a back into the young generation
        a.State.ShouldBeSameAs(S5);
        cache.Set("d", PriorUser.Nothing); // young full again: the old generation (b) goes

        cache.TryGet("b", out _).ShouldBeFalse();
        cache.TryGet("c", out var c).ShouldBeTrue();
        c.ShouldBe(PriorUser.Nothing);
        cache.Set("a", new PriorUser(null, 6)); // a forget written over the state
        cache.TryGet("a", out a).ShouldBeTrue();
        a.ShouldBe(new PriorUser(null, 6));
        cache.Remove("a");
        cache.TryGet("a", out _).ShouldBeFalse();
        cache.Clear();
        cache.Count.ShouldBe(0);
    }

    [Fact]
    public void A_cache_of_capacity_zero_keeps_nothing()
    {
        var cache = new UserCache(0);
        cache.Enabled.ShouldBeFalse();
        cache.Set("a", new PriorUser(S5, null));
        cache.TryGet("a", out _).ShouldBeFalse();
        cache.Count.ShouldBe(0);
    }
}
