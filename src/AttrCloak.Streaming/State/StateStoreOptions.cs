using AttrCloak.Core.Data;

namespace AttrCloak.Streaming.State;

/// <summary>
/// Configuration of the state store (one per deployment; the Redis adapter's layout, the in-process store's shape). Everything that changes the meaning of the stored
/// statistics (dimension, attribute catalog, reference point) is fingerprinted into <c>{prefix}:meta</c>; a store whose
/// options disagree with what Redis holds refuses to write (see the Redis adapter's <c>RedisStateStore.InitializeAsync</c>).
/// </summary>
public sealed class StateStoreOptions
{
    /// <summary>Configuration section the host binds (<c>AttrCloak:Redis</c>).</summary>
    public const string SectionName = "AttrCloak:Redis";

    /// <summary>
    /// Prefix of every key. To run on Redis Cluster make it a hash tag, e.g. <c>{attrcloak}</c>: the scripts touch
    /// the meta key, class statistics and user keys together, and a cluster only allows that within one hash slot.
    /// </summary>
    public string Prefix { get; set; } = "attrcloak";

    /// <summary>
    /// Prefix of the forget tombstones (<c>{TombstonePrefix}:tomb:...</c>), or null for <see cref="Prefix"/>. The
    /// generations of one deployment share the deployment's: a forget then blocks older events in every generation.
    /// </summary>
    public string? TombstonePrefix { get; set; }

    /// <summary>Embedding dimension d (every original and cloaked embedding has exactly d float32 values).</summary>
    public int Dimension { get; set; }

    /// <summary>The protected attributes and their classes; class index = position in <see cref="AttributeSpec.ClassNames"/>.</summary>
    public IReadOnlyList<AttributeSpec> Attributes { get; set; } = [];

    /// <summary>
    /// The fixed point c the co-moments are accumulated about (sums of x - c and of (x - c)(x - c)^T), length d, or
    /// null for the origin. Choose it near the population mean of the served embeddings (e.g. the mean of the initial
    /// cloaked export) when that mean is far from 0 relative to the spread; it is part of the layout fingerprint, so
    /// changing it needs a new prefix or a wipe + rebuild.
    /// </summary>
    public float[]? ReferencePoint { get; set; }

    /// <summary>
    /// Per-deployment secret key (at least 16 bytes; base64 in configuration) of the HMAC-SHA256 that names a forgotten
    /// user's tombstone. It must not live in Redis: with the key beside the tombstones, low-entropy user ids could be
    /// recovered by brute force.
    /// </summary>
    public byte[] TombstoneSecret { get; set; } = [];

    /// <summary>
    /// How long a forget tombstone blocks older redelivered events of that user. Set it longer than the longest
    /// possible redelivery (the retention of the input topics); after it, a very late older event could re-create
    /// the user.
    /// </summary>
    public TimeSpan TombstoneTtl { get; set; } = TimeSpan.FromDays(30);

    /// <summary>
    /// Attempts of one <see cref="IStateStore.ApplyAsync"/> batch before it fails with
    /// <see cref="StateStoreConflictException"/>; a conflict means another writer changed one of the batch's users
    /// (or the statistics) between the read and the write.
    /// </summary>
    public int MaxApplyAttempts { get; set; } = 5;

    /// <summary>Relative tolerance of the statistics verification (differences are relative to the summed magnitudes).</summary>
    public double VerifyRelativeTolerance { get; set; } = 1e-9;

    /// <summary>Throws <see cref="ArgumentException"/> with every problem found, in one message.</summary>
    public void Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Prefix))
            errors.Add("Prefix must not be empty");
        else if (Prefix.Any(char.IsWhiteSpace))
            errors.Add($"Prefix '{Prefix}' must not contain whitespace");
        if (TombstonePrefix is not null && (TombstonePrefix.Length == 0 || TombstonePrefix.Any(char.IsWhiteSpace)))
            errors.Add($"TombstonePrefix '{TombstonePrefix}' must be non-empty without whitespace");
        if (Dimension is < 1 or > 4096)
            errors.Add($"Dimension must be in 1..4096, got {Dimension}");
        if (Attributes is null || Attributes.Count == 0)
            errors.Add("Attributes must list at least one protected attribute");
        else
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var a in Attributes)
            {
                if (a is null || string.IsNullOrWhiteSpace(a.Name))
                {
                    errors.Add("every attribute needs a name");
                    continue;
                }
                if (!names.Add(a.Name))
                    errors.Add($"attribute '{a.Name}' is listed twice");
                if (a.ClassNames is null || a.ClassCount is < 1 or > short.MaxValue)
                    errors.Add($"attribute '{a.Name}' must have 1..{short.MaxValue} classes");
            }
        }
        if (ReferencePoint is not null)
        {
            if (ReferencePoint.Length != Dimension)
                errors.Add($"ReferencePoint has {ReferencePoint.Length} values, Dimension is {Dimension}");
            if (ReferencePoint.Any(v => !float.IsFinite(v)))
                errors.Add("ReferencePoint must be finite");
        }
        if (TombstoneSecret is null || TombstoneSecret.Length < 16)
            errors.Add("TombstoneSecret must be at least 16 bytes (a per-deployment secret, not stored in Redis)");
        if (TombstoneTtl <= TimeSpan.Zero)
            errors.Add("TombstoneTtl must be positive");
        if (MaxApplyAttempts < 1)
            errors.Add("MaxApplyAttempts must be at least 1");
        if (!(VerifyRelativeTolerance >= 0))
            errors.Add("VerifyRelativeTolerance must be >= 0");
        if (errors.Count > 0)
            throw new ArgumentException("invalid Redis state store options: " + string.Join("; ", errors));
    }
}
