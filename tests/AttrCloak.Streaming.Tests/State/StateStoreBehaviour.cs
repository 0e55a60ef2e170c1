using System.Security.Cryptography;
using AttrCloak.Core.Data;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Tests.State;

/// <summary>
/// The behaviour every <see cref="IStateStore"/> must have, run unchanged against the Redis store (real redis-server)
/// and the in-process store (<see cref="RedisStateStoreBehaviourTests"/>, <see cref="InMemoryStateStoreBehaviourTests"/>),
/// so that the two cannot drift: outcomes and states follow <see cref="StoreModel"/>, the statistics of both
/// populations equal a direct computation, the statistics version moves exactly with the statistics, forget leaves no
/// trace, verification catches a corrupted class.
/// </summary>
public abstract class StateStoreBehaviour
{
    protected const int D = 6;

    protected static readonly AttributeSpec[] Catalog =
    [
        new("gender", ["F", "M"]),
        new("age", ["<25", "25-44", "45+"]),
    ];

    /// <summary>A new, empty store of its own (isolated from every other test's).</summary>
    protected abstract IStateStore NewStore(StateStoreOptions options);

    /// <summary>Options of a new deployment (prefix etc. as the store needs).</summary>
    protected virtual StateStoreOptions NewOptions() => new()
    {
        Dimension = D,
        Attributes = Catalog,
        TombstoneSecret = RandomNumberGenerator.GetBytes(32),
    };

    /// <summary>The store's statistics compared with a recomputation from its user states.</summary>
    protected abstract Task<StatisticsVerificationReport> VerifyAsync(IStateStore store, StateStoreOptions options);

    /// <summary>Adds <paramref name="delta"/> to one stored sum (index into the slot's float64 vector).</summary>
    protected abstract Task CorruptAsync(IStateStore store, StateStoreOptions options, StatisticsPopulation population, int attribute, int cls, int index, double delta);

