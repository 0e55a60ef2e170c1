using System.Text.Json;

namespace AttrCloak.Streaming.Contracts.Tests.Support;

/// <summary>The schema files (from the repository) and the event corpus (copied beside the test binary).</summary>
internal static class ContractFiles
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AttrCloak.Streaming.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"No AttrCloak.Streaming.sln above {AppContext.BaseDirectory}.");
    });

    public static string RepositoryRoot => Root.Value;

    public static string SchemaDirectory => Path.Combine(RepositoryRoot, "schemas", "v1");

    public static string CorpusDirectory => Path.Combine(AppContext.BaseDirectory, "Corpus");

    /// <summary>Limits and catalog the corpus was written for (Corpus/corpus.json).</summary>
    public static (ContractLimits Limits, AttributeCatalog Catalog) CorpusSettings()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(CorpusDirectory, "corpus.json")));
        var root = doc.RootElement;
        var limits = new ContractLimits(root.GetProperty("dimension").GetInt32(), root.GetProperty("max_bytes").GetInt32());
        var catalog = new AttributeCatalog(root.GetProperty("catalog").EnumerateObject()
            .Select(p => KeyValuePair.Create(p.Name, p.Value.EnumerateArray().Select(c => c.GetString()!).ToArray())));
        return (limits, catalog);
    }

    public sealed record CorpusItem(string FileName, ReasonCode Expected, string? ContentType, byte[] Bytes)
    {
        public override string ToString() => FileName;
    }

    /// <summary>
    /// Corpus/malformed: the file name's first part is the expected <see cref="ReasonCode"/>; the extension
    /// says how it is sent: .json without a content-type (as plain kcat), .bin as the binary encoding,
    /// .txt as text/plain.
    /// </summary>
    public static IReadOnlyList<CorpusItem> Malformed() =>
        Directory.GetFiles(Path.Combine(CorpusDirectory, "malformed"))
            .Order(StringComparer.Ordinal)
            .Select(path =>
            {
                var name = Path.GetFileName(path);
                var reason = Enum.Parse<ReasonCode>(name[..name.IndexOf('.')]);
                var contentType = Path.GetExtension(path) switch
                {
                    ".json" => null,
                    ".bin" => ContentTypes.EmbeddingBinary,
                    ".txt" => "text/plain",
                    var other => throw new InvalidOperationException($"unexpected corpus file type {other}"),
                };
                return new CorpusItem(name, reason, contentType, File.ReadAllBytes(path));
            })
            .ToList();

    public static IReadOnlyList<(string Name, byte[] Bytes)> Valid() =>
        Directory.GetFiles(Path.Combine(CorpusDirectory, "valid"), "*.json")
            .Order(StringComparer.Ordinal)
            .Select(path => (Path.GetFileName(path), File.ReadAllBytes(path)))
            .ToList();
}
