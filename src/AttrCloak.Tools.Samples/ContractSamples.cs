using AttrCloak.Streaming.Contracts;

namespace AttrCloak.Tools.Samples;

/// <summary>
/// Fixed contract events (an embedding update, privacy requests, a cloaked embedding, a dead letter) and the catalog
/// they use. Used by the contract tests and the codec experiment, so both measure the same events and sizes.
/// </summary>
public static class ContractSamples
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

    public static EmbeddingUpdate Update(int dimension = 64, string userId = "user-42", bool attributes = true) =>
        new("0b6f0a3e-2c1d-4a8e-9f00-5d2b7c1e9a44", userId, 7, Time, "mf-2025.01", Embedding(dimension),
            attributes ? new Dictionary<string, string> { ["gender"] = "female", ["age"] = "25_34" } : null);

    public static PrivacyRequest Request(PrivacyRequestType type) =>
        new("e-2", "user-42", 8, Time, type,
            type == PrivacyRequestType.UpdateAttributes ? new Dictionary<string, string?> { ["gender"] = "male", ["age"] = null } : null);

    public static CloakedEmbedding Cloaked(int dimension = 64) =>
        new("user-42", 7, "mf-2025.01", Embedding(dimension, seed: 2), ["gender", "age"], Time.AddSeconds(1));

    public static DeadLetter DeadLetter() =>
        new(ReasonCode.WrongDimension, "embedding has 63 values; this deployment's dimension is 64",
            TopicDefaults.Embeddings, 3, 1234, 1187, Time.AddSeconds(2));
}
