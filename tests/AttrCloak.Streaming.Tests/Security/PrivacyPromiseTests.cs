using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Hosting;
using Confluent.Kafka;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Tests.Security;

/// <summary>
/// The privacy promises of the guard, each checked on what one full run (<see cref="PrivacyScenario"/>) left behind:
/// the serving topic, Redis, the log, the metrics and health endpoints. Each search has a positive control (the same
/// search finds what it looks for where it is supposed to be), so a broken search cannot pass silently.
/// </summary>
[Collection(RunsAlone.Name)]
public sealed class PrivacyPromiseTests(RedisServerFixture redis)
{
    /// <summary>A served embedding closer than this (L2) to an original counts as the original (values are ~U(-1, 1) + 1.5).</summary>
    private const double MinDistance = 0.05;
    private const int D = PrivacyScenario.D;

    // The run is shared by the tests of this class (they run one after another); each test checks one promise.
    private static Task<PrivacyScenario>? _scenario;
    private static readonly Lock ScenarioLock = new();

    private Task<PrivacyScenario> Scenario()
    {
        lock (ScenarioLock) return _scenario ??= PrivacyScenario.RunAsync(redis);
    }

    [Fact]
    public async Task Serving_topic_never_carries_an_original_embedding_or_an_attribute_value()
    {
        var s = await Scenario();
        var classPatterns = PrivacyScenario.ClassValues.SelectMany(TextEncodings).ToArray();
        var originalPatterns = s.Originals.Values.SelectMany(v => v).SelectMany(EmbeddingPatterns).ToArray();
        var allOriginals = s.Originals.SelectMany(p => p.Value.Select(x => (User: p.Key, X: x))).ToArray();

        s.Served.Count.ShouldBeGreaterThanOrEqualTo(PrivacyScenario.ColdUsers + PrivacyScenario.WarmUsers + 100);
        var tombstones = 0;
        var closest = double.MaxValue;
        var firstServedToCold = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var m in s.Served)
        {
            var user = Encoding.UTF8.GetString(m.Message.Key);
            s.UserIds.ShouldContain(user, "the serving key is the user id");
            var parts = new List<(string Where, byte[] Bytes)> { ("key", m.Message.Key) };
            foreach (var h in m.Message.Headers ?? []) parts.Add(($"header {h.Key}", [.. Encoding.UTF8.GetBytes(h.Key), .. h.GetValueBytes()]));
            if (m.Message.Value is { } value) parts.Add(("value", value));
            foreach (var (where, bytes) in parts)
            {
                foreach (var pattern in classPatterns)
                    Contains(bytes, pattern).ShouldBeFalse($"a class value is in the {where} of the serving message of {user}");
                foreach (var pattern in originalPatterns)
                    Contains(bytes, pattern).ShouldBeFalse($"bytes or decimal text of an original embedding are in the {where} of the serving message of {user}");
            }
            if (m.Message.Value is null)
            {
                s.Forgotten.ShouldContain(user, "only a forget publishes a tombstone");
                tombstones++;
                continue;
            }
            EventCodec.TryDecodeCloaked(m.Message.Value, out var cloaked, out var error).ShouldBeTrue(error?.Message);
            cloaked.UserId.ShouldBe(user);
            foreach (var (owner, x) in allOriginals)
            {
                var distance = Distance(cloaked.Embedding, x);
                closest = Math.Min(closest, distance);
                distance.ShouldBeGreaterThan(MinDistance, $"the embedding served to {user} (v{cloaked.Version}) is {distance:F4} from an original of {owner}");
            }
            if (s.ColdUserIds.Contains(user)) firstServedToCold.TryAdd(user, cloaked.Embedding);
        }
        tombstones.ShouldBeGreaterThanOrEqualTo(s.Forgotten.Count);
        var warmUp = s.Served.Count(m => m.Message.Value is { } v && EventCodec.TryDecodeCloaked(v, out var c, out _) && c.Embedding.All(x => x == 0));
        // Cold start: the users served before any statistics existed got the warm-up vector, nothing of their own.
        firstServedToCold.Count.ShouldBe(PrivacyScenario.ColdUsers);
        var distinct = firstServedToCold.Values.Select(v => string.Join(',', v)).Distinct().Count();
        distinct.ShouldBeLessThan(PrivacyScenario.ColdUsers / 2, "cold-start users must share the warm-up vector, not get one each");
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{s.Served.Count} serving messages ({tombstones} tombstones) of {s.UserIds.Count} users checked against {classPatterns.Length} class patterns and {originalPatterns.Length} original patterns; closest served-to-original distance {closest:F3}; {distinct} distinct cold-start vectors; {warmUp} messages carried the all-zero warm-up vector");

