using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;

namespace AttrCloak.Streaming.Contracts.Binary;

/// <summary>
/// The compact encoding of an embedding update (content-type <see cref="ContentTypes.EmbeddingBinary"/>), all
/// integers little-endian, strings as a uint16 byte length and UTF-8 (no terminator):
/// <code>
/// offset size  field
///      0    4  magic "ACEU" (0x41 0x43 0x45 0x55)
///      4    1  format version: 1 (= schema attrcloak.embedding_update.v1)
///      5    1  flags: bit 0 = attribute block present; bits 1-7 must be 0
///      6    2  d: embedding dimension (uint16)
///      8    8  version (int64, >= 0)
///     16    8  event_time: microseconds since 1970-01-01T00:00:00Z (int64)
///     24    .  event_id, user_id, model_version (each uint16 length + UTF-8)
///      .  4*d  embedding: d x float32 (IEEE 754), finite
///      .    .  if flag bit 0: uint8 count n (1..64), then n x (name, class) strings
/// </code>
/// The message ends exactly there (trailing bytes are rejected). The string rules are those of the JSON schemas.
/// </summary>
internal static class EmbeddingBinaryFormat
{
    public const int HeaderSize = 24;
    public const byte FormatVersion = 1;
    public static ReadOnlySpan<byte> Magic => "ACEU"u8;

    private const byte FlagAttributes = 0x01;
    private static readonly long MinMicros = (DateTimeOffset.MinValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;
    private static readonly long MaxMicros = (DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    public static DecodeResult Decode(ReadOnlySpan<byte> data, ContractLimits limits)
    {
        if (data.Length < HeaderSize)
            return Malformed($"{data.Length} bytes is shorter than the {HeaderSize}-byte header");
        if (!data[..4].SequenceEqual(Magic))
            return Malformed("bad magic (expected \"ACEU\")");
        if (data[4] != FormatVersion)
            return DecodeResult.Failure(ReasonCode.UnknownSchema, $"binary format version {data[4]} is unknown (this consumer reads 1)");
        var flags = data[5];
        if ((flags & ~FlagAttributes) != 0)
            return Malformed($"reserved flag bits set (0x{flags:X2})");
        int dimension = BinaryPrimitives.ReadUInt16LittleEndian(data[6..]);
        if (dimension != limits.Dimension)
            return DecodeResult.Failure(ReasonCode.WrongDimension, $"embedding has {dimension} values; this deployment's dimension is {limits.Dimension}");
        var version = BinaryPrimitives.ReadInt64LittleEndian(data[8..]);
        if (version < 0)
            return DecodeResult.Failure(ReasonCode.SchemaViolation, "version must not be negative");
        var micros = BinaryPrimitives.ReadInt64LittleEndian(data[16..]);
        if (micros < MinMicros || micros > MaxMicros)
            return DecodeResult.Failure(ReasonCode.SchemaViolation, "event_time is out of range");
        var eventTime = DateTimeOffset.UnixEpoch.AddTicks(micros * 10);

        var rest = data[HeaderSize..];
        DecodeError? error;
        if ((error = ReadText(ref rest, TextRules.MaxIdLength, "event_id", ReasonCode.SchemaViolation, out var eventId)) is not null)
            return error;
        if ((error = ReadText(ref rest, TextRules.MaxIdLength, "user_id", ReasonCode.BadUserId, out var userId)) is not null)
            return error;
        if ((error = ReadText(ref rest, TextRules.MaxNameLength, "model_version", ReasonCode.SchemaViolation, out var modelVersion)) is not null)
            return error;

        var floatBytes = dimension * sizeof(float);
        if (rest.Length < floatBytes)
            return Malformed($"truncated embedding: {rest.Length} bytes left for {dimension} float32 values");
        var embedding = new float[dimension];
        var source = rest[..floatBytes];
        if (BitConverter.IsLittleEndian)
        {
            source.CopyTo(MemoryMarshal.AsBytes(embedding.AsSpan()));
        }
        else
        {
            for (var i = 0; i < dimension; i++)
                embedding[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(i * 4)..]);
        }
        for (var i = 0; i < embedding.Length; i++)
        {
            if (!float.IsFinite(embedding[i]))
                return DecodeResult.Failure(ReasonCode.NonFiniteValue, $"embedding[{i}] is NaN or infinite");
        }
        rest = rest[floatBytes..];

        Dictionary<string, string>? attributes = null;
        if ((flags & FlagAttributes) != 0)
        {
            if (rest.IsEmpty)
                return Malformed("truncated attribute block");
            int count = rest[0];
            rest = rest[1..];
            if (count is 0 or > TextRules.MaxAttributes)
                return DecodeResult.Failure(ReasonCode.SchemaViolation, $"attribute count must be 1..{TextRules.MaxAttributes}, was {count}");
            attributes = new Dictionary<string, string>(count, StringComparer.Ordinal);
            for (var i = 0; i < count; i++)
            {
                if ((error = ReadText(ref rest, TextRules.MaxNameLength, "attribute name", ReasonCode.SchemaViolation, out var name)) is not null)
                    return error;
                if ((error = ReadText(ref rest, TextRules.MaxNameLength, "attribute class", ReasonCode.SchemaViolation, out var @class)) is not null)
                    return error;
                if (!attributes.TryAdd(name!, @class!))
                    return Malformed($"attribute '{TextRules.Sanitize(name)}' given twice");
            }
        }
        if (!rest.IsEmpty)
            return Malformed($"{rest.Length} trailing bytes after the message");

        return DecodeResult.Success(new EmbeddingUpdate(eventId!, userId!, version, eventTime, modelVersion!, embedding, attributes));
    }

    /// <summary>Encodes a validated update. Event time is kept to the microsecond (truncated).</summary>
    public static byte[] Encode(EmbeddingUpdate u)
    {
        var size = HeaderSize + 6 + Encoding.UTF8.GetByteCount(u.EventId) + Encoding.UTF8.GetByteCount(u.UserId)
                   + Encoding.UTF8.GetByteCount(u.ModelVersion) + u.Embedding.Length * sizeof(float);
        if (u.Attributes is not null)
        {
            size += 1;
            foreach (var (name, value) in u.Attributes)
                size += 4 + Encoding.UTF8.GetByteCount(name) + Encoding.UTF8.GetByteCount(value);
        }
        var result = new byte[size];
        var span = result.AsSpan();
        Magic.CopyTo(span);
        span[4] = FormatVersion;
        span[5] = u.Attributes is null ? (byte)0 : FlagAttributes;
        BinaryPrimitives.WriteUInt16LittleEndian(span[6..], checked((ushort)u.Embedding.Length));
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], u.Version);
        BinaryPrimitives.WriteInt64LittleEndian(span[16..], (u.EventTime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10);
        var rest = span[HeaderSize..];
        WriteText(ref rest, u.EventId);
        WriteText(ref rest, u.UserId);
        WriteText(ref rest, u.ModelVersion);
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(u.Embedding.AsSpan()).CopyTo(rest);
        }
        else
        {
            for (var i = 0; i < u.Embedding.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(rest[(i * 4)..], u.Embedding[i]);
        }
        rest = rest[(u.Embedding.Length * sizeof(float))..];
        if (u.Attributes is not null)
        {
            rest[0] = checked((byte)u.Attributes.Count);
            rest = rest[1..];
            foreach (var (name, value) in u.Attributes)
            {
                WriteText(ref rest, name);
                WriteText(ref rest, value);
            }
        }
        return result;
    }

