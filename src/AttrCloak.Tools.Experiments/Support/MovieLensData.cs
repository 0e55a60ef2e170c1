namespace AttrCloak.Tools.Experiments.Support;

/// <summary>
/// Finds ML-100K OUTSIDE the repository, by the tests' rule (it is never copied into the repository): where
/// <see cref="Variable"/> points, else <c>../shared/data/ml-100k</c> beside the folder that holds
/// AttrCloak.Streaming.sln (looked for above the binaries, then above the working directory).
/// </summary>
internal static class MovieLensData
{
    public const string Variable = "ATTRCLOAK_ML100K";
    private const string SolutionFileName = "AttrCloak.Streaming.sln";
    private static readonly string[] Files = ["u.data", "u.user"];

    /// <summary>The ML-100K directory.</summary>
    /// <exception cref="ExperimentUnavailableException">It is not there; the message says where it was looked for.</exception>
    public static string Require()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
            return HasFiles(fromEnvironment)
                ? Path.GetFullPath(fromEnvironment)
                : throw new ExperimentUnavailableException($"ML-100K not found: {Variable}={fromEnvironment} does not contain {string.Join(" and ", Files)}");
        var root = FindRepositoryRoot(AppContext.BaseDirectory) ?? FindRepositoryRoot(Environment.CurrentDirectory)
            ?? throw new ExperimentUnavailableException($"ML-100K not found: no {SolutionFileName} above {AppContext.BaseDirectory} or the working directory, and {Variable} is not set");
        var candidate = Path.GetFullPath(Path.Combine(root, "..", "shared", "data", "ml-100k"));
        return HasFiles(candidate)
            ? candidate
            : throw new ExperimentUnavailableException($"ML-100K not found at {candidate}; set {Variable} to a directory with {string.Join(" and ", Files)}");
    }

    private static string? FindRepositoryRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, SolutionFileName))) return dir.FullName;
        return null;
    }

    private static bool HasFiles(string directory) => Files.All(f => File.Exists(Path.Combine(directory, f)));
}
