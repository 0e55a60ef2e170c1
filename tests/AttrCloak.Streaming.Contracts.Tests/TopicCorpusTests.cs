using AttrCloak.Streaming.Contracts.Tests.Support;

namespace AttrCloak.Streaming.Contracts.Tests;

/// <summary>
/// Corpus/topics: valid events sent to the other input topic (the file name starts with the topic they are sent to)
/// are <see cref="ReasonCode.WrongTopic"/> there and fine on their own topic; every valid event is fine on its own one.
/// </summary>
public sealed class TopicCorpusTests
{
    public static TheoryData<string> Items() => [.. Files().Select(f => Path.GetFileName(f))];

    private static string[] Files() =>
        Directory.GetFiles(Path.Combine(ContractFiles.CorpusDirectory, "topics")).Order(StringComparer.Ordinal).ToArray();

    private static InboundEvent Decode(string fileName)
    {
        var (limits, catalog) = ContractFiles.CorpusSettings();
        var bytes = File.ReadAllBytes(Path.Combine(ContractFiles.CorpusDirectory, "topics", fileName));
        var result = EventCodec.TryDecode(bytes, fileName.EndsWith(".bin", StringComparison.Ordinal) ? ContentTypes.EmbeddingBinary : null, limits, catalog);
        result.IsSuccess.ShouldBeTrue($"{fileName} must be a valid event: {result.Error}");
        return result.Event;
    }

    [Fact]
    public void Both_topics_and_both_event_kinds_are_covered()
    {
        var names = Files().Select(Path.GetFileName).ToList();
        names.ShouldContain(n => n!.StartsWith("embeddings.", StringComparison.Ordinal));
        names.ShouldContain(n => n!.StartsWith("privacy-requests.", StringComparison.Ordinal));
        names.ShouldContain(n => n!.EndsWith(".bin", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Items))]
    public void A_valid_event_on_the_other_input_topic_is_wrong_topic_and_fine_on_its_own(string fileName)
    {
        var inbound = Decode(fileName);
        var sentTo = fileName.StartsWith("embeddings.", StringComparison.Ordinal) ? InputStream.Embeddings : InputStream.PrivacyRequests;
        var own = sentTo == InputStream.Embeddings ? InputStream.PrivacyRequests : InputStream.Embeddings;

        var error = EventCodec.TopicError(inbound, sentTo).ShouldNotBeNull($"{fileName} was accepted on {sentTo}");
        error.Reason.ShouldBe(ReasonCode.WrongTopic);
        error.Message.ShouldNotContain(inbound.UserId);
        EventCodec.TopicError(inbound, own).ShouldBeNull();
    }

    [Fact]
    public void Every_valid_corpus_event_is_accepted_on_its_own_topic()
    {
        var (limits, catalog) = ContractFiles.CorpusSettings();
        foreach (var (name, bytes) in ContractFiles.Valid())
        {
            var inbound = EventCodec.TryDecode(bytes, null, limits, catalog).Event.ShouldNotBeNull(name);
            var own = inbound is EmbeddingUpdate ? InputStream.Embeddings : InputStream.PrivacyRequests;
            EventCodec.TopicError(inbound, own).ShouldBeNull(name);
        }
    }
}
