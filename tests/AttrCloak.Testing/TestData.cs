using Xunit;

namespace AttrCloak.Testing;

/// <summary>
/// Finds real data sets that live OUTSIDE the repository (they are never copied into it): by default
/// <c>../shared/data/ml-100k</c> next to the checkout, i.e. beside the folder that holds
/// AttrCloak.Streaming.sln, or wherever the environment variable <see cref="MovieLens100KVariable"/> points.
/// Tests that need the data call <see cref="RequireMovieLens100K"/>, which skips them visibly when it is absent.
/// The one place test projects find real data: never hard-code a path or read the variable elsewhere.
/// </summary>
public static class TestData
{
    public const string MovieLens100KVariable = "ATTRCLOAK_ML100K";
    public const string SolutionFileName = "AttrCloak.Streaming.sln";
    private static readonly string[] MovieLens100KFiles = ["u.data", "u.user"];

    private static readonly Lazy<(string? Directory, string Reason)> MovieLens100K = new(LocateMovieLens100K);

    /// <summary>The folder that contains AttrCloak.Streaming.sln, walking up from the test binaries; null if none.</summary>
    public static string? RepositoryRoot => FindRepositoryRoot(AppContext.BaseDirectory);

    /// <summary>The ML-100K directory if it is present, otherwise null (see <see cref="MovieLens100KMissingReason"/>).</summary>
    public static string? MovieLens100KDirectory => MovieLens100K.Value.Directory;

    /// <summary>Why <see cref="MovieLens100KDirectory"/> is null; empty when the data is present.</summary>
    public static string MovieLens100KMissingReason => MovieLens100K.Value.Reason;

    /// <summary>The ML-100K directory, or skips the calling test with the reason (xUnit v3 dynamic skip).</summary>
    public static string RequireMovieLens100K()
    {
        var (directory, reason) = MovieLens100K.Value;
        if (directory is null) Assert.Skip(reason);
        return directory;
    }

    public static string? FindRepositoryRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, SolutionFileName))) return dir.FullName;
        return null;
    }

    private static (string?, string) LocateMovieLens100K()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(MovieLens100KVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
            return HasFiles(fromEnvironment)
                ? (Path.GetFullPath(fromEnvironment), "")
                : (null, $"ML-100K not found: {MovieLens100KVariable}={fromEnvironment} does not contain {string.Join(" and ", MovieLens100KFiles)}");
        var root = RepositoryRoot;
        if (root is null)
            return (null, $"ML-100K not found: no {SolutionFileName} above {AppContext.BaseDirectory} and {MovieLens100KVariable} is not set");
        var candidate = Path.GetFullPath(Path.Combine(root, "..", "shared", "data", "ml-100k"));
        return HasFiles(candidate)
            ? (candidate, "")
            : (null, $"ML-100K not found at {candidate}; set {MovieLens100KVariable} to a directory with {string.Join(" and ", MovieLens100KFiles)} to run this test");
    }

    private static bool HasFiles(string directory) =>
        MovieLens100KFiles.All(f => File.Exists(Path.Combine(directory, f)));
}
