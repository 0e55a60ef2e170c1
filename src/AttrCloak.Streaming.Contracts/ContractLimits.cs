namespace AttrCloak.Streaming.Contracts;

/// <summary>
/// Per-deployment limits the decoder enforces on top of the schemas: the embedding dimension (one per
/// deployment) and the largest accepted message.
/// </summary>
public sealed record ContractLimits
{
    /// <summary>64 KiB: a d = 4096 embedding in JSON with 9-digit floats still fits; a d = 64 event is about 1.2 KiB.</summary>
    public const int DefaultMaxBytes = 64 * 1024;

    /// <summary>The schemas' upper bound on embedding length (maxItems of the embedding definition).</summary>
    public const int MaxDimension = 4096;

    public ContractLimits(int dimension, int maxBytes = DefaultMaxBytes)
    {
        if (dimension is < 1 or > MaxDimension)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, $"The embedding dimension must be in 1..{MaxDimension}.");
        if (maxBytes < 64)
            throw new ArgumentOutOfRangeException(nameof(maxBytes), maxBytes, "MaxBytes must be at least 64.");
        Dimension = dimension;
        MaxBytes = maxBytes;
    }

    /// <summary>Exact number of values every embedding must have.</summary>
    public int Dimension { get; }

    /// <summary>Largest accepted message value, in bytes; larger ones are rejected as <see cref="ReasonCode.Oversized"/> unread.</summary>
    public int MaxBytes { get; }
}
