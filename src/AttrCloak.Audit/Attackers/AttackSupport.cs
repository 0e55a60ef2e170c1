using AttrCloak.Core.Data;

namespace AttrCloak.Audit.Attackers;

/// <summary>
/// Per-feature standardisation with the TRAINING rows' mean and population standard deviation (sklearn's
/// StandardScaler); the same transform is then applied to the rows being attacked.
/// </summary>
internal sealed class Standardizer
{
    private readonly double[] _mean;
    private readonly double[] _scale;

    private Standardizer(double[] mean, double[] scale)
    {
        _mean = mean;
        _scale = scale;
    }

    public int Dimensions => _mean.Length;

    public static Standardizer Fit(EmbeddingMatrix x)
    {
        if (x.Rows == 0) throw new ArgumentException("cannot standardise an empty training set");
        var d = x.Cols;
        var mean = new double[d];
        var m2 = new double[d];
        // Welford per feature in float64: embeddings can have large offsets relative to their spread.
        for (var i = 0; i < x.Rows; i++)
        {
            var row = x.Row(i);
            for (var j = 0; j < d; j++)
            {
                var delta = row[j] - mean[j];
                mean[j] += delta / (i + 1);
                m2[j] += delta * (row[j] - mean[j]);
            }
        }
        var scale = new double[d];
        for (var j = 0; j < d; j++)
        {
            var sd = Math.Sqrt(m2[j] / x.Rows);
            // A constant feature carries no information; dividing by ~0 would only amplify rounding noise.
            scale[j] = sd > 1e-12 ? 1.0 / sd : 1.0;
        }
        return new Standardizer(mean, scale);
    }

    public float[] Transform(EmbeddingMatrix x)
    {
        if (x.Cols != Dimensions)
            throw new ArgumentException($"the attacker was trained on {Dimensions} dimensions, got {x.Cols}");
        var result = new float[x.Values.Length];
        for (var i = 0; i < x.Rows; i++)
        {
            var row = x.Row(i);
            var offset = i * x.Cols;
            for (var j = 0; j < x.Cols; j++) result[offset + j] = (float)((row[j] - _mean[j]) * _scale[j]);
        }
        return result;
    }
}

/// <summary>
/// Maps the classes present in a training set to dense indices 0..P-1. Trainers only ever see present
/// classes (an absent class would otherwise get a bias driven towards minus infinity, or upset ML.NET's
/// class count), and predictions are expanded back to K columns with 0 for the absent ones.
/// </summary>
internal sealed class ClassMap
{
    private ClassMap(int classCount, int[] present, int[] dense)
    {
        ClassCount = classCount;
        Present = present;
        DenseLabels = dense;
    }

    /// <summary>K, the attribute's full class count.</summary>
    public int ClassCount { get; }

    /// <summary>The original class index of each dense index, ascending.</summary>
    public int[] Present { get; }

    /// <summary>The training labels mapped to dense indices.</summary>
    public int[] DenseLabels { get; }

    public int PresentCount => Present.Length;

    public static ClassMap Build(int[] y, int classCount, int rows)
    {
        if (classCount < 2) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "need at least 2 classes");
        if (y.Length != rows) throw new ArgumentException($"{y.Length} labels for {rows} rows");
        if (rows == 0) throw new ArgumentException("cannot train an attacker on no users");
        var seen = new bool[classCount];
        foreach (var c in y)
        {
            if ((uint)c >= (uint)classCount)
                throw new ArgumentException($"label {c} is outside 0..{classCount - 1} (unknown labels must be removed before training)");
            seen[c] = true;
        }
        var toDense = new int[classCount];
        var present = new List<int>();
        for (var c = 0; c < classCount; c++)
            if (seen[c]) { toDense[c] = present.Count; present.Add(c); }
        var dense = new int[y.Length];
        for (var i = 0; i < y.Length; i++) dense[i] = toDense[y[i]];
        return new ClassMap(classCount, present.ToArray(), dense);
    }

    /// <summary>Expands row-major [n, P] probabilities over present classes to [n, K].</summary>
    public float[] Expand(ReadOnlySpan<float> presentProba, int rows)
    {
        var p = PresentCount;
        if (presentProba.Length != rows * p) throw new ArgumentException("probability matrix has the wrong size");
        var result = new float[rows * ClassCount];
        for (var i = 0; i < rows; i++)
            for (var j = 0; j < p; j++)
                result[i * ClassCount + Present[j]] = presentProba[i * p + j];
        return result;
    }
}

/// <summary>What any attacker learns from a training set holding a single class: that class, always.</summary>
internal sealed class ConstantModel(int classCount, int onlyClass) : IAttackModel
{
    public int ClassCount => classCount;

    public float[] PredictProba(EmbeddingMatrix x)
    {
        var result = new float[x.Rows * classCount];
        for (var i = 0; i < x.Rows; i++) result[i * classCount + onlyClass] = 1f;
        return result;
    }

    public void Dispose()
    {
    }
}

/// <summary>Deterministic seed derivation, so that results do not depend on thread scheduling.</summary>
internal static class Seeds
{
    /// <summary>SplitMix64 over the parts: well-mixed, stable across platforms and runtime versions.</summary>
    public static int Derive(int seed, params ReadOnlySpan<int> parts)
    {
        var h = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL);
        foreach (var p in parts)
        {
            h = unchecked(h + (ulong)(uint)p + 0x9E3779B97F4A7C15UL);
            h = unchecked((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9UL);
            h = unchecked((h ^ (h >> 27)) * 0x94D049BB133111EBUL);
            h ^= h >> 31;
        }
        return (int)(h & 0x7FFFFFFF);
    }
}
