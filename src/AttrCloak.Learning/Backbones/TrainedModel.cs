using System.Text.Json;
using System.Text.Json.Serialization;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Core.IO;

namespace AttrCloak.Learning.Backbones;

/// <summary>
/// A trained backbone reduced to what AttrCloak needs: the vectors that actually score items
/// (score = <see cref="Users"/>[u]·<see cref="Items"/>[i]; for LightGCN both are the PROPAGATED embeddings,
/// so these are what gets cloaked and attacked) plus how they were obtained.
/// On disk: a directory with model.json, users.npy and items.npy (float32, NumPy-readable).
/// </summary>
public sealed class TrainedModel
{
    public const string MetadataFile = "model.json";
    public const string UsersFile = "users.npy";
    public const string ItemsFile = "items.npy";
    private const int FormatVersion = 1;

    public TrainedModel(BackboneKind kind, EmbeddingMatrix users, EmbeddingMatrix items, string datasetName,
        int epochsTrained, int bestEpoch, RankingMetrics validation, RankingMetrics test, double trainingSeconds,
        BackboneTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(users);
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(options);
        if (!Enum.IsDefined(kind)) throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown backbone");
        if (users.Cols != items.Cols)
            throw new ArgumentException($"user vectors have {users.Cols} dimensions but item vectors {items.Cols}");
        Kind = kind;
        Users = users;
        Items = items;
        DatasetName = datasetName;
        EpochsTrained = epochsTrained;
        BestEpoch = bestEpoch;
        Validation = validation;
        Test = test;
        TrainingSeconds = trainingSeconds;
        Options = options;
    }

    public BackboneKind Kind { get; }
    public int Dim => Users.Cols;

    /// <summary>The scoring user vectors, one row per dense user index.</summary>
    public EmbeddingMatrix Users { get; }

    /// <summary>The scoring item vectors, one row per dense item index.</summary>
    public EmbeddingMatrix Items { get; }

    public string DatasetName { get; }
    public int Seed => Options.Seed;
    public int EpochsTrained { get; }

    /// <summary>1-based epoch whose vectors these are (the best validation NDCG@10).</summary>
    public int BestEpoch { get; }

    public RankingMetrics Validation { get; }

    /// <summary>Test metrics of the kept vectors; reported only, never used for selection.</summary>
    public RankingMetrics Test { get; }

    public double TrainingSeconds { get; }

    /// <summary>The hyper-parameters the model was trained with.</summary>
    public BackboneTrainingOptions Options { get; }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(allowIntegerValues: false) },
    };

    /// <summary>Writes the model into <paramref name="dir"/> (created if needed); model.json is written last.</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        NpyFile.Write(Path.Combine(dir, UsersFile), Users);
        NpyFile.Write(Path.Combine(dir, ItemsFile), Items);
        var meta = new Metadata(FormatVersion, Kind, Dim, Users.Rows, Items.Rows, DatasetName, EpochsTrained,
            BestEpoch, Validation, Test, TrainingSeconds, Options);
        var path = Path.Combine(dir, MetadataFile);
        // The metadata goes last and atomically: its presence means the matrices beside it are complete.
        File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(meta, Json));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>
    /// Reads a model written by <see cref="Save"/>. Throws <see cref="DataFormatException"/> naming the
    /// directory or file when something is missing or inconsistent.
    /// </summary>
    public static TrainedModel Load(string dir)
    {
        if (!Directory.Exists(dir)) throw new DataFormatException($"{dir}: model directory not found");
        var path = Path.Combine(dir, MetadataFile);
        if (!File.Exists(path))
            throw new DataFormatException($"{dir}: no {MetadataFile}; not a trained-model directory (or an interrupted save)");
        Metadata? meta;
        try
        {
            meta = JsonSerializer.Deserialize<Metadata>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new DataFormatException($"{path}: invalid model metadata: {e.Message}");
        }
        if (meta is null) throw new DataFormatException($"{path}: empty model metadata");
        if (meta.FormatVersion != FormatVersion)
            throw new DataFormatException($"{path}: format version {meta.FormatVersion} is not supported (expected {FormatVersion})");
        if (!Enum.IsDefined(meta.Kind))
            throw new DataFormatException($"{path}: unknown backbone kind '{meta.Kind}'");
        if (meta.Options is null || meta.Validation is null || meta.Test is null)
            throw new DataFormatException($"{path}: missing options or metrics");

        var users = ReadMatrix(dir, UsersFile, meta.UserCount, meta.Dim);
        var items = ReadMatrix(dir, ItemsFile, meta.ItemCount, meta.Dim);
        return new TrainedModel(meta.Kind, users, items, meta.DatasetName ?? "", meta.EpochsTrained, meta.BestEpoch,
            meta.Validation, meta.Test, meta.TrainingSeconds, meta.Options);
    }

    private static EmbeddingMatrix ReadMatrix(string dir, string file, int rows, int cols)
    {
        var path = Path.Combine(dir, file);
        if (!File.Exists(path)) throw new DataFormatException($"{path}: missing (the model directory is incomplete)");
        var matrix = NpyFile.Read(path);
        if (matrix.Rows != rows || matrix.Cols != cols)
            throw new DataFormatException(
                $"{path}: shape ({matrix.Rows}, {matrix.Cols}) does not match {MetadataFile}'s ({rows}, {cols})");
        return matrix;
    }

    private sealed record Metadata(int FormatVersion, BackboneKind Kind, int Dim, int UserCount, int ItemCount,
        string? DatasetName, int EpochsTrained, int BestEpoch, RankingMetrics? Validation, RankingMetrics? Test,
        double TrainingSeconds, BackboneTrainingOptions? Options);
}
