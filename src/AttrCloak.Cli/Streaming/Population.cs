using System.ComponentModel;
using AttrCloak.Cli.Commands;
using AttrCloak.Cli.Experiments;
using AttrCloak.Cli.Rendering;
using AttrCloak.Core.Data;
using AttrCloak.Core.IO;
using AttrCloak.Learning.Backbones;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Streaming;

/// <summary>
/// Where the users of `bootstrap` and `replay` come from: a model folder written by `attrcloak train` (the data set
/// named by its dataset.json supplies ids and attributes), optionally with other embeddings in place of the model's
/// (--embeddings FILE.npy, row i = user index i, e.g. the users.npy of `attrcloak cloak` or an export's
/// embeddings_original.npy); or, without --model, the data set of --dataset (synthetic by default) with an MF
/// backbone trained on the fly.
/// </summary>
public class PopulationSettings : DataSettings
{
    [CommandOption("--model <DIR>")]
    [Description("Folder written by `attrcloak train` (users.npy + dataset.json naming the data set, whose user ids and attributes are used). Without it, an MF backbone is trained on the fly on --dataset (default synthetic).")]
    public string? Model { get; init; }

    [CommandOption("--embeddings <FILE>")]
    [Description("User embeddings to use instead of the model's (.npy, row i = user index i of the data set), e.g. embeddings_original.npy of `attrcloak cloak --export`.")]
    public string? Embeddings { get; init; }

    [CommandOption("--train-epochs <N>")]
    [Description("Without --model: epochs of the MF backbone trained on the fly (default 100, early stopping).")]
    public int? TrainEpochs { get; init; }

    [CommandOption("--dim <D>")]
    [Description("Without --model: embedding dimension of the backbone trained on the fly (default: the Dimension of the AttrCloak:Guard section, else 64).")]
    public int? Dim { get; init; }

    [CommandOption("--model-version <NAME>")]
    [Description("Model version carried by the events / served records (default: the model folder's name, or mf-<dataset>).")]
    public string? ModelVersion { get; init; }
}

/// <summary>
/// The users to bootstrap or replay: the data set (ids, attributes), where it came from (its leave-one-out split) and
/// one embedding row per user; the backbone's item embeddings too when the rows are its own users (a --model without
/// --embeddings, or a backbone trained on the fly), null otherwise: they score bootstrap's utility floor.
/// </summary>
public sealed record Population(RecDataset Data, EmbeddingMatrix Embeddings, string ModelVersion, string Description, EmbeddingMatrix? Items = null,
    DataSource? Source = null)
{
    /// <param name="s">The options.</param>
    /// <param name="configuredDimension">AttrCloak:Guard:Dimension when configured: the default --dim of a backbone trained on the fly.</param>
    /// <param name="checkData">Checks the data set (e.g. against the catalog) before any embedding is read or trained.</param>
    /// <param name="cancellationToken">Stops training.</param>
    public static Population Load(PopulationSettings s, int? configuredDimension, Action<RecDataset>? checkData, CancellationToken cancellationToken)
    {
        if (!string.IsNullOrWhiteSpace(s.Model))
        {
            if (s.TrainEpochs is not null || s.Dim is not null)
                throw new UsageException("--train-epochs and --dim are for training on the fly; with --model the model's embeddings are used");
            var model = ModelFolder.Load(s.Model);
            var source = s.ToSource(DataSource.ReadBeside(s.Model));
            var data = source.Load();
            checkData?.Invoke(data);
            var embeddings = s.Embeddings is null ? model.Users : ReadEmbeddings(s.Embeddings);
            ModelFolder.CheckRows(embeddings.Rows, data.UserCount, s.Embeddings ?? s.Model);
            var name = new DirectoryInfo(Path.GetFullPath(s.Model)).Name;
            return new Population(data, embeddings, s.ModelVersion ?? name,
                $"{source.Describe()}, {(s.Embeddings is null ? $"{model.Kind.ToString().ToLowerInvariant()} model {s.Model}" : s.Embeddings)}",
                s.Embeddings is null ? model.Items : null, source);
        }

        var onTheFly = s.ToSource();
        var dataSet = onTheFly.Load();
        checkData?.Invoke(dataSet);
        if (s.Embeddings is not null)
        {
            var given = ReadEmbeddings(s.Embeddings);
            ModelFolder.CheckRows(given.Rows, dataSet.UserCount, s.Embeddings);
            return new Population(dataSet, given, s.ModelVersion ?? Path.GetFileNameWithoutExtension(s.Embeddings), $"{onTheFly.Describe()}, {s.Embeddings}",
                Source: onTheFly);
        }
        var options = BackboneTrainingOptions.DefaultsFor(BackboneKind.Mf);
        if ((s.Dim ?? configuredDimension) is { } d and > 0) options = options with { Dim = d };
        if (s.TrainEpochs is { } e) options = options with { Epochs = e };
        try { options.Validate(); }
        catch (ArgumentException ex) { throw new UsageException(ex.Message); }
        AnsiConsole.MarkupLineInterpolated($"training an MF backbone on {onTheFly.Describe()} (dimension {options.Dim}; pass --model DIR to use a saved one)");
        var trained = ConsoleProgress.RunTraining(p => BackboneTrainers.Create(BackboneKind.Mf, options)
            .Train(dataSet, onTheFly.Split(dataSet), p, cancellationToken));
        return new Population(dataSet, trained.Users, s.ModelVersion ?? $"mf-{dataSet.Name}", $"{onTheFly.Describe()}, MF trained on the fly",
            trained.Items, onTheFly);
    }

    private static EmbeddingMatrix ReadEmbeddings(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"embeddings file '{path}' not found");
        if (!path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"embeddings file '{path}': expected a NumPy .npy file (row i = user index i)");
        return NpyFile.Read(path);
    }
}

