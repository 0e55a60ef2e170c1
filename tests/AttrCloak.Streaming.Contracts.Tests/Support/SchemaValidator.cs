using System.Text;
using System.Text.Json;
using Json.Schema;

namespace AttrCloak.Streaming.Contracts.Tests.Support;

/// <summary>The schemas/v1 files, evaluated with JsonSchema.Net 8 (format assertions on).</summary>
internal static class SchemaValidator
{
    private static readonly Lock Gate = new();

    private static readonly EvaluationOptions Options = new()
    {
        RequireFormatValidation = true,
        OutputFormat = OutputFormat.List,
    };

    private static readonly Lazy<Dictionary<string, JsonSchema>> Schemas = new(() =>
    {
        var build = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
        var result = new Dictionary<string, JsonSchema>(StringComparer.Ordinal);
        // The envelope first: the others $ref its definitions.
        foreach (var file in new[] { "envelope", "embedding_update", "privacy_request", "cloaked_embedding", "dead_letter" })
            result[file] = JsonSchema.FromFile(Path.Combine(ContractFiles.SchemaDirectory, file + ".schema.json"), build);
        return result;
    });

    public const string Envelope = "envelope";
    public const string EmbeddingUpdate = "embedding_update";
    public const string PrivacyRequest = "privacy_request";
    public const string CloakedEmbedding = "cloaked_embedding";
    public const string DeadLetter = "dead_letter";

    /// <summary>Null when <paramref name="json"/> is valid against the schema file; otherwise why not.</summary>
    public static string? Errors(string schema, ReadOnlySpan<byte> json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: the duplicate-name check cannot unescape a lone surrogate in a name.
            return $"not JSON: {e.Message}";
        }
        using (document)
        {
            try
            {
                EvaluationResults results;
                lock (Gate)
                    results = Schemas.Value[schema].Evaluate(document.RootElement, Options);
                if (results.IsValid)
                    return null;
                var sb = new StringBuilder();
                foreach (var detail in results.Details ?? [])
                {
                    foreach (var (keyword, message) in detail.Errors ?? new Dictionary<string, string>())
                        sb.Append($"{detail.InstanceLocation} {keyword}: {message}; ");
                }
                return sb.Length > 0 ? sb.ToString() : "invalid";
            }
            catch (InvalidOperationException e)
            {
                // JsonSchema.Net cannot read a string holding a lone surrogate: the instance is not valid text.
                return $"unreadable string: {e.Message}";
            }
        }
    }

    /// <summary>Valid against the embedding-update or the privacy-request schema (what an inbound topic accepts).</summary>
    public static string? InboundErrors(ReadOnlySpan<byte> json)
    {
        var update = Errors(EmbeddingUpdate, json);
        if (update is null)
            return null;
        var request = Errors(PrivacyRequest, json);
        return request is null ? null : $"embedding_update: {update} | privacy_request: {request}";
    }
}
