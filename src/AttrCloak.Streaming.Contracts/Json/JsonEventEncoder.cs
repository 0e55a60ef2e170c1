using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace AttrCloak.Streaming.Contracts.Json;

/// <summary>
/// Writes the v1 JSON messages. <c>schema</c> always comes first, which lets the decoder read the payload in
/// the same pass. One writer and buffer per thread, reset per message; the result is a fresh array.
/// </summary>
internal static class JsonEventEncoder
{
    // Relaxed escaping: '+' in offsets and non-ASCII names stay readable; control characters are still escaped.
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    [ThreadStatic] private static ArrayBufferWriter<byte>? buffer;
    [ThreadStatic] private static Utf8JsonWriter? writer;

    private static Utf8JsonWriter Start()
    {
        buffer ??= new ArrayBufferWriter<byte>(2048);
        buffer.ResetWrittenCount();
        if (writer is null)
            writer = new Utf8JsonWriter(buffer, WriterOptions);
        else
            writer.Reset(buffer);
        return writer;
    }

    private static byte[] Finish(Utf8JsonWriter w)
    {
        w.Flush();
        return buffer!.WrittenSpan.ToArray();
    }

    public static byte[] Encode(InboundEvent e)
    {
        var w = Start();
        w.WriteStartObject();
        w.WriteString("schema"u8, e.SchemaName);
        w.WriteString("event_id"u8, e.EventId);
        w.WriteString("user_id"u8, e.UserId);
        w.WriteNumber("version"u8, e.Version);
        WriteTimestamp(w, "event_time"u8, e.EventTime);
        w.WriteStartObject("payload"u8);
        switch (e)
        {
            case EmbeddingUpdate u:
                w.WriteString("model_version"u8, u.ModelVersion);
                WriteEmbedding(w, u.Embedding);
                if (u.Attributes is not null)
                {
                    w.WriteStartObject("attributes"u8);
                    foreach (var (name, value) in u.Attributes)
                        w.WriteString(name, value);
                    w.WriteEndObject();
                }
                break;
            case PrivacyRequest r:
                w.WriteString("type"u8, WireName(r.Type));
                if (r.Attributes is not null)
                {
                    w.WriteStartObject("attributes"u8);
                    foreach (var (name, value) in r.Attributes)
                    {
                        if (value is null)
                            w.WriteNull(name);
                        else
                            w.WriteString(name, value);
                    }
                    w.WriteEndObject();
                }
                break;
        }
        w.WriteEndObject();
        w.WriteEndObject();
        return Finish(w);
    }

    public static byte[] Encode(CloakedEmbedding c)
    {
        var w = Start();
        w.WriteStartObject();
        w.WriteString("schema"u8, CloakedEmbedding.SchemaName);
        w.WriteString("user_id"u8, c.UserId);
        w.WriteNumber("version"u8, c.Version);
        w.WriteString("model_version"u8, c.ModelVersion);
        WriteEmbedding(w, c.Embedding);
        w.WriteStartArray("protected_attributes"u8);
        foreach (var name in c.ProtectedAttributes)
            w.WriteStringValue(name);
        w.WriteEndArray();
        WriteTimestamp(w, "cloaked_at"u8, c.CloakedAt);
        w.WriteEndObject();
        return Finish(w);
    }

    public static byte[] Encode(DeadLetter d)
    {
        var w = Start();
        w.WriteStartObject();
        w.WriteString("schema"u8, DeadLetter.SchemaName);
        w.WriteString("reason"u8, d.Reason.Label());
        w.WriteString("message"u8, d.Message);
        w.WriteString("source_topic"u8, d.SourceTopic);
        w.WriteNumber("source_partition"u8, d.SourcePartition);
        w.WriteNumber("source_offset"u8, d.SourceOffset);
        w.WriteNumber("original_size_bytes"u8, d.OriginalSizeBytes);
        WriteTimestamp(w, "dead_lettered_at"u8, d.DeadLetteredAt);
        w.WriteEndObject();
        return Finish(w);
    }

    public static string WireName(PrivacyRequestType type) => type switch
    {
        PrivacyRequestType.OptOut => "opt_out",
        PrivacyRequestType.Forget => "forget",
        PrivacyRequestType.UpdateAttributes => "update_attributes",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    private static void WriteEmbedding(Utf8JsonWriter w, float[] embedding)
    {
        w.WriteStartArray("embedding"u8);
        // float overload: the shortest text that reads back to the same float32.
        foreach (var v in embedding)
            w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    private static void WriteTimestamp(Utf8JsonWriter w, ReadOnlySpan<byte> name, DateTimeOffset value)
    {
        Span<char> text = stackalloc char[40];
        var n = ContractValidation.FormatTimestamp(value, text);
        w.WriteString(name, text[..n]);
    }
}
