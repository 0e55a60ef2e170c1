using System.Security.Cryptography;
using System.Text;
using AttrCloak.Core.Data;
using StackExchange.Redis;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// Where everything lives in Redis, and the fingerprint of what the statistics mean. Key layout (all under one
/// prefix, <c>object:id</c> style):
/// <list type="bullet">
/// <item><c>{prefix}:meta</c> hash: <c>layout</c> (fingerprint), <c>epoch</c> (random id of this generation of the
/// data), <c>seq</c> (statistics sequence, +1 per write), <c>dimension</c>, <c>catalog</c>, <c>reference</c>.</item>
/// <item><c>{prefix}:stats:{attribute}:{classIndex}</c> string (attribute percent-encoded): the class's sufficient statistics
/// of the served (cloaked) embeddings as float64 LE bytes (see <see cref="Statistics.SufficientStatistics"/>); absent = empty class.</item>
/// <item><c>{prefix}:ostats:{attribute}:{classIndex}</c> string: the same statistics of the class's original embeddings.</item>
/// <item><c>{prefix}:user:{userId}</c> hash: <c>v</c> last applied version, <c>e</c> its event id, <c>o</c>/<c>c</c>
/// original/cloaked embedding (float32 LE), <c>a</c> class per attribute (int16 LE, -1 unknown).</item>
/// <item><c>{prefix}:tomb:{hex HMAC-SHA256(secret, userId)}</c> string: version of the forget, with a TTL; no user id.</item>
/// <item><c>{prefix}:consumed</c> hash: field <c>{topic}/{partition}</c> = the highest offset of that input partition
/// whose event an apply decided (the applied-offset watermark; no user data).</item>
/// </list>
/// A deployment's keys: <c>{deployment}:generations</c> (the registry, <see cref="RegistryKey"/>) and one such store per
/// model generation under <c>{deployment}:g:{model}</c> (<see cref="GenerationPrefix"/>). Every key name is made here,
/// and every SCAN over them runs here (<see cref="ScanAsync"/>).
/// </summary>
internal sealed class StoreLayout
{
    /// <summary>
    /// Version of the stored format, part of the fingerprint (<c>v{FormatVersion}-...</c>). 1: served statistics only;
    /// 2: also the statistics of the original embeddings (<c>ostats</c> keys); 3: one store per model generation
    /// (<c>{deployment}:g:{model}</c>), users carry their input partition (<c>p</c>) and sweep mark (<c>s</c>), the
    /// meta hash counts users, tombstones are shared by the deployment's generations.
    /// </summary>
    internal const string FormatVersion = "3";

