using static AttrCloak.Tools.Samples.Streaming.StoreSamples;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Redis.Tests;

public sealed class StatisticsVerifierTests(RedisServerFixture redis)
{
    private const int D = 8;

    [Fact]
    public async Task Verify_detects_corrupted_statistics_and_rebuild_repairs_them()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("verify"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var verifier = new StatisticsVerifier(redis.Redis, options);
        var rng = new Random(31);
        var model = new PopulationModel(SmallCatalog, D);
        var batch = Enumerable.Range(0, 60).Select(i => new UserStateChange($"u{i}", "e1", 1)
        {
            Original = RandomVector(rng, D),
            Cloaked = RandomVector(rng, D),
            Classes = [i % 2, i % 3],
        }).ToList();
        await store.ApplyAsync(batch, ct);
        foreach (var e in batch) model.Set(e.UserId, e.Original!, e.Cloaked!, e.Classes!);

        var clean = await verifier.VerifyAsync(cancellationToken: ct);
        clean.IsConsistent.ShouldBeTrue();
        clean.UsersScanned.ShouldBe(60);
        clean.Classes.Count.ShouldBe(10); // 5 classes, served and original
        clean.Of(StatisticsPopulation.Original).Count().ShouldBe(5);

        // Corrupt: one co-moment entry, one count, one key that is not a float64 vector at all (served), and one sum
        // of an original class.
        var db = redis.Redis.GetDatabase();
        var ageKey = $"{options.Prefix}:stats:age:1";
        var values = new double[SufficientStatistics.Length(D)];
        Codec.BytesToDoubles((byte[])(await db.StringGetAsync(ageKey))!, values);
        values[1 + D + 7] += 1e-3;
        await db.StringSetAsync(ageKey, Codec.DoublesToBytes(values));
        var genderKey = $"{options.Prefix}:stats:gender:0";
        Codec.BytesToDoubles((byte[])(await db.StringGetAsync(genderKey))!, values);
        values[0] += 1;
        await db.StringSetAsync(genderKey, Codec.DoublesToBytes(values));
        await db.StringSetAsync($"{options.Prefix}:stats:age:2", "garbage");
        var originalKey = $"{options.Prefix}:ostats:age:1";
        Codec.BytesToDoubles((byte[])(await db.StringGetAsync(originalKey))!, values);
        values[1 + 3] -= 2e-4;
        await db.StringSetAsync(originalKey, Codec.DoublesToBytes(values));

        var corrupt = await verifier.VerifyAsync(cancellationToken: ct);

        corrupt.IsConsistent.ShouldBeFalse();
        corrupt.Inconsistent.Select(c => $"{c.Population}:{c.Attribute}:{c.ClassIndex}")
            .ShouldBe(["Served:gender:0", "Served:age:1", "Served:age:2", "Original:age:1"], ignoreOrder: true);
        ClassStatisticsDifference Find(StatisticsPopulation p, string attribute, int k) =>
            corrupt.Classes.Single(c => c.Population == p && c.Attribute == attribute && c.ClassIndex == k);
        var age1 = Find(StatisticsPopulation.Served, "age", 1);
        age1.CountDifference.ShouldBe(0);
        age1.MaxAbsCoMomentDifference.ShouldBe(1e-3, 1e-9);
        age1.MaxAbsSumDifference.ShouldBeLessThan(1e-12);
        Find(StatisticsPopulation.Served, "gender", 0).CountDifference.ShouldBe(1);
        Find(StatisticsPopulation.Served, "age", 2).Malformed.ShouldBeTrue();
        var originalAge1 = Find(StatisticsPopulation.Original, "age", 1);
        originalAge1.CountDifference.ShouldBe(0);
        originalAge1.MaxAbsSumDifference.ShouldBe(2e-4, 1e-9);
        originalAge1.MaxAbsCoMomentDifference.ShouldBeLessThan(1e-12);
        Find(StatisticsPopulation.Original, "age", 2).IsConsistent.ShouldBeTrue(); // the served twin is the malformed one

        var rebuilt = await verifier.RebuildAsync(cancellationToken: ct);

        rebuilt.Rebuilt.ShouldBeTrue();
        rebuilt.Inconsistent.Count().ShouldBe(4);
        rebuilt.Version.Sequence.ShouldBe(corrupt.Version.Sequence + 1);
        (await verifier.VerifyAsync(cancellationToken: ct)).IsConsistent.ShouldBeTrue();
        // The store sees the new version, drops its copy, and goes on from the repaired values.
        model.ShouldMatch(await store.ReadStatisticsAsync(ct));
        var move = new UserStateChange("u4", "e2", 2) { Classes = [1, 2] };
        (await store.ApplyAsync([move], ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        model.Set("u4", model.Users["u4"].Original, model.Users["u4"].Cloaked, [1, 2]);
        // The store moved u4's original contribution from the repaired values as well.
        model.ShouldMatch(await store.ReadStatisticsAsync(ct));
        (await verifier.VerifyAsync(cancellationToken: ct)).IsConsistent.ShouldBeTrue();
    }

    [Fact]
    public async Task Rebuild_recreates_deleted_statistics_from_user_states()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("rebuild"), D);
        using var store = new RedisStateStore(redis.Redis, options);
        var rng = new Random(32);
        var model = new PopulationModel(SmallCatalog, D);
        var batch = Enumerable.Range(0, 25).Select(i => NewUser($"u{i}", 1, rng, D)).ToList();
        await store.ApplyAsync(batch, ct);
        foreach (var e in batch) model.Set(e.UserId, e.Original!, e.Cloaked!, e.Classes!);
        var db = redis.Redis.GetDatabase();
        var statsKeys = (await RedisStateStoreTests.ScanAsync(db, options.Prefix))
            .Where(k => k.ToString().Contains(":stats:") || k.ToString().Contains(":ostats:")).ToList();
        statsKeys.Count.ShouldBe(10);
        foreach (var key in statsKeys) await db.KeyDeleteAsync(key);

        var report = await new StatisticsVerifier(redis.Redis, options).RebuildAsync(cancellationToken: ct);

        report.IsConsistent.ShouldBeFalse(); // as found before the rebuild
        report.Inconsistent.Count(c => c.Population == StatisticsPopulation.Original).ShouldBe(5);
        model.ShouldMatch(await store.ReadStatisticsAsync(ct));
    }

    [Fact]
    public async Task Verifying_a_prefix_without_data_reports_an_empty_consistent_state()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = Options(redis.NewPrefix("nothing"), D);

        var report = await new StatisticsVerifier(redis.Redis, options).VerifyAsync(cancellationToken: ct);

        report.IsConsistent.ShouldBeTrue();
        report.UsersScanned.ShouldBe(0);
        await Should.ThrowAsync<StateStoreLayoutException>(() => new StatisticsVerifier(redis.Redis, options).RebuildAsync(cancellationToken: ct));
    }
}
