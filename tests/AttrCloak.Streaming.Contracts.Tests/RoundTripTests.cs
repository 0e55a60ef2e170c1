using System.Text;
using AttrCloak.Streaming.Contracts.Tests.Support;

namespace AttrCloak.Streaming.Contracts.Tests;

public sealed class RoundTripTests
{
    private static readonly ContractLimits Limits = new(64);

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public void Embedding_update_round_trips(bool binary, bool attributes)
    {
        var update = ContractSamples.Update(attributes: attributes);

        var bytes = EventCodec.Encode(update, binary);
        var result = EventCodec.TryDecode(bytes, binary ? ContentTypes.EmbeddingBinary : ContentTypes.Json, Limits, ContractSamples.Catalog);

        result.IsSuccess.ShouldBeTrue(result.ToString());
        var decoded = result.Event.ShouldBeOfType<EmbeddingUpdate>();
        decoded.EventId.ShouldBe(update.EventId);
        decoded.UserId.ShouldBe(update.UserId);
        decoded.Version.ShouldBe(update.Version);
        decoded.EventTime.ShouldBe(update.EventTime);
        decoded.ModelVersion.ShouldBe(update.ModelVersion);
        decoded.Embedding.ShouldBe(update.Embedding); // bit-exact: JSON writes the shortest round-trip text
        if (attributes)
            decoded.Attributes.ShouldBe(update.Attributes, ignoreOrder: true);
        else
            decoded.Attributes.ShouldBeNull();
    }

    [Theory]
    [InlineData(PrivacyRequestType.OptOut)]
    [InlineData(PrivacyRequestType.Forget)]
    [InlineData(PrivacyRequestType.UpdateAttributes)]
    public void Privacy_request_round_trips(PrivacyRequestType type)
    {
        var request = ContractSamples.Request(type);

        var result = EventCodec.TryDecode(EventCodec.Encode(request), null, Limits, ContractSamples.Catalog);

        result.IsSuccess.ShouldBeTrue(result.ToString());
        var decoded = result.Event.ShouldBeOfType<PrivacyRequest>();
        decoded.ShouldBe(request with { Attributes = decoded.Attributes });
        if (type == PrivacyRequestType.UpdateAttributes)
        {
            decoded.Attributes.ShouldNotBeNull();
            decoded.Attributes.ShouldBe(request.Attributes!, ignoreOrder: true);
            decoded.Attributes["age"].ShouldBeNull();
        }
        else
        {
            decoded.Attributes.ShouldBeNull();
        }
    }

    [Fact]
    public void Cloaked_embedding_and_dead_letter_round_trip()
    {
        var cloaked = ContractSamples.Cloaked();
        EventCodec.TryDecodeCloaked(EventCodec.Encode(cloaked), out var c, out var error).ShouldBeTrue(error?.ToString());
        c.UserId.ShouldBe(cloaked.UserId);
        c.Version.ShouldBe(cloaked.Version);
        c.ModelVersion.ShouldBe(cloaked.ModelVersion);
        c.Embedding.ShouldBe(cloaked.Embedding);
        c.ProtectedAttributes.ShouldBe(cloaked.ProtectedAttributes);
        c.CloakedAt.ShouldBe(cloaked.CloakedAt);

        var deadLetter = ContractSamples.DeadLetter();
        EventCodec.TryDecodeDeadLetter(EventCodec.Encode(deadLetter), out var d, out error).ShouldBeTrue(error?.ToString());
        d.ShouldBe(deadLetter);
    }

    [Fact]
    public void Extreme_floats_survive_json_exactly()
    {
        float[] values = [float.MaxValue, float.MinValue, float.Epsilon, -float.Epsilon, 0f, -0f, 1e-38f, 0.1f, 1f / 3, 16777217f];
        var update = ContractSamples.Update(values.Length) with { Embedding = values };

        var result = EventCodec.TryDecode(EventCodec.Encode(update), null, new ContractLimits(values.Length));

        var decoded = result.Event.ShouldBeOfType<EmbeddingUpdate>();
        for (var i = 0; i < values.Length; i++)
            BitConverter.SingleToInt32Bits(decoded.Embedding[i]).ShouldBe(BitConverter.SingleToInt32Bits(values[i]), $"index {i}");
    }

    [Fact]
    public void Binary_keeps_event_time_to_the_microsecond()
    {
        var update = ContractSamples.Update() with { EventTime = ContractSamples.Time.AddTicks(1234567) };

        var decoded = EventCodec.TryDecode(EventCodec.Encode(update, binary: true), ContentTypes.EmbeddingBinary, Limits).Event.ShouldBeOfType<EmbeddingUpdate>();

        decoded.EventTime.ShouldBe(ContractSamples.Time.AddTicks(1234560));
    }