    public StoreLayout(StateStoreOptions options)
    {
        Shape = StatisticsShape.Of(options);
        Prefix = options.Prefix;
        Tombstones = new TombstoneNames(options.TombstoneSecret);

        MetaKey = MetaKeyOf(Prefix);
        UserKeyPrefix = Prefix + ":user:";
        TombKeyPrefix = (options.TombstonePrefix ?? Prefix) + ":tomb:";
        ConsumedKey = Prefix + ":consumed";
        StatsKeys = new RedisKey[Shape.SlotCount];
        for (var slot = 0; slot < Shape.SlotCount; slot++)
        {
            var (population, a, k) = Shape.SlotOwner(slot);
            StatsKeys[slot] = StatsKey(population, Attributes[a].Name, k);
        }

        Catalog = string.Join(';', Attributes.Select(a => Uri.EscapeDataString(a.Name) + "=" + string.Join(',', a.ClassNames.Select(Uri.EscapeDataString))));
        ReferenceBytes = Codec.DoublesToBytes(Reference);
        var fingerprintInput = $"format={FormatVersion}\nd={Dimension}\ncatalog={Catalog}\nreference={Convert.ToHexString(ReferenceBytes)}";
        Fingerprint = "v" + FormatVersion + "-" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(fingerprintInput)))[..24].ToLowerInvariant();
    }

    public StatisticsShape Shape { get; }
    public string Prefix { get; }
    public int Dimension => Shape.Dimension;
    public AttributeSpec[] Attributes => Shape.Attributes;
    /// <summary>Reference point c as float64 (converted from the float32 option, so x - c of float32 x is exact).</summary>
    public double[] Reference => Shape.Reference;
    public byte[] ReferenceBytes { get; }
    public string Catalog { get; }
    public string Fingerprint { get; }
    private TombstoneNames Tombstones { get; }

    public RedisKey MetaKey { get; }
    public string UserKeyPrefix { get; }
    public string TombKeyPrefix { get; }

    /// <summary>The applied-offset watermarks (hash: <c>{topic}/{partition}</c> → offset).</summary>
    public RedisKey ConsumedKey { get; }

    /// <summary>Statistics keys of every (population, attribute, class) slot, indexed by <see cref="StatisticsShape.Slot"/>.</summary>
    public RedisKey[] StatsKeys { get; }
    public int SlotCount => StatsKeys.Length;

    /// <summary>
    /// <c>stats</c> for the served population, <c>ostats</c> for the originals. The attribute name is percent-encoded
    /// (RFC 3986 unreserved characters stay), so names with ':', braces, glob characters or spaces cannot break the
    /// key structure, the hash tag or a SCAN pattern.
    /// </summary>
    public RedisKey StatsKey(StatisticsPopulation population, string attribute, int classIndex) =>
        $"{Prefix}:{(population == StatisticsPopulation.Served ? "stats" : "ostats")}:{Uri.EscapeDataString(attribute)}:{classIndex}";

    /// <summary>
    /// Why a prefix whose meta key holds <paramref name="storedLayout"/> cannot be used with these options, for
    /// operators: an older store format is named as such, since only a new prefix (or a wipe and a bootstrap) helps.
    /// </summary>
    public string DescribeMismatch(string storedLayout, string storedDimension, string storedCatalog)
    {
        var storedFormat = storedLayout.StartsWith('v') && storedLayout.IndexOf('-') is > 1 and var dash ? storedLayout[1..dash] : "?";
        if (storedFormat != FormatVersion)
            return $"Redis prefix '{Prefix}' holds state store format {storedFormat} (layout {storedLayout}); this build reads and " +
                $"writes format {FormatVersion} (one store per model generation, with the statistics of the original embeddings). The stored " +
                "data cannot be used as it is: point the worker at a new prefix, or delete the prefix's keys and bootstrap again";
        return $"Redis prefix '{Prefix}' holds data of another layout (layout {storedLayout}, dimension {storedDimension}, " +
            $"attributes {storedCatalog}) than this store (layout {Fingerprint}, dimension {Dimension}, attributes {Catalog}): " +
            "use another prefix, or delete the prefix's keys and rebuild";
    }

    public RedisKey UserKey(string userId) => UserKeyPrefix + userId;

    /// <summary>
    /// The tombstone of a forgotten user is named by a keyed hash, so that "user X was forgotten" does not keep X in
    /// Redis, while a late redelivered older event of X still finds it.
    /// </summary>
    public RedisKey TombKey(string userId) => TombKeyPrefix + Tombstones.Name(userId);

    /// <summary>SCAN MATCH pattern of all user keys; glob characters of the prefix are escaped.</summary>
    public string UserKeyPattern => EscapeGlob(UserKeyPrefix) + "*";

    /// <summary>SCAN MATCH pattern of every key of this deployment.</summary>
    public string AllKeysPattern => EscapeGlob(Prefix) + ":*";

    internal static string EscapeGlob(string s)
    {
        var sb = new StringBuilder(s.Length + 4);
        foreach (var ch in s)
        {
            if (ch is '*' or '?' or '[' or ']' or '\\') sb.Append('\\');
            sb.Append(ch);
        }
        return sb.ToString();
    }


    /// <summary>The meta hash of the store under <paramref name="prefix"/>.</summary>
    public static RedisKey MetaKeyOf(string prefix) => prefix + ":meta";

    /// <summary>The registry of a deployment's model generations.</summary>
    public static RedisKey RegistryKey(string deploymentPrefix) => deploymentPrefix + ":generations";

    /// <summary>
    /// A generation's key prefix: the deployment's, <c>:g:</c>, and the model version percent-encoded (RFC 3986
    /// unreserved characters stay), so that no model version can break the key structure, a hash tag or a SCAN pattern.
    /// </summary>
    public static string GenerationPrefix(string deploymentPrefix, string modelVersion) =>
        deploymentPrefix + ":g:" + Uri.EscapeDataString(modelVersion);

    /// <summary>One page of a SCAN over the keys matching <paramref name="pattern"/>: the next cursor (0 at the end) and the keys.</summary>
    public static async Task<(RedisValue Cursor, RedisKey[] Keys)> ScanPageAsync(IDatabaseAsync db, RedisValue cursor, string pattern, int count)
    {
        var page = (RedisResult[])(await db.ExecuteAsync("SCAN", cursor, "MATCH", pattern, "COUNT", count).ConfigureAwait(false))!;
        return ((RedisValue)page[0], ((RedisResult[])page[1]!).Select(k => (RedisKey)(string)k!).ToArray());
    }

    /// <summary>Every key matching <paramref name="pattern"/>, a SCAN page at a time (a key may come twice; keys written meanwhile may be missed).</summary>
    public static async IAsyncEnumerable<RedisKey[]> ScanAsync(IDatabaseAsync db, string pattern, int count,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        RedisValue cursor = 0;
        do
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (next, keys) = await ScanPageAsync(db, cursor, pattern, count).ConfigureAwait(false);
            cursor = next;
            yield return keys;
        }
        while (cursor != 0);
    }

    /// <summary>This store's user keys, a SCAN page at a time.</summary>
    public IAsyncEnumerable<RedisKey[]> ScanUserKeysAsync(IDatabaseAsync db, int count, CancellationToken cancellationToken = default) =>
        ScanAsync(db, UserKeyPattern, count, cancellationToken);

    /// <summary>The user id of one of this store's user keys.</summary>
    public string UserIdOf(RedisKey userKey) => ((string)userKey!)[UserKeyPrefix.Length..];

    /// <summary>The field of an input partition in <see cref="ConsumedKey"/>: topic names cannot hold '/', partitions are numbers.</summary>
    public static string ConsumedField(ConsumedOffset consumed) =>
        consumed.Topic + "/" + consumed.Partition.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
