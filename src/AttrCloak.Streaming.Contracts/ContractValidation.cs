using System.Globalization;

namespace AttrCloak.Streaming.Contracts;

/// <summary>
/// Checks the encoders run before writing, so that this project never produces a message its own schemas reject.
/// A failed check is a bug in the caller: it throws <see cref="ArgumentException"/>.
/// </summary>
internal static class ContractValidation
{
    public static void Text(string? value, int maxLength, string name)
    {
        if (value is null || !TextRules.IsValid(value, maxLength))
            throw new ArgumentException($"{name} must be 1-{maxLength} characters of valid Unicode without control characters.", name);
    }

    public static void Version(long version, string name)
    {
        if (version < 0)
            throw new ArgumentOutOfRangeException(name, version, "A version must not be negative.");
    }

    public static void Embedding(float[]? embedding, string name)
    {
        if (embedding is null || embedding.Length is 0 or > ContractLimits.MaxDimension)
            throw new ArgumentException($"{name} must have 1..{ContractLimits.MaxDimension} values.", name);
        for (var i = 0; i < embedding.Length; i++)
        {
            if (!float.IsFinite(embedding[i]))
                throw new ArgumentException($"{name}[{i}] is not finite.", name);
        }
    }

    public static void Attributes<TValue>(IReadOnlyDictionary<string, TValue>? attributes, bool allowNullValues, string name)
        where TValue : class?
    {
        if (attributes is null)
            return;
        if (attributes.Count > TextRules.MaxAttributes)
            throw new ArgumentException($"{name} has more than {TextRules.MaxAttributes} entries.", name);
        foreach (var (attribute, value) in attributes)
        {
            Text(attribute, TextRules.MaxNameLength, $"{name} key");
            if (value is null)
            {
                if (!allowNullValues)
                    throw new ArgumentException($"{name}: a class must not be null here.", name);
            }
            else
            {
                Text(value as string, TextRules.MaxNameLength, $"{name} value");
            }
        }
    }

    public static void Inbound(InboundEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        Text(e.EventId, TextRules.MaxIdLength, nameof(e.EventId));
        Text(e.UserId, TextRules.MaxIdLength, nameof(e.UserId));
        Version(e.Version, nameof(e.Version));
        switch (e)
        {
            case EmbeddingUpdate u:
                Text(u.ModelVersion, TextRules.MaxNameLength, nameof(u.ModelVersion));
                Embedding(u.Embedding, nameof(u.Embedding));
                Attributes(u.Attributes, allowNullValues: false, nameof(u.Attributes));
                break;
            case PrivacyRequest r:
                if (!Enum.IsDefined(r.Type))
                    throw new ArgumentOutOfRangeException(nameof(e), r.Type, "Unknown privacy request type.");
                if (r.Type == PrivacyRequestType.UpdateAttributes != r.Attributes is { Count: > 0 })
                    throw new ArgumentException("Attributes (at least one) are required with UpdateAttributes and not allowed otherwise.", nameof(e));
                Attributes(r.Attributes, allowNullValues: true, nameof(r.Attributes));
                break;
            default:
                throw new ArgumentException($"Unknown event type {e.GetType().Name}.", nameof(e));
        }
    }

    /// <summary>RFC 3339 in UTC with 'Z' and the shortest exact fraction (none when whole seconds).</summary>
    public static int FormatTimestamp(DateTimeOffset value, Span<char> destination)
    {
        var utc = value.UtcDateTime;
        if (!utc.TryFormat(destination, out var n, "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffff", CultureInfo.InvariantCulture))
            throw new InvalidOperationException("timestamp buffer too small");
        while (destination[n - 1] == '0')
            n--;
        if (destination[n - 1] == '.')
            n--;
        destination[n++] = 'Z';
        return n;
    }
}
