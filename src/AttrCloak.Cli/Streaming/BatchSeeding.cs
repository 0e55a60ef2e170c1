using AttrCloak.Cli.Experiments;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Pipeline;

namespace AttrCloak.Cli.Streaming;

/// <summary>
/// The benches' population seeding: batch AttrCloak-DF with the CLI's DF preset, the same code <c>attrcloak bootstrap</c>
/// runs, so the served population (whose class statistics the worker maps streamed users onto) is a cloaked one.
/// </summary>
public static class BatchSeeding
{
    /// <summary>Batch AttrCloak-DF (<see cref="CloakPresets.DataFree"/>) over all users and attributes.</summary>
    public static PopulationSeeding DataFree { get; } = new("batch AttrCloak-DF", CloakDataFree);

    private static float[][] CloakDataFree(float[][] originals, int[][] classes, IReadOnlyList<AttributeSpec> catalog, CancellationToken cancellationToken)
    {
        var n = originals.Length;
        var d = n == 0 ? 0 : originals[0].Length;
        var values = new float[n * d];
        for (var u = 0; u < n; u++) originals[u].CopyTo(values, u * d);
        var attributes = catalog.Select((a, j) => new ProtectedAttribute(a.Name, a.ClassNames.Count, classes.Select(c => c[j]).ToArray())).ToArray();
        var result = new Cloaker().Cloak(new EmbeddingMatrix(n, d, values), attributes, CloakPresets.DataFree, null, null, cancellationToken);
        return Enumerable.Range(0, n).Select(u => result.Embeddings.Row(u).ToArray()).ToArray();
    }
}
