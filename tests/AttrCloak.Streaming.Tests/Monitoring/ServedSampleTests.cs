using AttrCloak.Streaming.Monitoring;

namespace AttrCloak.Streaming.Tests.Monitoring;

public sealed class ServedSampleTests
{
    [Fact]
    public void Keeps_at_most_capacity_distinct_users_whatever_the_number_of_updates()
    {
        var sample = new ServedSample(capacity: 50, dimension: 2, attributes: 1, hashKey: 7);
        for (var pass = 0; pass < 3; pass++)
            for (var u = 0; u < 1000; u++)
                sample.OnServed($"u{u}", "m1", [u, pass], [u % 2]);
        sample.Count.ShouldBe(50);
        var (embeddings, classes, users) = sample.Snapshot();
        users.ShouldBe(50);
        embeddings.Length.ShouldBe(100);
        classes.Length.ShouldBe(50);
        // Every sampled entry holds its user's latest embedding (pass 2).
        for (var i = 0; i < users; i++)
            embeddings[i * 2 + 1].ShouldBe(2f);
    }

    [Fact]
    public void Is_the_same_set_whatever_the_arrival_order()
    {
        var a = new ServedSample(30, 1, 1, hashKey: 11);
        var b = new ServedSample(30, 1, 1, hashKey: 11);
        var ids = Enumerable.Range(0, 500).Select(i => $"user-{i}").ToArray();
        foreach (var id in ids) a.OnServed(id, "m1", [1f], [0]);
        foreach (var id in ids.Reverse()) b.OnServed(id, "m1", [1f], [0]);
        ids.Where(a.Contains).ShouldBe(ids.Where(b.Contains));
    }

    [Fact]
    public void Is_roughly_uniform_over_users()
    {
        // Users 0..999 split in two halves; a uniform sample of 400 takes ~200 from each.
        var sample = new ServedSample(400, 1, 1, hashKey: 3);
        for (var u = 0; u < 1000; u++)
            sample.OnServed($"u{u}", "m1", [u < 500 ? 0f : 1f], [0]);
        var (embeddings, _, users) = sample.Snapshot();
        var firstHalf = embeddings.Take(users).Count(v => v == 0f);
        firstHalf.ShouldBeInRange(160, 240);
    }

    [Fact]
    public void A_forgotten_user_leaves_and_the_place_is_refilled()
    {
        var sample = new ServedSample(10, 1, 1, hashKey: 5);
        for (var u = 0; u < 100; u++) sample.OnServed($"u{u}", "m1", [u], [0]);
        var member = Enumerable.Range(0, 100).Select(u => $"u{u}").First(sample.Contains);
        var version = sample.Version;
        sample.OnForgotten(member);
        sample.Contains(member).ShouldBeFalse();
        sample.Count.ShouldBe(9);
        sample.Version.ShouldBeGreaterThan(version);
        sample.Snapshot().Embeddings.ShouldNotContain(float.Parse(member[1..], System.Globalization.CultureInfo.InvariantCulture));
        for (var u = 100; u < 300; u++) sample.OnServed($"u{u}", "m1", [u], [0]);
        sample.Count.ShouldBe(10);
        sample.Contains(member).ShouldBeFalse();
    }

    [Fact]
    public void Seeding_never_overrides_a_served_state_nor_brings_back_a_user_forgotten_meanwhile()
    {
        var sample = new ServedSample(100, 1, 1, hashKey: 9);
        sample.BeginSeeding();
        sample.OnServed("fresh", "m1", [2f], [0]);
        sample.OnSeeded("fresh", [1f], [0]);     // read from the store before the pipeline served version 2
        sample.OnForgotten("gone");
        sample.OnSeeded("gone", [5f], [1]);      // read from the store before the forget
        sample.OnSeeded("old", [3f], [1]);
        sample.EndSeeding();
        sample.Contains("gone").ShouldBeFalse();
        sample.Contains("old").ShouldBeTrue();
        sample.Snapshot().Embeddings.Order().ShouldBe([2f, 3f]);
    }

    [Fact]
    public void Rejects_wrong_shapes()
    {
        var sample = new ServedSample(10, 3, 2);
        Should.Throw<ArgumentException>(() => sample.OnServed("u", "m1", [1f, 2f], [0, 0]));
        Should.Throw<ArgumentException>(() => sample.OnServed("u", "m1", [1f, 2f, 3f], [0]));
    }
}
