using System.Security.Cryptography;
using AttrCloak.Core.Data;
using AttrCloak.Streaming.State;

namespace AttrCloak.Tools.Samples.Streaming;

/// <summary>
/// Store options, catalogs and random user states for the state-store tests (tests/AttrCloak.Streaming.Redis.Tests)
/// and the store experiments (planner, throughput), so the same seed gives the same events in both.
/// </summary>
public static class StoreSamples
{
    public static readonly AttributeSpec[] SmallCatalog =
    [
        new("gender", ["F", "M"]),
        new("age", ["<25", "25-44", "45+"]),
    ];

    /// <summary>MovieLens-like catalog: 2 + 7 + 21 classes.</summary>
    public static readonly AttributeSpec[] MovieLensCatalog =
    [
        new("gender", ["F", "M"]),
        new("age", Enumerable.Range(0, 7).Select(i => $"a{i}").ToArray()),
        new("occupation", Enumerable.Range(0, 21).Select(i => $"o{i}").ToArray()),
    ];

    public static StateStoreOptions Options(string prefix, int dimension = 8, AttributeSpec[]? catalog = null, float[]? reference = null) => new()
    {
        Prefix = prefix,
        Dimension = dimension,
        Attributes = catalog ?? SmallCatalog,
        ReferencePoint = reference,
        TombstoneSecret = RandomNumberGenerator.GetBytes(32),
    };

    public static float[] RandomVector(Random rng, int d, double offset = 0, double scale = 1)
    {
        var v = new float[d];
        for (var i = 0; i < d; i++) v[i] = (float)(offset + scale * Gaussian(rng) + 0.3 * i / d);
        return v;
    }

    public static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    public static int[] RandomClasses(Random rng, AttributeSpec[] catalog, double unknownRate = 0.1) =>
        catalog.Select(a => rng.NextDouble() < unknownRate ? -1 : rng.Next(a.ClassCount)).ToArray();

    public static UserStateChange NewUser(string id, long version, Random rng, int d, AttributeSpec[]? catalog = null) =>
        new(id, $"e-{id}-{version}", version)
        {
            Original = RandomVector(rng, d),
            Cloaked = RandomVector(rng, d),
            Classes = RandomClasses(rng, catalog ?? SmallCatalog),
        };
}
