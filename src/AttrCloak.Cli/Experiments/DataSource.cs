using System.Text.Json;
using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;
using AttrCloak.Core.Data.Synthetic;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Cli.Experiments;

/// <summary>
/// Where a data set comes from: its layout and directory. Saved beside a trained model (dataset.json) so that
/// `cloak`, `audit` and `evaluate` find the labels and interactions without being told again.
/// </summary>
public sealed record DataSource(string Dataset, string? Directory, int SyntheticUsers = 1000, long SyntheticSeed = 2025, int SplitSeed = 2025,
    double? SyntheticStrength = null)
{
    /// <summary>Synthetic class-frequency skew (<see cref="SyntheticOptions.ClassImbalance"/>); null = the generator's default.</summary>
    public double? SyntheticImbalance { get; init; }

    /// <summary>Synthetic occupation class count (<see cref="SyntheticOptions.OccupationClasses"/>); null = 21.</summary>
    public int? SyntheticClasses { get; init; }

    public const string FileName = "dataset.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public DatasetKind Kind => DatasetKindNames.TryParse(Dataset, out var k)
        ? k
        : throw new UsageException($"unknown --dataset '{Dataset}'; expected one of: {string.Join(", ", DatasetKindNames.Names)}");

    public RecDataset Load()
    {
        var kind = Kind;
        if (kind != DatasetKind.Synthetic && string.IsNullOrWhiteSpace(Directory))
            throw new UsageException($"--dataset {Dataset} needs --data DIR (the folder holding its files)");
        return DatasetLoader.Load(kind, Directory ?? "", SyntheticOptionsFor());
    }

    /// <summary>The leave-one-out split every method of an experiment is evaluated on (fixed candidate lists).</summary>
    public LeaveOneOutSplit Split(RecDataset data) => LeaveOneOutSplit.Create(data, 99, SplitSeed);

    private SyntheticOptions SyntheticOptionsFor()
    {
        var options = new SyntheticOptions { Users = SyntheticUsers, Seed = SyntheticSeed };
        if (SyntheticStrength is { } s) options = options with { AttributeStrength = s };
        if (SyntheticImbalance is { } i) options = options with { ClassImbalance = i };
        if (SyntheticClasses is { } k) options = options with { OccupationClasses = k };
        return options;
    }

    public string Describe() => Kind == DatasetKind.Synthetic ? $"synthetic ({SyntheticUsers} users, seed {SyntheticSeed})" : $"{Dataset} from {Directory}";

    public void SaveBeside(string modelDir) =>
        File.WriteAllText(Path.Combine(modelDir, FileName),
            JsonSerializer.Serialize(this with { Directory = Directory is null ? null : Path.GetFullPath(Directory) }, Json));

    /// <summary>The data source recorded beside a model, or null when the model has none.</summary>
    public static DataSource? ReadBeside(string modelDir)
    {
        var path = Path.Combine(modelDir, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<DataSource>(File.ReadAllText(path))
                ?? throw new DataFormatException($"{path}: empty data-source record");
        }
        catch (JsonException e)
        {
            throw new DataFormatException($"{path}: not a valid data-source record ({e.Message})");
        }
    }
}
