namespace AttrCloak.Core.Data.Loaders;

/// <summary>The on-disk layouts the project reads, plus the built-in synthetic generator.</summary>
public enum DatasetKind
{
    /// <summary>MovieLens-100K: <c>u.data</c>, <c>u.user</c> and optionally <c>u.occupation</c>.</summary>
    MovieLens100K,

    /// <summary>MovieLens-1M: <c>ratings.dat</c> and <c>users.dat</c>.</summary>
    MovieLens1M,

    /// <summary>Generic layout: <c>interactions.csv</c> (user,item[,timestamp]) and <c>users.csv</c> (user + attributes).</summary>
    Csv,

    /// <summary>Generated in memory by <see cref="Synthetic.SyntheticDataset"/>; no files.</summary>
    Synthetic,
}

/// <summary>
/// The short names users type on the command line ("ml-100k", "ml-1m", "csv", "synthetic"), kept in one
/// place so the CLI, reports and error messages agree.
/// </summary>
public static class DatasetKindNames
{
    private static readonly (string Name, DatasetKind Kind)[] Table =
    [
        ("ml-100k", DatasetKind.MovieLens100K),
        ("ml-1m", DatasetKind.MovieLens1M),
        ("csv", DatasetKind.Csv),
        ("synthetic", DatasetKind.Synthetic),
    ];

    /// <summary>All accepted names, in the order they are listed in help and error messages.</summary>
    public static IReadOnlyList<string> Names { get; } = Array.AsReadOnly(Table.Select(t => t.Name).ToArray());

    /// <summary>The short name of <paramref name="kind"/>, e.g. "ml-100k".</summary>
    public static string ToName(this DatasetKind kind)
    {
        foreach (var (name, k) in Table)
            if (k == kind) return name;
        throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a known data set kind");
    }

    /// <summary>Case-insensitive; also accepts the enum member names (e.g. "MovieLens1M").</summary>
    public static bool TryParse(string? name, out DatasetKind kind)
    {
        var trimmed = name?.Trim();
        foreach (var (n, k) in Table)
        {
            if (string.Equals(n, trimmed, StringComparison.OrdinalIgnoreCase)
                || string.Equals(k.ToString(), trimmed, StringComparison.OrdinalIgnoreCase))
            {
                kind = k;
                return true;
            }
        }
        kind = default;
        return false;
    }

    /// <exception cref="ArgumentException">The name is not one of <see cref="Names"/>.</exception>
    public static DatasetKind Parse(string name) =>
        TryParse(name, out var kind)
            ? kind
            : throw new ArgumentException($"unknown data set '{name}'; expected one of: {string.Join(", ", Names)}", nameof(name));
}
