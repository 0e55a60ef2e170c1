using System.Security.Cryptography;
using System.Text;
using AttrCloak.Core.Data;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// Where everything lives in Redis, and the fingerprint of what the statistics mean. Key layout (all under one
/// prefix, <c>object:id</c> style):
/// <list type="bullet">
/// <item><c>{prefix}:meta</c> hash: <c>layout</c> (fingerprint), <c>epoch</c> (random id of this generation of the
/// data), <c>seq</c> (statistics sequence, +1 per write), <c>dimension</c>, <c>catalog</c>, <c>reference</c>.</item>
/// <item><c>{prefix}:stats:{attribute}:{classIndex}</c> string (attribute percent-encoded): the class's sufficient statistics as float64 LE bytes
/// (see <see cref="Statistics.SufficientStatistics"/>); absent = empty class.</item>
/// <item><c>{prefix}:user:{userId}</c> hash: <c>v</c> last applied version, <c>e</c> its event id, <c>o</c>/<c>c</c>
/// original/cloaked embedding (float32 LE), <c>a</c> class per attribute (int16 LE, -1 unknown).</item>
/// <item><c>{prefix}:tomb:{hex HMAC-SHA256(secret, userId)}</c> string: version of the forget, with a TTL; no user id.</item>
/// </list>
/// </summary>
internal sealed class StoreLayout
{
    internal const string FormatVersion = "1";

    public StoreLayout(StateStoreOptions options)
    {
        options.Validate();
        Prefix = options.Prefix;
        Dimension = options.Dimension;
        Attributes = options.Attributes.ToArray();
        Reference = new double[Dimension];
        if (options.ReferencePoint is not null)
            for (var i = 0; i < Dimension; i++) Reference[i] = options.ReferencePoint[i];
        TombstoneSecret = options.TombstoneSecret.ToArray();

        MetaKey = Prefix + ":meta";
        UserKeyPrefix = Prefix + ":user:";
        TombKeyPrefix = Prefix + ":tomb:";
        SlotOffsets = new int[Attributes.Length];
        var keys = new List<RedisKey>();
        for (var a = 0; a < Attributes.Length; a++)
        {
            SlotOffsets[a] = keys.Count;
            for (var k = 0; k < Attributes[a].ClassCount; k++)
                keys.Add(StatsKey(Attributes[a].Name, k));
        }
        StatsKeys = keys.ToArray();

        Catalog = string.Join(';', Attributes.Select(a => Uri.EscapeDataString(a.Name) + "=" + string.Join(',', a.ClassNames.Select(Uri.EscapeDataString))));
        ReferenceBytes = Codec.DoublesToBytes(Reference);
        var fingerprintInput = $"format={FormatVersion}\nd={Dimension}\ncatalog={Catalog}\nreference={Convert.ToHexString(ReferenceBytes)}";
        Fingerprint = "v" + FormatVersion + "-" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(fingerprintInput)))[..24].ToLowerInvariant();
    }

    public string Prefix { get; }
    public int Dimension { get; }
    public AttributeSpec[] Attributes { get; }
    /// <summary>Reference point c as float64 (converted from the float32 option, so x - c of float32 x is exact).</summary>
    public double[] Reference { get; }
    public byte[] ReferenceBytes { get; }
    public string Catalog { get; }
    public string Fingerprint { get; }
    private byte[] TombstoneSecret { get; }

    public RedisKey MetaKey { get; }
    public string UserKeyPrefix { get; }
    public string TombKeyPrefix { get; }

    /// <summary>Statistics keys of every (attribute, class) slot; slot = SlotOffsets[attribute] + class.</summary>
    public RedisKey[] StatsKeys { get; }
    public int[] SlotOffsets { get; }
    public int SlotCount => StatsKeys.Length;

    /// <summary>
    /// The attribute name is percent-encoded (RFC 3986 unreserved characters stay), so names with ':', braces, glob
    /// characters or spaces cannot break the key structure, the hash tag or a SCAN pattern.
    /// </summary>
    public RedisKey StatsKey(string attribute, int classIndex) => $"{Prefix}:stats:{Uri.EscapeDataString(attribute)}:{classIndex}";

    public RedisKey UserKey(string userId) => UserKeyPrefix + userId;

    /// <summary>
    /// The tombstone of a forgotten user is named by a keyed hash, so that "user X was forgotten" does not keep X in
    /// Redis, while a late redelivered older event of X still finds it.
    /// </summary>
    public RedisKey TombKey(string userId)
    {
        Span<byte> mac = stackalloc byte[32];
        // One keyed instance, reset after each use: a one-shot HMAC re-derives the key pads every call (~5x slower).
        lock (_hmacLock)
        {
            _hmac.AppendData(Encoding.UTF8.GetBytes(userId));
            _hmac.GetHashAndReset(mac);
        }
        return TombKeyPrefix + Convert.ToHexString(mac).ToLowerInvariant();
    }

    private readonly Lock _hmacLock = new();
    private IncrementalHash _hmac => _hmacInstance ??= IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, TombstoneSecret);
    private IncrementalHash? _hmacInstance;

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

    public (int Attribute, int Class) SlotOwner(int slot)
    {
        for (var a = Attributes.Length - 1; a >= 0; a--)
            if (slot >= SlotOffsets[a]) return (a, slot - SlotOffsets[a]);
        throw new ArgumentOutOfRangeException(nameof(slot));
    }
}
