using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Streaming.Generations;

/// <summary>
/// How a population is batch-cloaked when a generation is seated (by <c>attrcloak bootstrap</c>, by the worker when it
/// promotes a generation, by the benches): <see cref="DataFree"/> is batch AttrCloak-DF with the DF preset,
/// <see cref="ToTarget"/> the privacy-target loop.
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
    public static PopulationSeeding DataFree { get; } = new("batch AttrCloak-DF", (o, c, catalog, ct) => CloakDataFree(o, c, catalog, null, ct))
    {
        Holding = floors => new("batch AttrCloak-DF, class offsets capped at the last seating's", (o, c, catalog, ct) => CloakDataFree(o, c, catalog, floors, ct)),
    };

    /// <summary>
    /// This seating for a re-seating, given per attribute and class the least share of its offset each class keeps
    /// (<see cref="SeatingFigures.ReseatingKeepFloors"/>). Null: the seating has no such form, and re-seats as it seats.
    /// </summary>
    public Func<IReadOnlyDictionary<string, double[]>, PopulationSeeding>? Holding { get; init; }

    /// <summary>
    /// The privacy-target loop (DF, no utility floor, principal strata) to <paramref name="epsilon"/> on shadow audits of
    /// the population itself (<see cref="GenerationOptions.SeatingPrivacyTarget"/>).
    /// </summary>
    public static PopulationSeeding ToTarget(double epsilon) => new(FormattableString.Invariant($"AttrCloak-DF to privacy target {epsilon}"),
        (originals, classes, catalog, cancellationToken) => originals.Length == 0
            ? []
            : PopulationSeeder.Rows(PopulationSeeder.CloakToTarget(new SeedPopulation(new string[originals.Length], originals, classes), catalog,
                new PrivacyGoal(epsilon), null, null, cancellationToken).Embeddings));

    private static float[][] CloakDataFree(float[][] originals, int[][] classes, IReadOnlyList<AttributeSpec> catalog,
        IReadOnlyDictionary<string, double[]>? classKeepFloors, CancellationToken cancellationToken)
    {
        if (originals.Length == 0) return [];
        var population = new SeedPopulation(new string[originals.Length], originals, classes);
        return PopulationSeeder.Rows(PopulationSeeder.CloakDataFree(population, catalog, null, cancellationToken, classKeepFloors).Embeddings);
    }
}
