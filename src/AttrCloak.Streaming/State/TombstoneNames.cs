using System.Security.Cryptography;
using System.Text;

namespace AttrCloak.Streaming.State;

/// <summary>
/// Names a forgotten user's tombstone by HMAC-SHA256(secret, user id), hex: "user X was forgotten" is kept without
/// keeping X, while a late redelivered older event of X still finds it. Thread-safe.
/// </summary>
public sealed class TombstoneNames(byte[] secret)
{
    private readonly byte[] _secret = secret.ToArray();
    private readonly Lock _lock = new();
    private IncrementalHash? _hmac;

    public string Name(string userId)
    {
        Span<byte> mac = stackalloc byte[32];
        // One keyed instance, reset after each use: a one-shot HMAC re-derives the key pads every call (~5x slower).
        lock (_lock)
        {
            _hmac ??= IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _secret);
            _hmac.AppendData(Encoding.UTF8.GetBytes(userId));
            _hmac.GetHashAndReset(mac);
        }
        return Convert.ToHexString(mac).ToLowerInvariant();
    }
}
