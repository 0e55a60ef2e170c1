using AttrCloak.Streaming.Contracts;

namespace AttrCloak.Tools.Experiments.Support;

/// <summary>Events for the codec benchmark (the contract tests' Samples, copied: the same events, the same sizes).</summary>
internal static class CodecSamples
{
    public static readonly DateTimeOffset Time = new(2025, 1, 31, 12, 0, 0, 250, TimeSpan.Zero);

    public static AttributeCatalog Catalog { get; } = new(new Dictionary<string, string[]>
    {
        ["gender"] = ["female", "male"],
        ["age"] = ["under_18", "18_24", "25_34", "35_44", "45_49", "50_55", "56_plus"],
    });

    public static float[] Embedding(int dimension, int seed = 1)
    {
        var rng = new Random(seed);
        var values = new float[dimension];
        for (var i = 0; i < dimension; i++)
            values[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 7 == 0 ? 100f : 1f);
        return values;
    }

    public static EmbeddingUpdate Update(int dimension = 64, string userId = "user-42") =>
        new("0b6f0a3e-2c1d-4a8e-9f00-5d2b7c1e9a44", userId, 7, Time, "mf-2025.01", Embedding(dimension),
            new Dictionary<string, string> { ["gender"] = "female", ["age"] = "25_34" });
}
