using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Streaming.Generations;

/// <summary>
/// How a population is batch-cloaked when a generation is seated (by <c>attrcloak bootstrap</c>, by the worker when it
/// promotes a generation, by the benches): <see cref="DataFree"/> is batch AttrCloak-DF with the DF preset.
/// </summary>
/// <param name="Method">Named in logs and bench output, e.g. "batch AttrCloak-DF".</param>
/// <param name="Cloak">
/// Originals (one row per user) and classes (per user, one per catalog attribute, in catalog order) to the cloaked rows,
/// same order and dimension.
/// </param>
public sealed record PopulationSeeding(
    string Method,
    Func<float[][], int[][], IReadOnlyList<AttributeSpec>, CancellationToken, float[][]> Cloak)
{
    /// <summary>Batch AttrCloak-DF (<see cref="CloakPresets.DataFree"/>) over all users and attributes.</summary>
    public static PopulationSeeding DataFree { get; } = new("batch AttrCloak-DF", CloakDataFree);

    private static float[][] CloakDataFree(float[][] originals, int[][] classes, IReadOnlyList<AttributeSpec> catalog, CancellationToken cancellationToken)
    {
        var n = originals.Length;
        if (n == 0) return [];
        var d = originals[0].Length;
        var values = new float[n * d];
        for (var u = 0; u < n; u++) originals[u].CopyTo(values, u * d);
        var attributes = catalog.Select((a, j) => new LabeledAttribute(a, classes.Select(c => c[j]).ToArray())).ToArray();
        var result = new Cloaker().Cloak(new EmbeddingMatrix(n, d, values), attributes, CloakPresets.DataFree, null, null, cancellationToken);
        return Enumerable.Range(0, n).Select(u => result.Embeddings.Row(u).ToArray()).ToArray();
    }
}
