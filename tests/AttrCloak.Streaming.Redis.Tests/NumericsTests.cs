using AttrCloak.Core.Data;
using static AttrCloak.Tools.Samples.Streaming.StoreSamples;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Redis.Tests;

public sealed class NumericsTests(RedisServerFixture redis)
{
    /// <summary>
    /// 20,000 remove/re-add cycles (re-embeddings and class moves) over 100 resident users whose embeddings are far
    /// from the origin (mean 3, sd 1): the stored sums drift by rounding only, so means and covariances still equal a
    /// two-pass recomputation to ~1e-12, and the verifier agrees at its default tolerance.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Many_add_remove_cycles_stay_equal_to_a_recomputation(bool referenceAtMean)
    {
        var ct = TestContext.Current.CancellationToken;
        const int d = 16;
        var catalog = new AttributeSpec[] { new("gender", ["F", "M"]), new("age", ["a", "b", "c", "d"]) };
        var reference = referenceAtMean ? Enumerable.Repeat(3f, d).ToArray() : null;
        var options = Options(redis.NewPrefix("cycles"), d, catalog, reference);
        using var store = new RedisStateStore(redis.Redis, options);
        var rng = new Random(21);
        var model = new PopulationModel(catalog, d);
        var version = new Dictionary<string, long>();
        var initial = Enumerable.Range(0, 100).Select(i => new UserStateChange($"u{i}", "e0", 1)
        {
            Original = RandomVector(rng, d, offset: 3),
            Cloaked = RandomVector(rng, d, offset: 3),
            Classes = RandomClasses(rng, catalog, 0),
        }).ToList();
        await store.ApplyAsync(initial, ct);
        foreach (var e in initial)
        {
            model.Set(e.UserId, e.Original!, e.Cloaked!, e.Classes!);
            version[e.UserId] = 1;
        }

        const int batchSize = 100;
        for (var round = 0; round < 200; round++)
        {
            var batch = new List<UserStateChange>(batchSize);
            for (var i = 0; i < batchSize; i++)
            {
                var id = $"u{rng.Next(100)}";
                var v = ++version[id];
                // Half of the events also bring a new original (far from the reference point as well).
                var original = rng.Next(2) == 0 ? RandomVector(rng, d, offset: 3, scale: 1 + rng.NextDouble()) : null;
                batch.Add(rng.Next(4) == 0
                    ? new UserStateChange(id, $"e{v}", v) { Original = original, Cloaked = RandomVector(rng, d, offset: 3), Classes = RandomClasses(rng, catalog, 0) }
                    : new UserStateChange(id, $"e{v}", v) { Original = original, Cloaked = RandomVector(rng, d, offset: 3, scale: 1 + rng.NextDouble()) });
            }
            (await store.ApplyAsync(batch, ct)).ShouldAllBe(r => r.Outcome == ApplyOutcome.Applied);
            foreach (var e in batch)
                model.Set(e.UserId, e.Original ?? model.Users[e.UserId].Original, e.Cloaked ?? model.Users[e.UserId].Cloaked,
                    e.Classes ?? model.Users[e.UserId].Classes);
        }

        var snapshot = await store.ReadStatisticsAsync(ct);
        model.ShouldMatch(snapshot, tolerance: 1e-11);
        var report = await new StatisticsVerifier(redis.Redis, options).VerifyAsync(cancellationToken: ct);
        report.IsConsistent.ShouldBeTrue(string.Join("; ", report.Inconsistent));
        var worst = report.Classes.Max(c => Math.Max(c.MaxAbsSumDifference, c.MaxAbsCoMomentDifference));
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"reference {(referenceAtMean ? "at the mean" : "at 0")}: max |stored - recomputed| = {worst:E2} after 20,000 cycles");
        worst.ShouldBeLessThan(1e-8);
    }

    [Fact]
    public async Task A_class_emptied_by_moves_and_forgets_reads_as_exact_zeros()
    {
        var ct = TestContext.Current.CancellationToken;
        const int d = 8;
        var options = Options(redis.NewPrefix("empty"), d);
        using var store = new RedisStateStore(redis.Redis, options);
        var rng = new Random(22);
        var users = Enumerable.Range(0, 20).Select(i => new UserStateChange($"u{i}", "e1", 1)
        {
            Original = RandomVector(rng, d),
            Cloaked = RandomVector(rng, d, offset: 1.7),
            Classes = [0, i % 3],
        }).ToList();
        await store.ApplyAsync(users, ct);

        var leave = users.Select((u, i) => i % 2 == 0
            ? UserStateChange.ForgetUser(u.UserId, "e2", 2)
            : new UserStateChange(u.UserId, "e2", 2) { Classes = [1, i % 3] }).ToList();
        await store.ApplyAsync(leave.Take(7).ToList(), ct);
        await store.ApplyAsync(leave.Skip(7).ToList(), ct);

        var gender = (await store.ReadStatisticsAsync(ct))["gender"];
        gender.Counts.ShouldBe([0L, 10L]);
        gender.Means[0].ShouldAllBe(v => v == 0);
        gender.Covariances[0].ShouldAllBe(v => v == 0);
        (await redis.Redis.GetDatabase().KeyExistsAsync($"{options.Prefix}:stats:gender:0")).ShouldBeFalse();
    }
}

public sealed class UserRecordTests
{
    [Fact]
    public void A_cache_entry_gives_the_compare_and_set_token_of_what_it_says_the_store_holds()
    {
        var s5 = new AttrCloak.Streaming.State.UserState("a", 5, "e5", [1f], [2f], [0]);
        UserRecord.Of(new PriorUser(s5, null)).Token.ToString().ShouldBe("U5|e5"); // a state's token: version and event id
        UserRecord.Of(new PriorUser(null, 6)).Token.ToString().ShouldBe("T6");
        UserRecord.Of(PriorUser.Nothing).Token.ToString().ShouldBe("");
        UserRecord.ForTombstone(6).Prior.ShouldBe(new PriorUser(null, 6));
        UserRecord.ForState(s5).Prior.State.ShouldBeSameAs(s5);
    }
}