    /// <summary>Asserts that nothing the store holds contains the user id or any of the embeddings.</summary>
    protected abstract Task AssertNoTraceAsync(IStateStore store, StateStoreOptions options, string userId, IReadOnlyList<float[]> embeddings);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static float[] Vector(Random rng, double offset = 0)
    {
        var v = new float[D];
        for (var i = 0; i < D; i++)
            v[i] = (float)(offset + Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()) + 0.3 * i / D);
        return v;
    }

    private static int[] Classes(Random rng, double unknownRate = 0.1) =>
        Catalog.Select(a => rng.NextDouble() < unknownRate ? -1 : rng.Next(a.ClassCount)).ToArray();

    private static UserStateChange NewUser(string id, long version, Random rng) =>
        new(id, $"e-{id}-{version}", version) { Original = Vector(rng), Cloaked = Vector(rng, 0.5), Classes = Classes(rng) };

    private async Task<(IStateStore Store, StateStoreOptions Options, StoreModel Model)> StartAsync(params UserStateChange[] initial)
    {
        var options = NewOptions();
        var store = NewStore(options);
        var model = new StoreModel(Catalog, D);
        if (initial.Length > 0) (await store.ApplyAsync(initial, Ct)).Select(r => r.Outcome).ShouldBe(model.Apply(initial));
        return (store, options, model);
    }

    private static async Task ShouldHoldAsync(IStateStore store, StoreModel model, IEnumerable<string> userIds)
    {
        var ids = userIds.ToList();
        var stored = await store.GetUsersAsync(ids, Ct);
        for (var i = 0; i < ids.Count; i++) stored[i].ShouldBeEquivalentTo(model[ids[i]]);
        model.ShouldMatch(await store.ReadStatisticsAsync(Ct));
    }

    [Fact]
    public async Task A_batch_of_new_users_is_stored_with_the_statistics_of_both_populations()
    {
        var rng = new Random(1);
        var batch = Enumerable.Range(0, 30).Select(i => NewUser($"u{i}", 1, rng)).ToArray();
        var (store, _, model) = await StartAsync(batch);

        await ShouldHoldAsync(store, model, batch.Select(e => e.UserId).Append("nobody"));
        var snapshot = await store.ReadStatisticsAsync(Ct);
        snapshot.Version.Sequence.ShouldBe(1);
        snapshot.Originals.Count.ShouldBe(Catalog.Length);
        snapshot.Originals[0].GlobalCount.ShouldBe(batch.Count(e => e.Classes![0] >= 0));
        (await store.GetUserAsync("nobody", Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task A_scan_of_the_served_population_returns_every_stored_user_once_with_its_served_state_and_not_the_forgotten()
    {
        var options = NewOptions();
        var store = NewStore(options);
        var rng = new Random(21);
        var users = Enumerable.Range(0, 1200).Select(u => NewUser($"user{u}", 1, rng)).ToArray();
        foreach (var chunk in users.Chunk(400))
            await store.ApplyAsync(chunk, Ct);
        await store.ApplyAsync([UserStateChange.ForgetUser("user7", "forget-7", 2)], Ct);

        var scanned = new Dictionary<string, ServedUser>();
        await foreach (var user in store.ScanServedAsync(Ct))
            scanned.TryAdd(user.UserId, user).ShouldBeTrue("each user once");
        scanned.Count.ShouldBe(1199);
        scanned.ShouldNotContainKey("user7");
        var sample = users[42];
        scanned[sample.UserId].Cloaked.ShouldBe(sample.Cloaked);
        scanned[sample.UserId].Classes.ShouldBe(sample.Classes);
    }

    [Fact]
    public async Task Redelivered_and_older_events_change_nothing()
    {
        var rng = new Random(2);
        var v1 = NewUser("alice", 1, rng);
        var (store, _, model) = await StartAsync(v1, NewUser("bob", 5, rng));
        var v2 = new UserStateChange("alice", "e-alice-2", 2) { Cloaked = Vector(rng), Classes = [1, 2] };
        (await store.ApplyAsync([v2], Ct))[0].Outcome.ShouldBe(model.Apply(v2));
        var version = await store.StatisticsSequenceAsync(Ct);

        UserStateChange[] again =
        [
            v2, // redelivered
            v1, // older
            new("alice", "another-event", 2) { Cloaked = Vector(rng) }, // same version, another event
            new("bob", "e-bob-4", 4) { Classes = [0, 0] }, // older
        ];
        var results = await store.ApplyAsync(again, Ct);

        results.Select(r => r.Outcome).ShouldBe([ApplyOutcome.Duplicate, ApplyOutcome.Stale, ApplyOutcome.Stale, ApplyOutcome.Stale]);
        model.Apply(again).ShouldBe(results.Select(r => r.Outcome).ToArray());
        (await store.StatisticsSequenceAsync(Ct)).ShouldBe(version);
        await ShouldHoldAsync(store, model, ["alice", "bob"]);
        (await store.GetUserAsync("alice", Ct))!.Original.ShouldBe(v1.Original); // v2 left the original alone
    }

    [Fact]
    public async Task Applied_offset_watermarks_rise_with_the_batches_never_fall_and_also_move_when_nothing_is_written()
    {
        var rng = new Random(12);
        var (store, _, _) = await StartAsync();
        ConsumedOffset[] asked = [new("in.embeddings", 0, -1), new("in.embeddings", 3, -1), new("in.requests", 0, -1)];
        (await store.ReadConsumedOffsetsAsync(asked, Ct)).ShouldBe([-1L, -1L, -1L]);

        var v2 = NewUser("carol", 2, rng);
        await store.ApplyConsumedAsync([v2], [new("in.embeddings", 0, 41), new("in.requests", 0, 7)], Ct);
        (await store.ReadConsumedOffsetsAsync(asked, Ct)).ShouldBe([41L, -1L, 7L]);

        // An older event alone writes no user; its watermark still moves. A lower offset (a redelivery) lowers nothing.
        var older = NewUser("carol", 1, rng);
        (await store.ApplyConsumedAsync([older], [new("in.embeddings", 0, 42), new("in.embeddings", 3, 5), new("in.requests", 0, 3)], Ct))[0]
            .Outcome.ShouldBe(ApplyOutcome.Stale);
        (await store.ReadConsumedOffsetsAsync(asked, Ct)).ShouldBe([42L, 5L, 7L]);
        (await store.GetUserAsync("carol", Ct))!.Version.ShouldBe(2);
    }

    [Fact]
    public async Task Events_of_one_user_in_one_batch_apply_in_order_and_invalid_ones_are_rejected_with_a_reason()
    {
        var rng = new Random(3);
        var (store, _, model) = await StartAsync();
        var nan = Vector(rng);
        nan[2] = float.NaN;
        var create = NewUser("carol", 10, rng);
        UserStateChange[] batch =
        [
            create,
            new("carol", "e11", 11) { Classes = [0, 1] },
            new("carol", "e13", 13) { Cloaked = Vector(rng), Original = Vector(rng, 1) },
            new("carol", "e12", 12) { Classes = [1, 1] }, // late: stale
            create, // older: stale
            new("a", "e1", 1) { Original = Vector(rng), Cloaked = new float[D - 1] },
            new("b", "e1", 1) { Original = Vector(rng), Cloaked = nan },
            new("c", "e1", 1) { Cloaked = Vector(rng) }, // a new user needs both embeddings
            new("d", "e1", 1) { Original = Vector(rng), Cloaked = Vector(rng), Classes = [2, 0] }, // gender has 2 classes
            new("e", "e1", 1) { Original = Vector(rng), Cloaked = Vector(rng), Classes = [0] },
            new("", "e1", 1),
            new("f", "e1", -1) { Original = Vector(rng), Cloaked = Vector(rng) },
        ];

        var results = await store.ApplyAsync(batch, Ct);

        results.Take(5).Select(r => r.Outcome).ShouldBe(
            [ApplyOutcome.Applied, ApplyOutcome.Applied, ApplyOutcome.Applied, ApplyOutcome.Stale, ApplyOutcome.Stale]);
        results.Skip(5).ShouldAllBe(r => r.Outcome == ApplyOutcome.Rejected && !string.IsNullOrWhiteSpace(r.Reason));
        results[7].Reason!.ShouldContain("both the original and the cloaked embedding");
        results[8].Reason!.ShouldContain("gender");
        model.Apply(batch.Take(5));
        await ShouldHoldAsync(store, model, ["carol", "a", "b", "c", "d", "e", "f"]);
        var carol = (await store.GetUserAsync("carol", Ct))!;
        (carol.Version, carol.EventId).ShouldBe((13L, "e13"));
        carol.Classes.ShouldBe([0, 1]);
    }

    [Fact]
    public async Task The_statistics_version_moves_by_one_exactly_when_a_population_changes()
    {
        var rng = new Random(4);
        var created = new UserStateChange("x", "e1", 1) { Original = Vector(rng), Cloaked = Vector(rng), Classes = [1, 2] };
        var (store, _, model) = await StartAsync(created, NewUser("y", 1, rng));
        var v1 = await store.StatisticsSequenceAsync(Ct);
        v1.Epoch.ShouldNotBeNullOrWhiteSpace();
        v1.Sequence.ShouldBe(1);

        async Task<StatisticsVersion> ApplyAsync(UserStateChange e)
        {
            (await store.ApplyAsync([e], Ct))[0].Outcome.ShouldBe(model.Apply(e));
            return await store.StatisticsSequenceAsync(Ct);
        }

        // Same values under a new version: the state moves on, the statistics do not.
        (await ApplyAsync(new UserStateChange("x", "e2", 2) { Cloaked = created.Cloaked, Original = created.Original, Classes = created.Classes })).ShouldBe(v1);
        var before = await store.ReadStatisticsAsync(Ct);

        // Original only: the original statistics move, the served ones stay bit for bit.
        var v3 = await ApplyAsync(new UserStateChange("x", "e3", 3) { Original = Vector(rng, 2) });
        v3.ShouldBe(v1 with { Sequence = 2 });
        var afterOriginal = await store.ReadStatisticsAsync(Ct);
        ShouldBeIdentical(afterOriginal.Attributes, before.Attributes);
        ShouldDiffer(afterOriginal.Originals, before.Originals, created.Classes!);

        // Cloaked only (a re-cloak): the reverse.
        var v4 = await ApplyAsync(new UserStateChange("x", "e4", 4) { Cloaked = Vector(rng, -1) });
        v4.ShouldBe(v1 with { Sequence = 3 });
        var afterCloak = await store.ReadStatisticsAsync(Ct);
        ShouldBeIdentical(afterCloak.Originals, afterOriginal.Originals);
        ShouldDiffer(afterCloak.Attributes, afterOriginal.Attributes, created.Classes!);

        // A class change moves the user between classes in both populations.
        var v5 = await ApplyAsync(new UserStateChange("x", "e5", 5) { Classes = [0, 2] });
        v5.Sequence.ShouldBe(4);
        (await store.ReadStatisticsAsync(Ct)).Version.ShouldBe(v5);
        await ShouldHoldAsync(store, model, ["x", "y"]);
    }

    private static void ShouldBeIdentical(IReadOnlyList<ClassStatisticsSnapshot> a, IReadOnlyList<ClassStatisticsSnapshot> b)
    {
        for (var i = 0; i < a.Count; i++)
        {
            a[i].Counts.ShouldBe(b[i].Counts);
            a[i].Means.SelectMany(m => m).ShouldBe(b[i].Means.SelectMany(m => m));
            a[i].Covariances.SelectMany(m => m).ShouldBe(b[i].Covariances.SelectMany(m => m));
        }
    }

    /// <summary>The classes of the user (<paramref name="classes"/>) changed; every other class is identical.</summary>
    private static void ShouldDiffer(IReadOnlyList<ClassStatisticsSnapshot> after, IReadOnlyList<ClassStatisticsSnapshot> before, int[] classes)
    {
        for (var a = 0; a < after.Count; a++)
            for (var k = 0; k < after[a].Counts.Length; k++)
            {
                var same = after[a].Means[k].SequenceEqual(before[a].Means[k]);
                same.ShouldBe(classes[a] != k, $"{after[a].Attribute}={k}");
            }
    }

    [Fact]
    public async Task Forget_removes_both_contributions_leaves_no_trace_and_blocks_late_events()
    {
        var rng = new Random(5);
        const string target = "user-forget-me-4711";
        var others = Enumerable.Range(0, 20).Select(i => NewUser($"other{i}", 1, rng)).ToArray();
        var created = new UserStateChange(target, "e-create", 1) { Original = Vector(rng, 7.25), Cloaked = Vector(rng, -3.5), Classes = [1, 2] };
        var (store, options, model) = await StartAsync([.. others, created]);
        var moved = new UserStateChange(target, "e-move", 2) { Cloaked = Vector(rng, 2.5), Original = Vector(rng, 4), Classes = [0, 2] };
        (await store.ApplyAsync([moved], Ct))[0].Outcome.ShouldBe(model.Apply(moved));
        var secrets = new[] { created.Original!, created.Cloaked!, moved.Cloaked!, moved.Original! };

        var forget = UserStateChange.ForgetUser(target, "e-forget", 3);
        (await store.ApplyAsync([forget], Ct))[0].Outcome.ShouldBe(model.Apply(forget));

        (await store.GetUserAsync(target, Ct)).ShouldBeNull();
        await ShouldHoldAsync(store, model, [target]);
        var snapshot = await store.ReadStatisticsAsync(Ct);
        snapshot.Originals[1].Counts[2].ShouldBe(others.Count(o => o.Classes![1] == 2));
        await AssertNoTraceAsync(store, options, target, secrets);
        (await VerifyAsync(store, options)).IsConsistent.ShouldBeTrue();

        UserStateChange[] late = [forget, moved, created, new(target, "e-late", 3) { Classes = [1, 1] }];
        var results = await store.ApplyAsync(late, Ct);
        results.Select(r => r.Outcome).ShouldBe([ApplyOutcome.Duplicate, ApplyOutcome.Stale, ApplyOutcome.Stale, ApplyOutcome.Stale]);
        model.Apply(late).ShouldBe(results.Select(r => r.Outcome).ToArray());
        await AssertNoTraceAsync(store, options, target, secrets);

        var again = new UserStateChange(target, "e-again", 4) { Original = Vector(rng), Cloaked = Vector(rng), Classes = [0, 0] };
        (await store.ApplyAsync([again], Ct))[0].Outcome.ShouldBe(model.Apply(again));
        await ShouldHoldAsync(store, model, [target]);
    }

    [Fact]
    public async Task Forgetting_an_unknown_user_still_blocks_its_older_events()
    {
        var rng = new Random(6);
        var (store, _, model) = await StartAsync();
        UserStateChange[] batch = [UserStateChange.ForgetUser("ghost", "f", 9), NewUser("ghost", 8, rng)];

        var results = await store.ApplyAsync(batch, Ct);

        results.Select(r => r.Outcome).ShouldBe([ApplyOutcome.Applied, ApplyOutcome.Stale]);
        model.Apply(batch);
        (await store.GetUserAsync("ghost", Ct)).ShouldBeNull();
        (await store.ReadStatisticsAsync(Ct)).Originals.ShouldAllBe(a => a.GlobalCount == 0);
    }

    [Fact]
    public async Task Buffers_the_caller_reuses_after_apply_or_read_do_not_change_the_store()
    {
        var rng = new Random(7);
        var (store, options, model) = await StartAsync();
        var original = Vector(rng);
        var cloaked = Vector(rng);
        int[] classes = [1, 2];
        var e1 = new UserStateChange("u", "e1", 1) { Original = original, Cloaked = cloaked, Classes = classes };
        (await store.ApplyAsync([e1], Ct))[0].Outcome.ShouldBe(model.Apply(e1));

        // A worker reusing pooled buffers overwrites them after the call; the store must have kept its own copy.
        Array.Fill(original, 9f);
        Array.Fill(cloaked, -9f);
        classes[0] = 0;
        var read = (await store.GetUserAsync("u", Ct))!;
        read.Cloaked[0] = 1234f;
        var e2 = new UserStateChange("u", "e2", 2) { Classes = [0, 0] };
        (await store.ApplyAsync([e2], Ct))[0].Outcome.ShouldBe(model.Apply(e2));

        await ShouldHoldAsync(store, model, ["u"]);
        (await VerifyAsync(store, options)).IsConsistent.ShouldBeTrue();
    }

    [Fact]
    public async Task Verification_finds_a_corrupted_original_class_and_a_corrupted_served_count()
    {
        var rng = new Random(8);
        var batch = Enumerable.Range(0, 24).Select(i => new UserStateChange($"u{i}", "e1", 1)
        {
            Original = Vector(rng),
            Cloaked = Vector(rng),
            Classes = [i % 2, i % 3],
        }).ToArray();
        var (store, options, _) = await StartAsync(batch);
        var clean = await VerifyAsync(store, options);
        clean.IsConsistent.ShouldBeTrue();
        clean.UsersScanned.ShouldBe(24);
        clean.Of(StatisticsPopulation.Served).Count().ShouldBe(5);
        clean.Of(StatisticsPopulation.Original).Count().ShouldBe(5);

        await CorruptAsync(store, options, StatisticsPopulation.Original, 1, 2, 1 + D + 3, 1e-3); // a co-moment of original age=2
        await CorruptAsync(store, options, StatisticsPopulation.Served, 0, 1, 0, 1); // the count of served gender=1

        var report = await VerifyAsync(store, options);

        report.Inconsistent.Select(c => $"{c.Population}:{c.Attribute}:{c.ClassIndex}").ShouldBe(["Served:gender:1", "Original:age:2"], ignoreOrder: true);
        var age2 = report.Classes.Single(c => c.Population == StatisticsPopulation.Original && c.Attribute == "age" && c.ClassIndex == 2);
        age2.MaxAbsCoMomentDifference.ShouldBe(1e-3, 1e-9);
        age2.CountDifference.ShouldBe(0);
        report.Classes.Single(c => c.Population == StatisticsPopulation.Served && c.Attribute == "gender" && c.ClassIndex == 1).CountDifference.ShouldBe(1);
    }

    [Fact]
    public async Task Concurrent_callers_keep_users_and_statistics_consistent()
    {
        var (store, options, model) = await StartAsync();
        var streams = Enumerable.Range(0, 4).Select(w =>
        {
            var rng = new Random(100 + w);
            return Enumerable.Range(1, 15).Select(v => Enumerable.Range(0, 8).Select(u => new UserStateChange($"w{w}u{u}", $"w{w}u{u}-{v}", v)
            {
                Original = Vector(rng),
                Cloaked = Vector(rng),
                Classes = Classes(rng),
            }).ToList()).ToList();
        }).ToList();

        await Task.WhenAll(streams.Select(batches => Task.Run(async () =>
        {
            foreach (var batch in batches)
                (await store.ApplyAsync(batch, Ct)).ShouldAllBe(r => r.Outcome == ApplyOutcome.Applied);
        }, Ct)));

        foreach (var batch in streams.SelectMany(s => s)) model.Apply(batch);
        await ShouldHoldAsync(store, model, model.States.Select(s => s.UserId).ToList());
        (await store.StatisticsSequenceAsync(Ct)).Sequence.ShouldBe(4 * 15);
        (await VerifyAsync(store, options)).IsConsistent.ShouldBeTrue();
    }

    /// <summary>
    /// A seeded stream of creates, re-embeddings (original, cloaked or both), class moves, forgets, re-registrations,
    /// redeliveries and stale events: after every batch the outcomes equal the specification's, and now and then the
    /// users, both populations' statistics and the verification are checked.
    /// </summary>
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public async Task Random_streams_follow_the_specification(int seed)
    {
        var rng = new Random(seed);
        var (store, options, model) = await StartAsync();
        var ids = Enumerable.Range(0, 30).Select(i => $"user{i}").ToArray();
        var sent = ids.ToDictionary(id => id, _ => new List<UserStateChange>());
        var counter = 0;
        var seen = new HashSet<ApplyOutcome>();
        for (var round = 0; round < 50; round++)
        {
            var batch = new List<UserStateChange>();
            var next = new Dictionary<string, long>();
            var size = rng.Next(3) == 0 ? 1 : rng.Next(1, 30);
            for (var i = 0; i < size; i++)
            {
                var id = ids[rng.Next(ids.Length)];
                var history = sent[id];
                var fresh = next.TryGetValue(id, out var nv) ? nv : history.Count == 0 ? 1 : history.Max(e => e.Version) + 1;
                var roll = rng.NextDouble();
                UserStateChange ev;
                if (history.Count > 0 && roll < 0.12) ev = history[rng.Next(history.Count)];
                else if (history.Count > 0 && roll < 0.2)
                    ev = new UserStateChange(id, $"old{counter++}", Math.Max(0, fresh - 1 - rng.Next(0, 3))) { Cloaked = Vector(rng) };
                else
                {
                    var version = fresh + rng.Next(0, 3);
                    next[id] = version + 1;
                    var eventId = $"ev{counter++}";
                    ev = rng.NextDouble() switch
                    {
                        < 0.12 => UserStateChange.ForgetUser(id, eventId, version),
                        < 0.35 => new UserStateChange(id, eventId, version) { Original = Vector(rng), Cloaked = Vector(rng, 0.5), Classes = Classes(rng, 0.2) },
                        < 0.55 => new UserStateChange(id, eventId, version) { Cloaked = Vector(rng, -0.5) },
                        < 0.7 => new UserStateChange(id, eventId, version) { Original = Vector(rng, 1), Cloaked = Vector(rng, -0.5) },
                        < 0.85 => new UserStateChange(id, eventId, version) { Classes = Classes(rng, 0.2) },
                        _ => new UserStateChange(id, eventId, version) { Original = Vector(rng) },
                    };
                }
                batch.Add(ev);
            }
            var expected = model.Apply(batch);
            foreach (var ev in batch) sent[ev.UserId].Add(ev);

            var results = await store.ApplyAsync(batch, Ct);

            results.Select(r => r.Outcome).ShouldBe(expected, $"round {round}");
            seen.UnionWith(expected);
            if (round % 10 == 9)
            {
                await ShouldHoldAsync(store, model, ids);
                var report = await VerifyAsync(store, options);
                report.IsConsistent.ShouldBeTrue(string.Join("; ", report.Inconsistent));
                report.UsersScanned.ShouldBe(model.States.Count());
            }
        }
        seen.ShouldBe([ApplyOutcome.Applied, ApplyOutcome.Duplicate, ApplyOutcome.Stale, ApplyOutcome.Rejected], ignoreOrder: true);
    }

    // ---- what model generations need of a store ---------------------------------------------------------------------

    [Fact]
    public async Task A_recloak_replaces_the_served_embedding_at_the_same_version_only_and_moves_the_served_statistics()
    {
        var rng = new Random(31);
        var (store, options, _) = await StartAsync(NewUser("r", 3, rng), NewUser("other", 1, rng));
        var before = (await store.GetUserAsync("r", Ct))!;
        var servedBefore = await store.ReadStatisticsAsync(Ct);

        var cloak = Vector(rng, 2);
        (await store.ApplyAsync([UserStateChange.RecloakUser("r", "e-r-3-recloak", 3, cloak)], Ct))[0].Outcome.ShouldBe(ApplyOutcome.Applied);
        var after = (await store.GetUserAsync("r", Ct))!;
        after.Cloaked.ShouldBe(cloak);
        after.Original.ShouldBe(before.Original);
        after.Classes.ShouldBe(before.Classes);
        after.Version.ShouldBe(3);
        after.EventId.ShouldBe("e-r-3-recloak");
        var servedAfter = await store.ReadStatisticsAsync(Ct);
        servedAfter.Version.ShouldNotBe(servedBefore.Version);
        servedAfter.Originals[0].GlobalMean.ShouldBe(servedBefore.Originals[0].GlobalMean); // only the served population moved
        (await VerifyAsync(store, options)).IsConsistent.ShouldBeTrue();

        // Another version than the stored one: a newer event won, or the state went.
        (await store.ApplyAsync([UserStateChange.RecloakUser("r", "x", 2, Vector(rng))], Ct))[0].Outcome.ShouldBe(ApplyOutcome.Stale);
        (await store.ApplyAsync([UserStateChange.RecloakUser("nobody", "x", 1, Vector(rng))], Ct))[0].Outcome.ShouldBe(ApplyOutcome.Stale);
        (await store.ApplyAsync([UserStateChange.ForgetUser("other", "f", 2), UserStateChange.RecloakUser("other", "x", 1, Vector(rng))], Ct))
            .Select(r => r.Outcome).ShouldBe([ApplyOutcome.Applied, ApplyOutcome.Stale]);
        (await store.GetUserAsync("r", Ct))!.Cloaked.ShouldBe(cloak);
        // A recloak carries the cloak and nothing else.
        (await store.ApplyAsync([new UserStateChange("r", "y", 3) { Recloak = true, Cloaked = Vector(rng), Original = Vector(rng) }], Ct))[0].Outcome
            .ShouldBe(ApplyOutcome.Rejected);
        (await VerifyAsync(store, options)).IsConsistent.ShouldBeTrue();
    }

    [Fact]
    public async Task Partitions_sweep_marks_and_the_user_count_are_kept_and_a_sweep_scan_sees_every_user()
    {
        var options = NewOptions();
        var store = NewStore(options);
        var rng = new Random(32);
        var users = Enumerable.Range(0, 700).Select(u => NewUser($"s{u}", 1, rng) with { Partition = u % 4, SweepMark = u % 2 }).ToArray();
        foreach (var chunk in users.Chunk(250)) await store.ApplyAsync(chunk, Ct);
        (await store.CountUsersAsync(Ct)).ShouldBe(700);
        // An event without a partition or mark keeps them; a recloak too.
        await store.ApplyAsync([new UserStateChange("s5", "e-s5-2", 2) { Cloaked = Vector(rng) }, UserStateChange.ForgetUser("s6", "f-s6", 2)], Ct);
        (await store.GetUserAsync("s5", Ct))!.Partition.ShouldBe(1);
        (await store.GetUserAsync("s5", Ct))!.SweepMark.ShouldBe(1);
        (await store.CountUsersAsync(Ct)).ShouldBe(699);

        var seen = new Dictionary<string, SweepEntry>();
        var cursor = "0";
        var pages = 0;
        do
        {
            var page = await store.ScanSweepAsync(cursor, 100, Ct);
            foreach (var entry in page.Users) seen[entry.UserId] = entry;
            cursor = page.Cursor;
            pages++;
        }
        while (cursor != "0" && pages < 1000);
        seen.Count.ShouldBe(699);
        seen.ShouldNotContainKey("s6");
        seen["s9"].ShouldBe(new SweepEntry("s9", 1, 1));

        await store.MarkSweptAsync(["s9", "s6", "nobody"], 7, Ct);
        (await store.GetUserAsync("s9", Ct))!.SweepMark.ShouldBe(7);
        (await store.GetUserAsync("s6", Ct)).ShouldBeNull(); // a forgotten user is not re-created by a mark
        (await store.GetUserAsync("nobody", Ct)).ShouldBeNull();
        (await store.CountUsersAsync(Ct)).ShouldBe(699);
        (await VerifyAsync(store, options)).UsersScanned.ShouldBe(699);
    }

    [Fact]
    public async Task A_scan_of_the_states_returns_every_user_whole()
    {
        var rng = new Random(33);
        var users = Enumerable.Range(0, 120).Select(u => NewUser($"w{u}", 2, rng) with { Partition = 3 }).ToArray();
        var (store, _, model) = await StartAsync(users);
        var scanned = new Dictionary<string, UserState>();
        await foreach (var state in store.ScanStatesAsync(Ct)) scanned.TryAdd(state.UserId, state).ShouldBeTrue("each user once");
        scanned.Count.ShouldBe(120);
        scanned["w17"].Original.ShouldBe(model["w17"]!.Original);
        scanned["w17"].Cloaked.ShouldBe(model["w17"]!.Cloaked);
        scanned["w17"].Partition.ShouldBe(3);
        scanned["w17"].Version.ShouldBe(2);
    }

    [Fact]
    public async Task Deleting_every_key_leaves_a_store_that_refuses_work_as_a_lost_one()
    {
        var rng = new Random(34);
        var (store, _, _) = await StartAsync(NewUser("gone", 1, rng));
        await store.DeleteAllAsync(Ct);
        await Should.ThrowAsync<StateStoreLostException>(() => store.GetUsersAsync(["gone"], Ct));
        await Should.ThrowAsync<StateStoreLostException>(() => store.ApplyAsync([NewUser("new", 1, rng)], Ct));
    }
}