    [Fact]
    public void Json_writes_schema_first_and_utc_times()
    {
        var json = Encoding.UTF8.GetString(EventCodec.Encode(ContractSamples.Update() with { EventTime = new DateTimeOffset(2025, 1, 31, 13, 0, 0, TimeSpan.FromHours(1)) }));

        json.ShouldStartWith("""{"schema":"attrcloak.embedding_update.v1","event_id":""");
        json.ShouldContain("\"event_time\":\"2025-01-31T12:00:00Z\"");
    }

    [Fact]
    public void Payload_before_schema_decodes_the_same()
    {
        const string json = """
            {"payload":{"embedding":[1,2,3,4],"model_version":"m"},"user_id":"u","event_time":"2025-01-31T12:00:00+05:30","version":3,"event_id":"e","schema":"attrcloak.embedding_update.v1"}
            """;

        var decoded = EventCodec.TryDecode(Encoding.UTF8.GetBytes(json), null, new ContractLimits(4)).Event.ShouldBeOfType<EmbeddingUpdate>();

        decoded.Embedding.ShouldBe([1f, 2f, 3f, 4f]);
        decoded.EventTime.ShouldBe(new DateTimeOffset(2025, 1, 31, 6, 30, 0, TimeSpan.Zero));
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("Application/JSON; charset=utf-8")]
    [InlineData("")]
    [InlineData(null)]
    public void Json_content_types_are_accepted(string? contentType)
    {
        EventCodec.TryDecode(EventCodec.Encode(ContractSamples.Update()), contentType, Limits).IsSuccess.ShouldBeTrue();
    }

    [Fact]
    public void A_utf8_bom_is_skipped()
    {
        byte[] bytes = [0xEF, 0xBB, 0xBF, .. EventCodec.Encode(ContractSamples.Update())];

        EventCodec.TryDecode(bytes, null, Limits).IsSuccess.ShouldBeTrue();
    }

    [Fact]
    public void Version_written_as_a_whole_float_is_an_integer_like_json_schema_says()
    {
        var json = Encoding.UTF8.GetString(EventCodec.Encode(ContractSamples.Update())).Replace("\"version\":7", "\"version\":7.0e0");

        EventCodec.TryDecode(Encoding.UTF8.GetBytes(json), null, Limits).Event.ShouldNotBeNull().Version.ShouldBe(7);
        SchemaValidator.Errors(SchemaValidator.EmbeddingUpdate, Encoding.UTF8.GetBytes(json)).ShouldBeNull();
    }

    [Fact]
    public void Key_matches_the_user_id_in_utf8()
    {
        EventCodec.KeyMatches("ユーザー-42"u8, "ユーザー-42").ShouldBeTrue();
        EventCodec.KeyMatches(EventCodec.KeyOf("user-42"), "user-42").ShouldBeTrue();
        EventCodec.KeyMatches("user-43"u8, "user-42").ShouldBeFalse();
        EventCodec.KeyMatches([], "user-42").ShouldBeFalse();
        EventCodec.KeyMatches("user-42 "u8, "user-42").ShouldBeFalse();
    }

    [Fact]
    public void Encoders_refuse_what_the_schemas_forbid()
    {
        Should.Throw<ArgumentException>(() => EventCodec.Encode(ContractSamples.Update() with { Embedding = [1f, float.NaN] }));
        Should.Throw<ArgumentException>(() => EventCodec.Encode(ContractSamples.Update() with { UserId = "" }));
        Should.Throw<ArgumentException>(() => EventCodec.Encode(ContractSamples.Update() with { UserId = "a\nb" }));
        Should.Throw<ArgumentException>(() => EventCodec.Encode(ContractSamples.Update() with { Version = -1 }));
        Should.Throw<ArgumentException>(() => EventCodec.Encode(ContractSamples.Request(PrivacyRequestType.OptOut) with
        {
            Attributes = new Dictionary<string, string?> { ["gender"] = "male" },
        }));
        Should.Throw<ArgumentException>(() => EventCodec.Encode(ContractSamples.Request(PrivacyRequestType.UpdateAttributes) with { Attributes = null }));
        Should.Throw<ArgumentException>(() => EventCodec.Encode(ContractSamples.Cloaked() with { ProtectedAttributes = ["gender", "gender"] }));
        Should.Throw<ArgumentException>(() => EventCodec.Encode(ContractSamples.Cloaked() with { Embedding = [float.PositiveInfinity] }));
        Should.Throw<ArgumentException>(() => EventCodec.Encode(ContractSamples.DeadLetter() with { Message = new string('x', 2000) }));
    }

    [Fact]
    public void Dead_letter_for_cuts_long_messages()
    {
        var deadLetter = DeadLetter.For(new DecodeError(ReasonCode.SchemaViolation, new string('x', 5000)), "t", 0, 0, 5000, ContractSamples.Time);

        deadLetter.Message.Length.ShouldBe(DeadLetter.MaxMessageLength);
        SchemaValidator.Errors(SchemaValidator.DeadLetter, EventCodec.Encode(deadLetter)).ShouldBeNull();
    }
}