        // Positive control: the same search finds an original's bytes in the input it came from.
        var sample = s.Originals.First().Value[0];
        Contains(EventCodec.Encode(new EmbeddingUpdate("e", "u", 1, DateTimeOffset.UtcNow, "m", sample, null), binary: true), EmbeddingPatterns(sample).First()).ShouldBeTrue();
        EmbeddingPatterns(sample).Skip(D - 1).Count(p => Contains(EventCodec.Encode(new EmbeddingUpdate("e", "u", 1, DateTimeOffset.UtcNow, "m", sample, null)), p)).ShouldBe(D, "each value's decimal text in the JSON input");
    }

    [Fact]
    public async Task Dead_letter_reasons_never_quote_user_ids_or_attribute_values()
    {
        // The dead-letter topic keeps the rejected message as it came (for replay); the reason the worker adds must not
        // repeat what is in it.
        var s = await Scenario();
        s.DeadLetters.Count.ShouldBe(s.ExpectedDeadLetters);
        foreach (var m in s.DeadLetters)
        {
            m.Message.Headers.TryGetLastBytes(KafkaHeaders.DeadLetter, out var header).ShouldBeTrue();
            EventCodec.TryDecodeDeadLetter(header, out var letter, out var error).ShouldBeTrue(error?.Message);
            var text = string.Join("\n", m.Message.Headers.Select(h => h.Key + "=" + Encoding.UTF8.GetString(h.GetValueBytes())));
            foreach (var secret in s.UserIds.Concat(PrivacyScenario.ClassValues))
                text.ShouldNotContain(secret, Case.Sensitive, $"dead letter {letter.Reason}: {letter.Message}");
        }
    }

    [Fact]
    public async Task After_forget_no_redis_key_holds_the_users_data_only_the_keyed_tombstone()
    {
        var s = await Scenario();
        var ct = TestContext.Current.CancellationToken;
        var dump = await DumpAsync(redis.Redis, ct);
        dump.Count.ShouldBeGreaterThan(PrivacyScenario.WarmUsers, "the dump holds the store's keys");

        var servedTo = new Dictionary<string, List<float[]>>(StringComparer.Ordinal);
        foreach (var m in s.Served)
            if (m.Message.Value is { } v && EventCodec.TryDecodeCloaked(v, out var c, out _))
                (servedTo.TryGetValue(c.UserId, out var list) ? list : servedTo[c.UserId] = []).Add(c.Embedding);

        // A vector served to several users (the warm-up vector before the statistics are warm) is nobody's data.
        var shared = servedTo.Values.SelectMany(v => v.Select(x => string.Join(',', x))).GroupBy(x => x).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        foreach (var list in servedTo.Values) list.RemoveAll(x => shared.Contains(string.Join(',', x)));

        foreach (var user in s.Forgotten)
        {
            var patterns = UserIdEncodings(user)
                .Concat(s.Originals[user].SelectMany(EmbeddingPatterns))
                .Concat(s.Originals[user].SelectMany(Float64Patterns))
                .Concat(servedTo.GetValueOrDefault(user, []).SelectMany(EmbeddingPatterns))
                .Concat(servedTo.GetValueOrDefault(user, []).SelectMany(Float64Patterns))
                .ToArray();
            foreach (var (key, type, bytes) in dump)
                foreach (var pattern in patterns)
                    Contains(bytes, pattern).ShouldBeFalse($"Redis {type} key '{key}' still holds data of forgotten user {user}: pattern {Convert.ToHexString(pattern)} in {Convert.ToHexString(bytes)}");

            // The tombstone: named by HMAC-SHA256(secret, id), which cannot be inverted without the secret (kept out of
            // Redis), holding only the forget's version so that a redelivered older event cannot resurrect the user.
            var tomb = $"{s.Prefix}:tomb:{Convert.ToHexStringLower(HMACSHA256.HashData(s.TombstoneSecret, Encoding.UTF8.GetBytes(user)))}";
            var entry = dump.SingleOrDefault(d => d.Key == tomb);
            entry.Key.ShouldBe(tomb, $"the tombstone of {user}");
            Encoding.UTF8.GetString(entry.Bytes).ShouldBe(tomb + "\n" + s.LastVersion[user]);
            (await redis.Redis.GetDatabase().KeyTimeToLiveAsync(tomb)).ShouldNotBeNull("a tombstone expires");
        }

        // Class values: only the catalog in the layout meta (every class of the deployment, nobody's own) names them.
        var meta = $"{s.Prefix}:g:mf-sec-1:meta"; // the generation's layout meta
        foreach (var (key, type, bytes) in dump.Where(d => d.Key != meta))
            foreach (var pattern in PrivacyScenario.ClassValues.SelectMany(TextEncodings))
                Contains(bytes, pattern).ShouldBeFalse($"Redis {type} key '{key}' holds a class value");

        // Positive controls: the same search finds a kept user's id and embedding, and the catalog in meta.
        var kept = s.Originals.Keys.First(u => !s.Forgotten.Contains(u) && s.LastVersion[u] == 1);
        dump.ShouldContain(d => Contains(d.Bytes, Encoding.UTF8.GetBytes(kept)));
        dump.ShouldContain(d => Contains(d.Bytes, EmbeddingPatterns(s.Originals[kept][0]).First()));
        dump.ShouldContain(d => d.Key == meta && Contains(d.Bytes, Encoding.UTF8.GetBytes(PrivacyScenario.Attributes["age"][2])));
    }

    [Fact]
    public async Task Logs_metrics_and_health_endpoints_never_contain_user_ids_or_attribute_values()
    {
        var s = await Scenario();
        // The run really logged at debug level (librdkafka's debug contexts included), dead-lettered, forgot and audited.
        s.LogLines.Count(l => l.StartsWith("Debug", StringComparison.Ordinal) || l.StartsWith("Trace", StringComparison.Ordinal)).ShouldBeGreaterThan(10);
        s.AuditRuns.ShouldBeGreaterThanOrEqualTo(1);
        var metrics = s.Scrapes[GuardEndpoints.MetricsPath];
        metrics.ShouldContain("attrcloak_dead_letters_total");
        metrics.ShouldContain("attrcloak_published_total{kind=\"tombstone\"}");
        metrics.ShouldContain("attrcloak_audit_balanced_accuracy{attribute=\"gender\"", Case.Sensitive, "attribute NAMES are fine as labels");

        var texts = s.LogLines.Select(l => ("log", l)).Concat(s.Scrapes.Select(p => (p.Key, p.Value))).ToArray();
        var secrets = s.UserIds.Concat(PrivacyScenario.ClassValues).ToArray();
        var leaks = texts.SelectMany(t => secrets.Where(x => t.Item2.Contains(x, StringComparison.Ordinal)).Select(x => $"{t.Item1}: '{x}' in {t.Item2}")).Take(5).ToArray();
        leaks.ShouldBeEmpty();
        TestContext.Current.TestOutputHelper?.WriteLine($"{s.LogLines.Count} log lines, {metrics.Length} bytes of metrics checked for {secrets.Length} user ids and class values");
    }

    // ---- search helpers ------------------------------------------------------------------------------------------

    internal static bool Contains(ReadOnlySpan<byte> haystack, ReadOnlySpan<byte> needle) => haystack.IndexOf(needle) >= 0;

    private static IEnumerable<byte[]> TextEncodings(string text)
    {
        yield return Encoding.UTF8.GetBytes(text);
        yield return Encoding.Unicode.GetBytes(text);
        yield return Encoding.UTF8.GetBytes(Uri.EscapeDataString(text));
    }

    private static IEnumerable<byte[]> UserIdEncodings(string user)
    {
        var utf8 = Encoding.UTF8.GetBytes(user);
        foreach (var e in TextEncodings(user)) yield return e;
        yield return Encoding.ASCII.GetBytes(Convert.ToHexStringLower(utf8));
        yield return Encoding.ASCII.GetBytes(Convert.ToHexString(utf8));
        yield return Encoding.ASCII.GetBytes(Convert.ToBase64String(utf8).TrimEnd('='));
        yield return SHA256.HashData(utf8); // an unkeyed hash is as good as the id (ids can be enumerated)
        yield return Encoding.ASCII.GetBytes(Convert.ToHexStringLower(SHA256.HashData(utf8)));
    }

    /// <summary>
    /// Float32 little-endian bytes of each pair of consecutive values (8 bytes: no chance match), and each value's
    /// shortest decimal text as a whole JSON array element (delimited, so a digit run inside another number does not count).
    /// </summary>
    internal static IEnumerable<byte[]> EmbeddingPatterns(float[] x)
    {
        var bytes = MemoryMarshal.AsBytes(x.AsSpan()).ToArray();
        for (var i = 0; i + 8 <= bytes.Length; i += 4) yield return bytes[i..(i + 8)];
        foreach (var v in x)
        {
            var text = v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            foreach (var (before, after) in new[] { ('[', ','), ('[', ']'), (',', ','), (',', ']') })
                yield return Encoding.ASCII.GetBytes($"{before}{text}{after}");
        }
    }

    private static IEnumerable<byte[]> Float64Patterns(float[] x) => x.Select(v => BitConverter.GetBytes((double)v));

    private static double Distance(float[] a, float[] b)
    {
        double sum = 0;
        for (var i = 0; i < a.Length; i++) sum += (a[i] - b[i]) * (double)(a[i] - b[i]);
        return Math.Sqrt(sum);
    }

    /// <summary>Every key of the database (all prefixes): name, type, and name + value bytes (hash fields and values, members, elements).</summary>
    private static async Task<List<(string Key, RedisType Type, byte[] Bytes)>> DumpAsync(IConnectionMultiplexer redis, CancellationToken ct)
    {
        var db = redis.GetDatabase();
        var result = new List<(string, RedisType, byte[])>();
        foreach (var server in redis.GetServers())
            await foreach (var key in server.KeysAsync(pattern: "*", pageSize: 1000).WithCancellation(ct))
            {
                var type = await db.KeyTypeAsync(key);
                var parts = new List<byte[]> { (byte[])key! };
                switch (type)
                {
                    case RedisType.String: parts.Add((byte[])(await db.StringGetAsync(key))!); break;
                    case RedisType.Hash: foreach (var e in await db.HashGetAllAsync(key)) { parts.Add((byte[])e.Name!); parts.Add((byte[])e.Value!); } break;
                    case RedisType.Set: foreach (var e in await db.SetMembersAsync(key)) parts.Add((byte[])e!); break;
                    case RedisType.SortedSet: foreach (var e in await db.SortedSetRangeByRankWithScoresAsync(key)) parts.Add([.. (byte[])e.Element!, .. BitConverter.GetBytes(e.Score)]); break;
                    case RedisType.List: foreach (var e in await db.ListRangeAsync(key)) parts.Add((byte[])e!); break;
                    case RedisType.None: continue; // deleted meanwhile (another test)
                    default: parts.Add(Encoding.UTF8.GetBytes($"<{type}: not dumped>")); break;
                }
                result.Add((key!, type, parts.Aggregate(Array.Empty<byte>(), (all, p) => [.. all, .. "\n"u8, .. p])[1..]));
            }
        return result;
    }
}
