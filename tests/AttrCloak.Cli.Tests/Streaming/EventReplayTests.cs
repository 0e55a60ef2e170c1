using AttrCloak.Streaming.Contracts;
using AttrCloak.Tools.Replay;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>The event generation behind `replay` (and the demo): order, versions and requests, without Kafka.</summary>
public sealed class EventReplayTests
{
    private static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> Classes =
        new Dictionary<string, IReadOnlyList<string>> { ["gender"] = ["F", "M"], ["age"] = ["young", "old"] };

    private static ReplayUser[] Users(int n) => Enumerable.Range(0, n)
        .Select(u => new ReplayUser($"user-{u}", [u, -u, 0.5f], new Dictionary<string, string> { ["gender"] = u % 2 == 0 ? "F" : "M" }))
        .ToArray();

    private static ReplayOptions Options(int seed) => new()
    {
        Passes = 3,
        Shuffle = true,
        Seed = seed,
        ForgetFraction = 0.3,
        OptOutFraction = 0.3,
        UpdateAttributesFraction = 0.3,
        AttributeClasses = Classes,
        RunId = "run",
        Clock = () => DateTimeOffset.UnixEpoch,
    };

    [Fact]
    public void Same_seed_gives_the_same_events_and_another_seed_another_order()
    {
        static string[] Trace(int seed) => EventReplay.Generate(Users(40), Options(seed)).Select(m => $"{m.Kind}:{m.Event.UserId}:{m.Event.Version}").ToArray();
        Trace(5).ShouldBe(Trace(5));
        Trace(6).ShouldNotBe(Trace(5));
    }

    [Fact]
    public void Versions_increase_per_user_requests_follow_their_update_and_forget_ends_a_users_pass()
    {
        var messages = EventReplay.Generate(Users(40), Options(7)).ToList();
        messages.Count(m => m.Kind == ReplayEventKind.EmbeddingUpdate).ShouldBe(120);
        foreach (var kind in new[] { ReplayEventKind.Forget, ReplayEventKind.OptOut, ReplayEventKind.UpdateAttributes })
            messages.Count(m => m.Kind == kind).ShouldBeInRange(15, 60); // 120 draws at 0.3
        var last = new Dictionary<string, (long Version, ReplayEventKind Kind)>();
        foreach (var m in messages)
        {
            if (last.TryGetValue(m.Event.UserId, out var previous))
            {
                m.Event.Version.ShouldBe(previous.Version + 1); // strictly increasing, no gaps within a user
                if (previous.Kind == ReplayEventKind.Forget) m.Kind.ShouldBe(ReplayEventKind.EmbeddingUpdate); // re-registered by a later pass
            }
            else
            {
                m.Kind.ShouldBe(ReplayEventKind.EmbeddingUpdate);
                m.Event.Version.ShouldBe(1);
            }
            last[m.Event.UserId] = (m.Event.Version, m.Kind);
            if (m.IsPrivacyRequest) m.ContentType.ShouldBe(ContentTypes.Json);
        }
    }

    [Fact]
    public void An_attribute_update_is_carried_by_the_users_later_updates()
    {
        var messages = EventReplay.Generate(Users(40), Options(11)).ToList();
        var checkedOne = false;
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Event is not PrivacyRequest { Type: PrivacyRequestType.UpdateAttributes } request) continue;
            var (attribute, value) = request.Attributes!.Single();
            var next = messages.Skip(i + 1).Select(m => m.Event).OfType<EmbeddingUpdate>().FirstOrDefault(u => u.UserId == request.UserId);
            if (next is null) continue;
            var later = messages.Skip(i + 1).TakeWhile(m => m.Event != next).Select(m => m.Event).OfType<PrivacyRequest>()
                .Any(r => r.UserId == request.UserId && r.Type == PrivacyRequestType.UpdateAttributes && r.Attributes!.ContainsKey(attribute));
            if (later) continue;
            next.Attributes![attribute].ShouldBe(value);
            checkedOne = true;
        }
        checkedOne.ShouldBeTrue();
    }

    [Fact]
    public void Binary_updates_decode_to_the_same_event()
    {
        var limits = new ContractLimits(3);
        foreach (var m in EventReplay.Generate(Users(5), new ReplayOptions { Binary = true, RunId = "b" }))
        {
            m.ContentType.ShouldBe(ContentTypes.EmbeddingBinary);
            var decoded = (EmbeddingUpdate)EventCodec.TryDecode(m.Value, m.ContentType, limits).Event!;
            var original = (EmbeddingUpdate)m.Event;
            decoded.Embedding.ShouldBe(original.Embedding);
            decoded.Attributes!["gender"].ShouldBe(original.Attributes!["gender"]);
        }
    }

    [Fact]
    public void Bad_user_ids_and_fractions_are_refused_before_anything_is_generated()
    {
        Should.Throw<ArgumentException>(() => EventReplay.Generate([new ReplayUser("bad\nid", [1f], null)], new ReplayOptions()));
        Should.Throw<ArgumentException>(() => EventReplay.Generate(Users(2), new ReplayOptions { UpdateAttributesFraction = 0.5 }));
        Should.Throw<ArgumentException>(() => EventReplay.Generate(Users(2), new ReplayOptions { ForgetFraction = 2 }));
    }
}
