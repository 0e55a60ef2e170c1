using Microsoft.ML;
using Microsoft.ML.Data;

namespace AttrCloak.Audit.Attackers;

/// <summary>
/// Moves standardised feature rows into ML.NET data views with the column types its trainers need:
/// a known-size float vector and a key-typed label whose key count is the number of PRESENT classes.
/// A class property of a key column holds the 0-based key index (ML.NET adds the 1 of its internal
/// "0 = missing" representation itself, as observed with 5.0.1: storing j + 1 shifted every class), so
/// dense class j is stored as j and ML.NET's score vector is indexed by dense class j. A typed key label avoids MapValueToKey, whose default key order is
/// the order of first appearance and would silently permute the score columns.
/// </summary>
internal static class MlNetData
{
    public const string Features = nameof(KeyRow.Features);
    public const string Label = nameof(KeyRow.Label);

    public static IDataView Keyed(MLContext ml, float[] features, int rows, int dims, int[]? denseLabels, int classCount)
    {
        var list = new List<KeyRow>(rows);
        for (var i = 0; i < rows; i++)
            list.Add(new KeyRow
            {
                Features = features.AsSpan(i * dims, dims).ToArray(),
                // Rows to be scored need a label column only to satisfy the schema; any valid key will do.
                Label = denseLabels is null ? 0u : (uint)denseLabels[i],
            });
        var schema = SchemaDefinition.Create(typeof(KeyRow));
        schema[Features].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dims);
        schema[Label].ColumnType = new KeyDataViewType(typeof(uint), classCount);
        return ml.Data.LoadFromEnumerable(list, schema);
    }

    public static IDataView Binary(MLContext ml, float[] features, int rows, int dims, int[]? denseLabels)
    {
        var list = new List<BoolRow>(rows);
        for (var i = 0; i < rows; i++)
            list.Add(new BoolRow
            {
                Features = features.AsSpan(i * dims, dims).ToArray(),
                Label = denseLabels is not null && denseLabels[i] == 1,
            });
        var schema = SchemaDefinition.Create(typeof(BoolRow));
        schema[Features].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dims);
        return ml.Data.LoadFromEnumerable(list, schema);
    }

    /// <summary>Reads the multiclass "Score" column (softmax probabilities) as row-major [n, P].</summary>
    public static float[] ReadScores(IDataView scored, int rows, int classCount)
    {
        var result = new float[rows * classCount];
        var i = 0;
        foreach (var score in scored.GetColumn<VBuffer<float>>("Score"))
        {
            if (score.Length != classCount)
                throw new InvalidOperationException($"ML.NET returned {score.Length} scores, expected {classCount}");
            var dense = score.DenseValues().ToArray();
            Normalise(dense);
            dense.CopyTo(result, i * classCount);
            i++;
        }
        if (i != rows) throw new InvalidOperationException($"ML.NET scored {i} rows, expected {rows}");
        return result;
    }

    /// <summary>Reads the binary "Probability" column as row-major [n, 2] = [P(class 0), P(class 1)].</summary>
    public static float[] ReadBinaryProbabilities(IDataView scored, int rows)
    {
        var result = new float[rows * 2];
        var i = 0;
        foreach (var p in scored.GetColumn<float>("Probability"))
        {
            var p1 = float.IsNaN(p) ? 0.5f : Math.Clamp(p, 0f, 1f);
            result[2 * i] = 1f - p1;
            result[2 * i + 1] = p1;
            i++;
        }
        if (i != rows) throw new InvalidOperationException($"ML.NET scored {i} rows, expected {rows}");
        return result;
    }

    // Softmax outputs sum to 1 up to float rounding; renormalising keeps downstream tables exact.
    private static void Normalise(float[] row)
    {
        double sum = 0;
        foreach (var v in row) sum += v;
        if (!(sum > 0) || double.IsInfinity(sum))
        {
            Array.Fill(row, 1f / row.Length);
            return;
        }
        for (var k = 0; k < row.Length; k++) row[k] = (float)(row[k] / sum);
    }

    private sealed class KeyRow
    {
        public float[] Features { get; set; } = [];
        public uint Label { get; set; }
    }

    private sealed class BoolRow
    {
        public float[] Features { get; set; } = [];
        public bool Label { get; set; }
    }
}

/// <summary>An ML.NET model behind the attacker interface: standardise, score, expand to K classes.</summary>
internal sealed class MlNetAttackModel(
    Standardizer standardizer, ClassMap classes, ITransformer model, MLContext ml, bool binary) : IAttackModel
{
    public int ClassCount => classes.ClassCount;

    public float[] PredictProba(AttrCloak.Core.Data.EmbeddingMatrix x)
    {
        var features = standardizer.Transform(x);
        var p = classes.PresentCount;
        float[] present;
        if (binary)
        {
            var data = MlNetData.Binary(ml, features, x.Rows, x.Cols, null);
            present = MlNetData.ReadBinaryProbabilities(model.Transform(data), x.Rows);
        }
        else
        {
            var data = MlNetData.Keyed(ml, features, x.Rows, x.Cols, null, p);
            present = MlNetData.ReadScores(model.Transform(data), x.Rows, p);
        }
        return classes.Expand(present, x.Rows);
    }

    public void Dispose() => (model as IDisposable)?.Dispose();
}