    private static void WriteText(ref Span<byte> destination, string text)
    {
        var n = Encoding.UTF8.GetBytes(text, destination[2..]);
        BinaryPrimitives.WriteUInt16LittleEndian(destination, checked((ushort)n));
        destination = destination[(2 + n)..];
    }

    private static DecodeError? ReadText(ref ReadOnlySpan<byte> rest, int maxLength, string field, ReasonCode reason, out string? text)
    {
        text = null;
        if (rest.Length < 2)
            return new DecodeError(ReasonCode.MalformedBinary, $"truncated before the length of {field}");
        int length = BinaryPrimitives.ReadUInt16LittleEndian(rest);
        if (rest.Length - 2 < length)
            return new DecodeError(ReasonCode.MalformedBinary, $"{field} length {length} runs past the end of the message");
        var bytes = rest.Slice(2, length);
        if (!Utf8.IsValid(bytes))
            return new DecodeError(reason == ReasonCode.BadUserId ? reason : ReasonCode.MalformedBinary, $"{field} is not valid UTF-8");
        var value = Encoding.UTF8.GetString(bytes);
        if (!TextRules.IsValid(value, maxLength))
            return new DecodeError(reason, $"{field} must be 1-{maxLength} characters without control characters");
        rest = rest[(2 + length)..];
        text = value;
        return null;
    }

    private static DecodeResult Malformed(string message) => DecodeResult.Failure(ReasonCode.MalformedBinary, message);
}
