namespace AttrCloak.Core.Data;

/// <summary>A dense row-major float32 matrix: row i is the embedding of user (or item) index i.</summary>
public sealed class EmbeddingMatrix
{
    public EmbeddingMatrix(int rows, int cols, float[] values)
    {
        if (rows < 0 || cols <= 0) throw new ArgumentException($"invalid shape {rows}x{cols}");
        if (values.Length != (long)rows * cols)
            throw new ArgumentException($"{values.Length} values do not fill a {rows}x{cols} matrix");
        Rows = rows;
        Cols = cols;
        Values = values;
    }

    public int Rows { get; }
    public int Cols { get; }
    public float[] Values { get; }

    public Span<float> Row(int i) => Values.AsSpan(i * Cols, Cols);

    public EmbeddingMatrix Clone() => new(Rows, Cols, (float[])Values.Clone());

    /// <summary>The rows named by <paramref name="indices"/>, in that order.</summary>
    public EmbeddingMatrix SelectRows(IReadOnlyList<int> indices)
    {
        var values = new float[indices.Count * Cols];
        for (var k = 0; k < indices.Count; k++) Row(indices[k]).CopyTo(values.AsSpan(k * Cols, Cols));
        return new EmbeddingMatrix(indices.Count, Cols, values);
    }

    /// <summary>Mean over rows of the squared L2 distance to the same row of <paramref name="other"/> (the DF retention loss's scale).</summary>
    public double MeanSquaredDistanceTo(EmbeddingMatrix other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Rows != Rows || other.Cols != Cols) throw new ArgumentException($"{other.Rows}x{other.Cols} against {Rows}x{Cols}");
        double sum = 0;
        for (var i = 0; i < Values.Length; i++)
        {
            double diff = Values[i] - other.Values[i];
            sum += diff * diff;
        }
        return Rows == 0 ? 0 : sum / Rows;
    }
}
