using AttrCloak.Audit;
using AttrCloak.Streaming.State;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Streaming.Generations;

/// <summary>
/// A population to seed a generation with: user ids, original embeddings (row i = user i) and classes per user, one per
/// catalog attribute in catalog order (-1 unknown).
/// </summary>
public sealed record SeedPopulation(IReadOnlyList<string> UserIds, float[][] Originals, int[][] Classes)
{
    /// <summary>The population of <paramref name="userIds"/> with the rows of <paramref name="originals"/>.</summary>
    public static SeedPopulation Of(IReadOnlyList<string> userIds, EmbeddingMatrix originals, int[][] classes)
    {
        ArgumentNullException.ThrowIfNull(originals);
        return new SeedPopulation(userIds, PopulationSeeder.Rows(originals), classes);
    }

    public int Count => UserIds.Count;
}

/// <summary>
/// Seeding a generation with a batch-cloaked population, the one way <c>attrcloak bootstrap</c>, the demo and the
/// benches do it: the protected attributes of the population, the batch cloak (AttrCloak-DF by default, or any
/// <see cref="PopulationSeeding"/>), its shape checked, then every user written with <see cref="GenerationSeeding"/>.
/// </summary>
public static class PopulationSeeder
{
    /// <summary>The population's protected attributes in catalog order, as the batch cloak takes them.</summary>
    public static LabeledAttribute[] LabeledAttributes(IReadOnlyList<AttributeSpec> catalog, int[][] classes)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(classes);
        return catalog.Select((a, j) => new LabeledAttribute(a, classes.Select(c => c[j]).ToArray())).ToArray();
    }

    /// <summary>
    /// Checks that every attribute can be cloaked for this population (<see cref="LabeledAttribute.Validate"/>).
    /// </summary>
    /// <exception cref="ArgumentException">An attribute cannot (e.g. a class without enough users).</exception>
    public static void CheckAttributes(SeedPopulation population, IReadOnlyList<AttributeSpec> catalog)
    {
        ArgumentNullException.ThrowIfNull(population);
        foreach (var attribute in LabeledAttributes(catalog, population.Classes)) attribute.Validate(population.Count);
    }

    /// <summary>
    /// Batch AttrCloak-DF (<see cref="CloakPresets.DataFree"/>) of the population over every catalog attribute; with
    /// <paramref name="classKeepFloors"/> (per attribute, per class) no class keeps less of its mean offset
    /// (<see cref="CloakOptions.ClassKeepFloors"/>: a re-seating's, <see cref="SeatingFigures.ReseatingKeepFloors"/>).
    /// </summary>
    public static CloakResult CloakDataFree(SeedPopulation population, IReadOnlyList<AttributeSpec> catalog, IProgress<CloakIteration>? progress,
        CancellationToken cancellationToken, IReadOnlyDictionary<string, double[]>? classKeepFloors = null)
    {
        ArgumentNullException.ThrowIfNull(population);
        var options = classKeepFloors is null ? CloakPresets.DataFree : CloakPresets.DataFree with { ClassKeepFloors = classKeepFloors };
        return new Cloaker().Cloak(Matrix(population), LabeledAttributes(catalog, population.Classes), options, null, progress, cancellationToken);
    }

    /// <summary>
    /// The privacy-target loop (<see cref="TargetedCloaker"/>, DF preset, principal strata) on the population, judged by
    /// shadow audits of the population itself: what `attrcloak bootstrap --privacy-target` and a worker's seatings with
    /// <see cref="GenerationOptions.SeatingPrivacyTarget"/> run. <paramref name="utility"/> null: no utility floor.
    /// </summary>
    public static TargetedCloakResult CloakToTarget(SeedPopulation population, IReadOnlyList<AttributeSpec> catalog, PrivacyGoal goal,
        IUtilityProbe? utility, IProgress<TargetStep>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(population);
        var attributes = LabeledAttributes(catalog, population.Classes);
        var audited = attributes.Select(a => new AuditedAttribute(a.Attribute.Name, a.Attribute.ClassCount, a.Labels)).ToArray();
        return new TargetedCloaker().Cloak(Matrix(population), attributes, CloakPresets.DataFree, goal, new ShadowAuditProbe(audited), utility,
            progress: progress, ct: cancellationToken);
    }

    /// <summary>The population's originals as one matrix (row u = user u).</summary>
    public static EmbeddingMatrix Matrix(SeedPopulation population)
    {
        ArgumentNullException.ThrowIfNull(population);
        var n = population.Count;
        var d = population.Originals[0].Length;
        var values = new float[n * d];
        for (var u = 0; u < n; u++) population.Originals[u].CopyTo(values, u * d);
        return new EmbeddingMatrix(n, d, values);
    }

    /// <summary>The population cloaked by <paramref name="seeding"/>, checked: one finite row of the originals' dimension per user.</summary>
    /// <exception cref="InvalidOperationException">The seeding returned another shape or a non-finite value.</exception>
    public static float[][] Cloak(PopulationSeeding seeding, SeedPopulation population, IReadOnlyList<AttributeSpec> catalog, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(seeding);
        ArgumentNullException.ThrowIfNull(population);
        var cloaked = seeding.Cloak(population.Originals, population.Classes, catalog, cancellationToken);
        var n = population.Count;
        var d = n == 0 ? 0 : population.Originals[0].Length;
        if (cloaked is null || cloaked.Length != n || cloaked.Any(row => row is null || row.Length != d || !row.All(float.IsFinite)))
            throw new InvalidOperationException($"the population seeding ({seeding.Method}) did not return {n} finite rows of {d} values");
        return cloaked;
    }

    /// <summary>
    /// Writes the population with its cloaked rows into <paramref name="modelVersion"/> (<see cref="GenerationSeeding.SeedAsync"/>:
    /// deterministic event ids, one atomic write per batch, then the generation seated and serving).
    /// </summary>
    public static Task<SeedResult> WriteAsync(IGenerationStore store, string modelVersion, SeedPopulation population, IReadOnlyList<float[]> cloaked,
        long version, int batchSize, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(population);
        ArgumentNullException.ThrowIfNull(cloaked);
        if (cloaked.Count != population.Count)
            throw new ArgumentException($"{cloaked.Count} cloaked rows for {population.Count} users", nameof(cloaked));
        var users = Enumerable.Range(0, population.Count)
            .Select(u => new SeedUser(population.UserIds[u], population.Originals[u], cloaked[u], population.Classes[u])).ToList();
        return GenerationSeeding.SeedAsync(store, modelVersion, users, version, batchSize, progress, cancellationToken);
    }

    /// <summary>The rows of <paramref name="matrix"/> as arrays.</summary>
    public static float[][] Rows(EmbeddingMatrix matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        return Enumerable.Range(0, matrix.Rows).Select(u => matrix.Row(u).ToArray()).ToArray();
    }

    /// <summary>
    /// After a forced re-seed that wrote nothing new (the generation stays as it was, so no sweep would follow): asks
    /// the workers to sweep a published generation again, so that every user of it is published again. Returns the
    /// generation as it is then.
    /// </summary>
    public static async Task<Generation> ResweepUnchangedAsync(IGenerationStore store, string modelVersion, SeedResult seeded, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(seeded);
        if (!seeded.Generation.Published || seeded.Outcomes[ApplyOutcome.Applied] != 0) return seeded.Generation;
        return (await store.UpdateRegistryAsync(r => r.WithSweepRequested(modelVersion), cancellationToken).ConfigureAwait(false)).Find(modelVersion)!;
    }
}
