using System.Text;
using AttrCloak.Streaming.Contracts;
using Types = AttrCloak.Streaming.Monitoring.WorkerMetrics.EventTypes;
using Outcomes = AttrCloak.Streaming.Monitoring.WorkerMetrics.Outcomes;

namespace AttrCloak.Streaming.Tests.Pipeline;

/// <summary>
/// Found by the kill -9 test (AttrCloak.Cli.Tests, Streaming/Reliability): after a crash, the privacy requests a
/// forgotten user sent BEFORE their forget are redelivered. They used to be dead-lettered as unknown_user, which put
/// the forgotten user's id and request back on the dead-letter topic. They are stale (the tombstone says so) and must
/// change nothing, while a request newer than the forget still fails closed as unknown_user.
/// </summary>
public sealed class RedeliveryAfterForgetTests(RedisServerFixture redis, MockKafkaFixture kafka) : IClassFixture<MockKafkaFixture>
{
    [Fact]
    public void Privacy_requests_older_than_the_forget_are_stale_not_dead_lettered_and_newer_ones_still_fail_closed()
    {
        using var h = new GuardHarness(redis, kafka, "redeliver-forget");
        const string user = "forgotten-8c1d";
        var optOut = GuardHarness.Request(user, 2, PrivacyRequestType.OptOut);
        var update = GuardHarness.Request(user, 3, PrivacyRequestType.UpdateAttributes, new() { ["gender"] = "M" });
        h.Produce(GuardHarness.Update(user, 1, GuardHarness.Embedding(1), new() { ["gender"] = "F" }));
        h.Flush();
        using var worker = h.Start();
        using var serving = h.Reader(h.Kafka.CloakedTopic);
        using var deadLetters = h.Reader(h.Kafka.DeadLetterTopic);
        // The requests go to the other topic: only once the update is in do they find the user.
        serving.WaitUntil(m => m.Count == 1, "the user served");
        h.Produce(optOut);
        h.Produce(update);
        h.Produce(GuardHarness.Request(user, 4, PrivacyRequestType.Forget));
        h.Flush();
        Wait.Until(() => worker.Pipeline.ProcessedEvents == 4, GuardHarness.Deadline, "the first four events handled");
        var tombstone = serving.WaitUntil(m => m.Any(r => r.Message.Value is null), "the tombstone").Count;

        // What a redelivery after a crash brings back: the same two requests; then one newer than the forget.
        h.Produce(optOut);
        h.Produce(update);
        h.Produce(GuardHarness.Request(user, 5, PrivacyRequestType.OptOut));
        h.Flush();
        Wait.Until(() => worker.Pipeline.ProcessedEvents == 7, GuardHarness.Deadline, "the redelivered and the newer requests handled");

        worker.Events(Types.OptOut, Outcomes.Stale).ShouldBe(1);
        worker.Events(Types.UpdateAttributes, Outcomes.Stale).ShouldBe(1);
        worker.Events(Types.OptOut, Outcomes.DeadLettered).ShouldBe(1);
        worker.DeadLetters(ReasonCode.UnknownUser).ShouldBe(1);
        var letters = deadLetters.WaitUntil(m => m.Count >= 1, "the newer request's dead letter");
        letters.Count.ShouldBe(1);
        var version = EventCodec.TryDecode(letters[0].Message.Value, ContentTypes.Json, new ContractLimits(GuardHarness.D)).Event!.Version;
        version.ShouldBe(5, "only the request newer than the forget is dead-lettered");
        Encoding.UTF8.GetString(letters[0].Message.Headers.GetLastBytes(KafkaHeaders.DeadLetterReason)).ShouldBe(ReasonCode.UnknownUser.Label());
        serving.Snapshot().Count.ShouldBe(tombstone, "nothing is served for the forgotten user after the tombstone");
        worker.Stop();
    }
}
