using System.Text;
using System.Text.Json;
using Json.Schema;

namespace AttrCloak.Streaming.Tests.Pipeline;

/// <summary>The repository's schemas/v1 files, evaluated with JsonSchema.Net (format assertions on), as in the contracts tests.</summary>
internal static class ServingSchemas
{
    public const string CloakedEmbedding = "cloaked_embedding";
    public const string DeadLetter = "dead_letter";

    private static readonly Lock Gate = new();
    private static readonly EvaluationOptions Options = new() { RequireFormatValidation = true, OutputFormat = OutputFormat.List };

    private static readonly Lazy<Dictionary<string, JsonSchema>> Schemas = new(() =>
    {
        var directory = SchemaDirectory();
        var build = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
        var result = new Dictionary<string, JsonSchema>(StringComparer.Ordinal);
        // The envelope first: the others $ref its definitions.
        foreach (var file in new[] { "envelope", "embedding_update", "privacy_request", CloakedEmbedding, DeadLetter })
            result[file] = JsonSchema.FromFile(Path.Combine(directory, file + ".schema.json"), build);
        return result;
    });

    /// <summary>Null when <paramref name="json"/> is valid against the schema; otherwise why not.</summary>
    public static string? Errors(string schema, byte[] json)
    {
        using var document = JsonDocument.Parse(json);
        EvaluationResults results;
        lock (Gate) results = Schemas.Value[schema].Evaluate(document.RootElement, Options);
        if (results.IsValid) return null;
        var sb = new StringBuilder();
        foreach (var detail in results.Details ?? [])
            foreach (var (keyword, message) in detail.Errors ?? new Dictionary<string, string>())
                sb.Append($"{detail.InstanceLocation} {keyword}: {message}; ");
        return sb.Length > 0 ? sb.ToString() : "invalid";
    }

    private static string SchemaDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AttrCloak.Streaming.sln")))
                return Path.Combine(dir.FullName, "schemas", "v1");
        throw new InvalidOperationException($"No AttrCloak.Streaming.sln above {AppContext.BaseDirectory}.");
    }
}
