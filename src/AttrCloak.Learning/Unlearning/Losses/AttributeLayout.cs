using AttrCloak.Core.Data;
namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// Index structures for one attribute's labels, built once because labels do not change while embeddings are
/// cloaked. Classes without any known user are dropped (their weight would be 0 and their mean 0/0).
/// <para>
/// Each class's users are cut into chunks of <see cref="ChunkSize"/> rows, so every per-class statistic is one
/// batched op over [C, ChunkSize, d] blocks followed by an index_add of the chunks into their classes, instead of a
/// loop over classes. Padding a class only to the next multiple of the chunk size wastes at most ChunkSize - 1
/// rows per class; padding every class to the largest one (ML-100K occupation: 21 classes x 196 rows for 943
/// users) made the covariance products 4x larger than needed. Padding slots point at user 0 and are zeroed by
/// <see cref="Mask"/>.
/// </para>
/// </summary>
public sealed class AttributeLayout : IDisposable
{
    /// <summary>Rows per chunk: small enough to waste little padding, large enough for efficient batched GEMMs.</summary>
    public const int ChunkSize = 32;

    private AttributeLayout(int userCount, int knownCount, int[] presentClasses, int[] classSizes, int chunkCount,
        Tensor padIndex, Tensor mask, Tensor chunkClass, Tensor counts, Tensor weights)
    {
        UserCount = userCount;
        KnownCount = knownCount;
        PresentClasses = presentClasses;
        ClassSizes = classSizes;
        ChunkCount = chunkCount;
        PadIndex = padIndex;
        Mask = mask;
        ChunkClass = chunkClass;
        Counts = counts;
        Weights = weights;
    }

    /// <summary>Number of users (rows of the embedding matrix), known label or not.</summary>
    public int UserCount { get; }

    /// <summary>Users with a known label for this attribute (|S_aj| in the slides).</summary>
    public int KnownCount { get; }

    /// <summary>Original class index of each fitted class, in fit order.</summary>
    public int[] PresentClasses { get; }

    /// <summary>Number of users of each fitted class (|S_aj=ck|).</summary>
    public int[] ClassSizes { get; }

    /// <summary>Number of chunks C over all classes.</summary>
    public int ChunkCount { get; }

    /// <summary>Flattened [C * ChunkSize] int64 row index into the user matrix.</summary>
    internal Tensor PadIndex { get; }

    /// <summary>[C, ChunkSize, 1] float64: 1 for a real user slot, 0 for padding.</summary>
    internal Tensor Mask { get; }

    /// <summary>[C] int64: the fitted class (0..K-1) each chunk belongs to.</summary>
    internal Tensor ChunkClass { get; }

    /// <summary>[K] float64 class sizes.</summary>
    internal Tensor Counts { get; }

    /// <summary>[K] float64 class shares |S_aj=ck| / |S_aj|.</summary>
    internal Tensor Weights { get; }

    /// <summary>Builds the layout of <paramref name="labels"/> (-1 = unknown) over <paramref name="classCount"/> classes.</summary>
    public static AttributeLayout Create(int[] labels, int classCount)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var members = new List<int>[classCount];
        for (var k = 0; k < classCount; k++) members[k] = [];
        for (var u = 0; u < labels.Length; u++)
        {
            var c = labels[u];
            if (c == LabeledAttribute.Unknown) continue;
            if (c < 0 || c >= classCount) throw new ArgumentException($"label {c} of user {u} is outside -1..{classCount - 1}");
            members[c].Add(u);
        }

        var present = Enumerable.Range(0, classCount).Where(k => members[k].Count > 0).ToArray();
        if (present.Length == 0) throw new ArgumentException("no user has a known label");
        var sizes = present.Select(k => members[k].Count).ToArray();
        var known = sizes.Sum();
        var chunks = sizes.Sum(s => (s + ChunkSize - 1) / ChunkSize);

        var pad = new long[chunks * ChunkSize];
        var mask = new double[chunks * ChunkSize];
        var chunkClass = new long[chunks];
        var chunk = 0;
        for (var j = 0; j < present.Length; j++)
        {
            var list = members[present[j]];
            for (var start = 0; start < list.Count; start += ChunkSize, chunk++)
            {
                chunkClass[chunk] = j;
                for (var s = 0; s < ChunkSize && start + s < list.Count; s++)
                {
                    pad[chunk * ChunkSize + s] = list[start + s];
                    mask[chunk * ChunkSize + s] = 1.0;
                }
            }
        }

        var counts = sizes.Select(s => (double)s).ToArray();
        var weights = sizes.Select(s => (double)s / known).ToArray();
        return new AttributeLayout(labels.Length, known, present, sizes, chunks,
            torch.tensor(pad, [pad.Length], int64),
            torch.tensor(mask, [chunks, ChunkSize, 1], float64),
            torch.tensor(chunkClass, [chunks], int64),
            torch.tensor(counts, [counts.Length], float64),
            torch.tensor(weights, [weights.Length], float64));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        PadIndex.Dispose();
        Mask.Dispose();
        ChunkClass.Dispose();
        Counts.Dispose();
        Weights.Dispose();
    }
}