/// <summary>
/// How a data set's attributes map onto the deployment's catalog (AttrCloak:Guard:Attributes): by attribute name and
/// class name, since the store keys statistics by the catalog's class positions, which need not be the data set's.
/// </summary>
public sealed class CatalogMapping
{
    private CatalogMapping(IReadOnlyList<string> names, IReadOnlyList<IReadOnlyList<string>> classes, int[][] labels)
    {
        AttributeNames = names;
        ClassNames = classes;
        Labels = labels;
    }

    /// <summary>Catalog attribute names, in catalog order.</summary>
    public IReadOnlyList<string> AttributeNames { get; }

    /// <summary>Class names per catalog attribute, in catalog order.</summary>
    public IReadOnlyList<IReadOnlyList<string>> ClassNames { get; }

    /// <summary>Labels[a][u]: user u's class position in catalog attribute a, or -1 when unknown.</summary>
    public int[][] Labels { get; }

    /// <summary>The classes of user <paramref name="u"/> in catalog order (-1 = unknown).</summary>
    public int[] ClassesOf(int u)
    {
        var classes = new int[Labels.Length];
        for (var a = 0; a < classes.Length; a++) classes[a] = Labels[a][u];
        return classes;
    }

    /// <summary>The class names of user <paramref name="u"/>'s known attributes (attribute -> class), as events carry them; null when none is known.</summary>
    public Dictionary<string, string>? AttributesOf(int u)
    {
        Dictionary<string, string>? values = null;
        for (var a = 0; a < AttributeNames.Count; a++)
            if (Labels[a][u] is var k and >= 0)
                (values ??= new Dictionary<string, string>(StringComparer.Ordinal))[AttributeNames[a]] = ClassNames[a][k];
        return values;
    }

    /// <summary>
    /// Maps <paramref name="data"/>'s labels onto <paramref name="catalog"/> (attribute -> classes, in order). Every
    /// catalog attribute must exist in the data set and every class a user of the data set has must be in the catalog;
    /// data set attributes the catalog does not list are ignored (not protected by this deployment).
    /// </summary>
    public static CatalogMapping Create(RecDataset data, IReadOnlyDictionary<string, string[]> catalog)
    {
        var names = new List<string>();
        var classes = new List<IReadOnlyList<string>>();
        var labels = new List<int[]>();
        var problems = new List<string>();
        foreach (var (name, catalogClasses) in catalog)
        {
            var index = -1;
            for (var i = 0; i < data.Attributes.Count; i++)
                if (string.Equals(data.Attributes[i].Name, name, StringComparison.Ordinal)) index = i;
            if (index < 0)
            {
                problems.Add($"the configured attribute '{name}' is not an attribute of data set '{data.Name}' (it has: {string.Join(", ", data.Attributes.Select(a => a.Name))})");
                continue;
            }
            var spec = data.Attributes[index];
            var toCatalog = new int[spec.ClassCount];
            var missing = new List<string>();
            for (var k = 0; k < spec.ClassCount; k++)
            {
                toCatalog[k] = Array.IndexOf(catalogClasses, spec.ClassNames[k]);
                if (toCatalog[k] < 0 && data.Labels[index].Contains(k)) missing.Add(spec.ClassNames[k]);
            }
            if (missing.Count > 0)
            {
                problems.Add($"attribute '{name}': the data set's classes {string.Join(", ", missing.Select(m => $"'{m}'"))} are not in the configured classes ({string.Join(", ", catalogClasses)})");
                continue;
            }
            var column = data.Labels[index].Select(c => c < 0 ? -1 : toCatalog[c]).ToArray();
            names.Add(name);
            classes.Add(catalogClasses);
            labels.Add(column);
        }
        if (problems.Count > 0)
            throw new UsageException("the data set does not fit AttrCloak:Guard:Attributes: " + string.Join("; ", problems));
        return new CatalogMapping(names, classes, labels.ToArray());
    }

    /// <summary>The data set's own attributes and classes, for producers that run without a configured catalog.</summary>
    public static CatalogMapping Identity(RecDataset data) =>
        new(data.Attributes.Select(a => a.Name).ToArray(), data.Attributes.Select(a => a.ClassNames).ToArray(), data.Labels.Select(l => (int[])l.Clone()).ToArray());
}
