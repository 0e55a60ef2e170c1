using System.Text;
using AttrCloak.Streaming.Contracts.Tests.Support;

namespace AttrCloak.Streaming.Contracts.Tests;

/// <summary>Decoder rules that the corpus alone does not pin down.</summary>
public sealed class DecoderDetailTests
{
    private static readonly ContractLimits Limits = new(4);

    private static DecodeResult Decode(string json, string? contentType = null) =>
        EventCodec.TryDecode(Encoding.UTF8.GetBytes(json), contentType, Limits, ContractSamples.Catalog);

    private static string Event(string member, string value) =>
        EventCodecTestText.Replace($"\"{member}\":{Original(member)}", $"\"{member}\":{value}");

    private const string EventCodecTestText =
        """{"schema":"attrcloak.embedding_update.v1","event_id":"e-1","user_id":"user-42","version":7,"event_time":"2025-01-31T12:00:00Z","payload":{"model_version":"mf-1","embedding":[0.1,-0.2,0.3,0.4]}}""";

    private static string Original(string member) => member switch
    {
        "event_time" => "\"2025-01-31T12:00:00Z\"",
        "user_id" => "\"user-42\"",
        "version" => "7",
        "embedding" => "[0.1,-0.2,0.3,0.4]",
        _ => throw new ArgumentOutOfRangeException(nameof(member)),
    };

    [Theory]
    [InlineData("\"2025-01-31t12:00:00z\"")]
    [InlineData("\"2025-01-31T12:00:00.5Z\"")]
    [InlineData("\"2025-01-31T12:00:00.123456789-23:59\"")]
    [InlineData("\"2024-02-29T00:00:00+00:00\"")]
    [InlineData("\"0001-01-01T00:00:00Z\"")]
    [InlineData("\"9999-12-31T23:59:59.9999999Z\"")]
    [InlineData("\"2016-12-31T23:59:60Z\"")]
    public void Rfc3339_variants_are_accepted_by_both(string time)
    {
        var json = Event("event_time", time);
        Decode(json).IsSuccess.ShouldBeTrue(json);
        SchemaValidator.InboundErrors(Encoding.UTF8.GetBytes(json)).ShouldBeNull();
    }

    [Theory]
    [InlineData("\"2025-01-31T12:00:00+24:00\"")]
    [InlineData("\"2025-01-31T12:00Z\"")]
    [InlineData("\"2025-1-31T12:00:00Z\"")]
    [InlineData("\"2025-01-31T12:00:00.Z\"")]
    [InlineData("\"2023-02-29T00:00:00Z\"")]
    [InlineData("\"0001-01-01T00:00:00+01:00\"")]
    [InlineData("\"2025-01-31T12:00:00+0100\"")]
    [InlineData("\" 2025-01-31T12:00:00Z\"")]
    public void Bad_times_are_schema_violations(string time)
    {
        Decode(Event("event_time", time)).Error.ShouldNotBeNull().Reason.ShouldBe(ReasonCode.SchemaViolation);
    }

    [Fact]
    public void User_id_of_128_astral_characters_is_fine_and_129_is_not()
    {
        var ok = string.Concat(Enumerable.Repeat("😀", 128));
        Decode(Event("user_id", $"\"{ok}\"")).IsSuccess.ShouldBeTrue();
        SchemaValidator.InboundErrors(Encoding.UTF8.GetBytes(Event("user_id", $"\"{ok}\""))).ShouldBeNull();
        Decode(Event("user_id", $"\"{ok}😀\"")).Error!.Reason.ShouldBe(ReasonCode.BadUserId);
    }

    [Fact]
    public void A_leap_second_is_the_last_tick_of_its_minute()
    {
        Decode(Event("event_time", "\"2016-12-31T23:59:60Z\"")).Event!.EventTime
            .ShouldBe(new DateTimeOffset(2017, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(-1));
    }

    [Theory]
    [InlineData("0", 0)]
    [InlineData("-0", 0)]
    [InlineData("9223372036854775807", long.MaxValue)]
    [InlineData("1e3", 1000)]
    public void Versions_the_schema_calls_integers_decode(string text, long expected)
    {
        Decode(Event("version", text)).Event.ShouldNotBeNull().Version.ShouldBe(expected);
    }

    [Fact]
    public void Syntax_errors_win_over_earlier_semantic_defects()
    {
        var json = Event("user_id", "\"\"")[..^2] + ",}}";
        Decode(json).Error!.Reason.ShouldBe(ReasonCode.MalformedJson);
    }

    [Fact]
    public void The_first_defect_in_document_order_is_reported()
    {
        var json = Event("user_id", "\"\"").Replace("\"version\":7", "\"version\":-7");
        Decode(json).Error!.Reason.ShouldBe(ReasonCode.BadUserId);
    }

    [Fact]
    public void Unsupported_content_type_and_binary_privacy_requests_are_rejected()
    {
        Decode(EventCodecTestText, "text/plain").Error!.Reason.ShouldBe(ReasonCode.UnsupportedContentType);
        Decode(EventCodecTestText, "application/avro").Error!.Reason.ShouldBe(ReasonCode.UnsupportedContentType);
        var request = EventCodec.Encode(ContractSamples.Request(PrivacyRequestType.Forget));
        EventCodec.TryDecode(request, ContentTypes.EmbeddingBinary, Limits).Error!.Reason.ShouldBe(ReasonCode.MalformedBinary);
    }

    [Fact]
    public void Oversized_is_decided_before_reading()
    {
        var limits = new ContractLimits(4, maxBytes: 100);
        var bytes = new byte[101];
        EventCodec.TryDecode(bytes, "text/plain", limits).Error!.Reason.ShouldBe(ReasonCode.Oversized);
        EventCodec.TryDecode([], "text/plain", limits).Error!.Reason.ShouldBe(ReasonCode.Empty);
    }

    [Fact]
    public void Limits_are_validated()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => new ContractLimits(0));
        Should.Throw<ArgumentOutOfRangeException>(() => new ContractLimits(4097));
        Should.Throw<ArgumentOutOfRangeException>(() => new ContractLimits(4, maxBytes: 10));
        new ContractLimits(64).MaxBytes.ShouldBe(64 * 1024);
    }

    [Fact]
    public void Wrong_dimension_does_not_allocate_more_than_the_dimension()
    {
        var many = "[" + string.Join(",", Enumerable.Repeat("0.5", 2000)) + "]";
        var error = Decode(Event("embedding", many)).Error!;
        error.Reason.ShouldBe(ReasonCode.WrongDimension);
        error.Message.ShouldContain("more than 4");
    }
}
