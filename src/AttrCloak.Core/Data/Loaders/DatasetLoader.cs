using AttrCloak.Core.Data.Synthetic;

namespace AttrCloak.Core.Data.Loaders;

/// <summary>
/// The single entry point that turns a data set kind and a directory into a <see cref="RecDataset"/>, so
/// hosts do not need to know which loader reads which layout.
/// </summary>
public static class DatasetLoader
{
    /// <summary>
    /// Loads the data set of <paramref name="kind"/> from <paramref name="directory"/>. For
    /// <see cref="DatasetKind.Synthetic"/> the directory is ignored and <paramref name="synthetic"/>
    /// (default options when null) drives the generator.
    /// </summary>
    /// <exception cref="DataFormatException">A file is missing or malformed; the message names file and line.</exception>
    public static RecDataset Load(DatasetKind kind, string directory, SyntheticOptions? synthetic = null) => kind switch
    {
        DatasetKind.MovieLens100K => MovieLens100KLoader.Load(directory),
        DatasetKind.MovieLens1M => MovieLens1MLoader.Load(directory),
        DatasetKind.Csv => CsvLoader.Load(directory),
        DatasetKind.Synthetic => SyntheticDataset.Generate(synthetic ?? new SyntheticOptions()),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a known data set kind"),
    };
}
