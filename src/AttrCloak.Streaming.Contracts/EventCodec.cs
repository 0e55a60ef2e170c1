using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Unicode;
using AttrCloak.Streaming.Contracts.Binary;
using AttrCloak.Streaming.Contracts.Json;

namespace AttrCloak.Streaming.Contracts;

/// <summary>
/// Encodes and decodes the v1 messages of schemas/v1. Decoding never throws, whatever the bytes: every
/// rejection is a <see cref="DecodeError"/> whose <see cref="ReasonCode"/> the worker puts on the dead letter
/// and on its metric. Stateless and thread-safe.
/// </summary>
public static class EventCodec
{
    /// <summary>
    /// Decodes an inbound event (embedding update or privacy request) from a Kafka message value.
    /// Checks, in order: <see cref="ReasonCode.Empty"/>, <see cref="ReasonCode.Oversized"/> (before reading
    /// anything), <see cref="ReasonCode.UnsupportedContentType"/>, then the encoding's own rules (see
    /// schemas/README.md). <paramref name="contentType"/> null or empty means JSON; media-type parameters
    /// (<c>; charset=utf-8</c>) are ignored. Attribute names and classes are not checked against a catalog
    /// here: use the overload that takes one, or <see cref="AttributeCatalog.Validate(InboundEvent)"/>.
    /// </summary>
    public static DecodeResult TryDecode(ReadOnlySpan<byte> value, string? contentType, ContractLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        try
        {
            if (value.IsEmpty)
                return DecodeResult.Failure(ReasonCode.Empty, "no bytes (empty or null value)");
            if (value.Length > limits.MaxBytes)
                return DecodeResult.Failure(ReasonCode.Oversized, $"{value.Length} bytes is more than the {limits.MaxBytes}-byte limit");
            switch (Classify(contentType))
            {
                case WireEncoding.Json:
                    if (value.StartsWith(Utf8Bom))
                        value = value[Utf8Bom.Length..];
                    if (!Utf8.IsValid(value))
                        return DecodeResult.Failure(ReasonCode.MalformedJson, "not valid UTF-8");
                    return JsonEventDecoder.Decode(value, limits);
                case WireEncoding.Binary:
                    return EmbeddingBinaryFormat.Decode(value, limits);
                default:
                    return DecodeResult.Failure(ReasonCode.UnsupportedContentType,
                        $"content-type '{TextRules.Sanitize(contentType)}' is neither {ContentTypes.Json} nor {ContentTypes.EmbeddingBinary}");
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Last resort, so that a decoder bug dead-letters one message instead of stopping the worker.
            return DecodeResult.Failure(ReasonCode.InternalError, $"decoder fault ({e.GetType().Name})");
        }
    }

    /// <summary><see cref="TryDecode(ReadOnlySpan{byte}, string?, ContractLimits)"/>, then <paramref name="catalog"/>'s checks of the attributes the event carries.</summary>
    public static DecodeResult TryDecode(ReadOnlySpan<byte> value, string? contentType, ContractLimits limits, AttributeCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var result = TryDecode(value, contentType, limits);
        return result.IsSuccess && catalog.Validate(result.Event) is { } error ? DecodeResult.Failure(error) : result;
    }

    /// <summary>
    /// True when a Kafka key is the event's user id in UTF-8. The worker rejects a mismatch as
    /// <see cref="ReasonCode.KeyMismatch"/>: the key decides the partition, so a wrong key breaks per-user order.
    /// </summary>
    public static bool KeyMatches(ReadOnlySpan<byte> key, string userId)
    {
        ArgumentNullException.ThrowIfNull(userId);
        if (key.Length != Encoding.UTF8.GetByteCount(userId))
            return false;
        Span<byte> buffer = key.Length <= 512 ? stackalloc byte[key.Length] : new byte[key.Length];
        Encoding.UTF8.GetBytes(userId, buffer);
        return buffer.SequenceEqual(key);
    }

    /// <summary>
    /// Null when <paramref name="inbound"/> belongs on the input topic of <paramref name="stream"/>; otherwise the
    /// <see cref="ReasonCode.WrongTopic"/> error: embedding updates belong on the embeddings topic, privacy requests on
    /// the privacy-requests topic.
    /// </summary>
    public static DecodeError? TopicError(InboundEvent inbound, InputStream stream)
    {
        ArgumentNullException.ThrowIfNull(inbound);
        return (inbound, stream) switch
        {
            (EmbeddingUpdate, InputStream.PrivacyRequests) => new DecodeError(ReasonCode.WrongTopic,
                "an embedding update on the privacy-requests topic; embedding updates belong on the embeddings topic"),
            (PrivacyRequest, InputStream.Embeddings) => new DecodeError(ReasonCode.WrongTopic,
                "a privacy request on the embeddings topic; privacy requests belong on the privacy-requests topic"),
            _ => null,
        };
    }

    /// <summary>The UTF-8 Kafka key of a user: the user id's bytes.</summary>
    public static byte[] KeyOf(string userId)
    {
        ContractValidation.Text(userId, TextRules.MaxIdLength, nameof(userId));
        return Encoding.UTF8.GetBytes(userId);
    }

    /// <summary>JSON (<see cref="ContentTypes.Json"/>) or, with <paramref name="binary"/>, the compact encoding (<see cref="ContentTypes.EmbeddingBinary"/>; event time kept to the microsecond).</summary>
    /// <exception cref="ArgumentException">The update breaks the contract (bad id, NaN, negative version...).</exception>
    public static byte[] Encode(EmbeddingUpdate update, bool binary = false)
    {
        ContractValidation.Inbound(update);
        return binary ? EmbeddingBinaryFormat.Encode(update) : JsonEventEncoder.Encode(update);
    }

    /// <summary>JSON (<see cref="ContentTypes.Json"/>).</summary>
    /// <exception cref="ArgumentException">The request breaks the contract.</exception>
    public static byte[] Encode(PrivacyRequest request)
    {
        ContractValidation.Inbound(request);
        return JsonEventEncoder.Encode(request);
    }

    /// <summary>JSON (<see cref="ContentTypes.Json"/>) for the serving topic.</summary>
    /// <exception cref="ArgumentException">The record breaks the contract.</exception>
    public static byte[] Encode(CloakedEmbedding cloaked)
    {
        ArgumentNullException.ThrowIfNull(cloaked);
        ContractValidation.Text(cloaked.UserId, TextRules.MaxIdLength, nameof(cloaked.UserId));
        ContractValidation.Version(cloaked.Version, nameof(cloaked.Version));
        ContractValidation.Text(cloaked.ModelVersion, TextRules.MaxNameLength, nameof(cloaked.ModelVersion));
        ContractValidation.Embedding(cloaked.Embedding, nameof(cloaked.Embedding));
        ArgumentNullException.ThrowIfNull(cloaked.ProtectedAttributes);
        if (cloaked.ProtectedAttributes.Count > TextRules.MaxAttributes
            || cloaked.ProtectedAttributes.Distinct(StringComparer.Ordinal).Count() != cloaked.ProtectedAttributes.Count)
            throw new ArgumentException($"ProtectedAttributes must be at most {TextRules.MaxAttributes} distinct names.", nameof(cloaked));
        foreach (var name in cloaked.ProtectedAttributes)
            ContractValidation.Text(name, TextRules.MaxNameLength, nameof(cloaked.ProtectedAttributes));
        return JsonEventEncoder.Encode(cloaked);
    }

    /// <summary>JSON for the <see cref="KafkaHeaders.DeadLetter"/> header of a dead-letter message.</summary>
    /// <exception cref="ArgumentException">The record breaks the contract.</exception>
    public static byte[] Encode(DeadLetter deadLetter)
    {
        ArgumentNullException.ThrowIfNull(deadLetter);
        if (!Enum.IsDefined(deadLetter.Reason))
            throw new ArgumentOutOfRangeException(nameof(deadLetter), deadLetter.Reason, "Unknown reason code.");
        if (deadLetter.Message is null || deadLetter.Message.Length > DeadLetter.MaxMessageLength)
            throw new ArgumentException($"Message must be at most {DeadLetter.MaxMessageLength} characters.", nameof(deadLetter));
        if (deadLetter.SourceTopic is not { Length: >= 1 and <= 249 })
            throw new ArgumentException("SourceTopic must be a Kafka topic name.", nameof(deadLetter));
        if (deadLetter.SourcePartition < 0 || deadLetter.SourceOffset < 0 || deadLetter.OriginalSizeBytes < 0)
            throw new ArgumentException("Partition, offset and size must not be negative.", nameof(deadLetter));
        return JsonEventEncoder.Encode(deadLetter);
    }

    /// <summary>Reads a cloaked-embedding message (serving-side consumers, tools, tests). Never throws.</summary>
    public static bool TryDecodeCloaked(
        ReadOnlySpan<byte> value,
        [NotNullWhen(true)] out CloakedEmbedding? cloaked,
        [NotNullWhen(false)] out DecodeError? error)
    {
        try
        {
            error = JsonOutputDecoder.TryDecodeCloaked(value, ContractLimits.DefaultMaxBytes, out cloaked);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            (cloaked, error) = (null, new DecodeError(ReasonCode.InternalError, $"decoder fault ({e.GetType().Name})"));
        }
        return error is null && cloaked is not null;
    }

    /// <summary>Reads the JSON of a <see cref="KafkaHeaders.DeadLetter"/> header. Never throws.</summary>
    public static bool TryDecodeDeadLetter(
        ReadOnlySpan<byte> value,
        [NotNullWhen(true)] out DeadLetter? deadLetter,
        [NotNullWhen(false)] out DecodeError? error)
    {
        try
        {
            error = JsonOutputDecoder.TryDecodeDeadLetter(value, ContractLimits.DefaultMaxBytes, out deadLetter);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            (deadLetter, error) = (null, new DecodeError(ReasonCode.InternalError, $"decoder fault ({e.GetType().Name})"));
        }
        return error is null && deadLetter is not null;
    }

    /// <summary>The <c>type</c> of a privacy request on the wire: opt_out, forget, update_attributes.</summary>
    public static string WireName(PrivacyRequestType type) => JsonEventEncoder.WireName(type);

    private static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    private enum WireEncoding
    {
        Json,
        Binary,
        Unsupported,
    }

    private static WireEncoding Classify(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType))
            return WireEncoding.Json;
        var media = contentType.AsSpan();
        var semicolon = media.IndexOf(';');
        if (semicolon >= 0)
            media = media[..semicolon];
        media = media.Trim();
        if (media.Equals(ContentTypes.Json, StringComparison.OrdinalIgnoreCase))
            return WireEncoding.Json;
        if (media.Equals(ContentTypes.EmbeddingBinary, StringComparison.OrdinalIgnoreCase))
            return WireEncoding.Binary;
        return WireEncoding.Unsupported;
    }
}
