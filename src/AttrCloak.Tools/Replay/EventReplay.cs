using AttrCloak.Streaming.Contracts;

namespace AttrCloak.Tools.Replay;

/// <summary>One user to replay: the id (also the Kafka key), the original embedding and the attribute values known for them.</summary>
/// <param name="UserId">1-128 characters, no control characters.</param>
/// <param name="Embedding">The user's (original, uncloaked) embedding; the worker cloaks it.</param>
/// <param name="Attributes">Attribute name -> class name for the attributes known for this user, or null when none are.</param>
public sealed record ReplayUser(string UserId, float[] Embedding, IReadOnlyDictionary<string, string>? Attributes);

/// <summary>How <see cref="EventReplay"/> turns users into events.</summary>
public sealed record ReplayOptions
{
    /// <summary>Passes over the users; each pass gives every user a higher version (the worker treats it as a new embedding).</summary>
    public int Passes { get; init; } = 1;

    /// <summary>Random user order in each pass (seeded by <see cref="Seed"/> and the pass); otherwise the given order.</summary>
    public bool Shuffle { get; init; }

    /// <summary>Seed of the order and of the privacy requests drawn.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Version of every user's first event; each further event of that user gets the next one.</summary>
    public long FirstVersion { get; init; } = 1;

    /// <summary>The <c>model_version</c> of the updates.</summary>
    public string ModelVersion { get; init; } = "replay";

    /// <summary>Encode updates with the compact binary encoding instead of JSON (privacy requests are always JSON).</summary>
    public bool Binary { get; init; }

    /// <summary>Attach each user's known attribute values to their updates.</summary>
    public bool WithAttributes { get; init; } = true;

    /// <summary>Chance, per user and pass, of a <c>forget</c> after the update (the user's last event of the pass).</summary>
    public double ForgetFraction { get; init; }

    /// <summary>Chance, per user and pass, of an <c>opt_out</c> after the update.</summary>
    public double OptOutFraction { get; init; }

    /// <summary>Chance, per user and pass, of an <c>update_attributes</c> moving one attribute to another class.</summary>
    public double UpdateAttributesFraction { get; init; }

    /// <summary>Attribute -> classes that <c>update_attributes</c> requests may pick from (required when that fraction is above 0).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>>? AttributeClasses { get; init; }

    /// <summary>Makes event ids unique across runs: <c>{RunId}-{sequence}</c>.</summary>
    public string RunId { get; init; } = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();

    /// <summary>Event time of the generated events (default: now, when the event is generated).</summary>
    public Func<DateTimeOffset> Clock { get; init; } = () => DateTimeOffset.UtcNow;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad value.</summary>
    public void Validate()
    {
        if (Passes < 1) throw new ArgumentException($"Passes must be at least 1, got {Passes}");
        if (FirstVersion < 0) throw new ArgumentException($"FirstVersion must be >= 0, got {FirstVersion}");
        foreach (var (name, f) in new[] { ("ForgetFraction", ForgetFraction), ("OptOutFraction", OptOutFraction), ("UpdateAttributesFraction", UpdateAttributesFraction) })
            if (!(f is >= 0 and <= 1)) throw new ArgumentException($"{name} must be in 0..1, got {f}");
        if (UpdateAttributesFraction > 0 && (AttributeClasses is null || !AttributeClasses.Any(p => p.Value.Count >= 2)))
            throw new ArgumentException("update_attributes requests need AttributeClasses with at least one attribute of two or more classes");
        if (string.IsNullOrWhiteSpace(RunId)) throw new ArgumentException("RunId must not be empty");
    }
}

/// <summary>Which inbound event a <see cref="ReplayMessage"/> is.</summary>
public enum ReplayEventKind
{
    EmbeddingUpdate,
    OptOut,
    Forget,
    UpdateAttributes,
}

/// <summary>One encoded event, ready to produce: updates go to the embeddings topic, the rest to the privacy-requests topic.</summary>
/// <param name="Kind">What it is.</param>
/// <param name="Event">The decoded event (for summaries and tests).</param>
/// <param name="Key">The Kafka key: the user id in UTF-8.</param>
/// <param name="Value">The encoded event.</param>
/// <param name="ContentType">Value of the content-type header.</param>
public sealed record ReplayMessage(ReplayEventKind Kind, InboundEvent Event, byte[] Key, byte[] Value, string ContentType)
{
    public bool IsPrivacyRequest => Kind != ReplayEventKind.EmbeddingUpdate;
}

/// <summary>
/// Turns a population into the inbound events of the streaming guard, lazily (a million events never sit in memory):
/// per pass, every user's <see cref="EmbeddingUpdate"/> (in the given or a shuffled order), each optionally followed by
/// privacy requests of the same user with higher versions (update_attributes, then opt_out, then forget). Per user,
/// versions strictly increase across all their events, so a forgotten user is re-registered by their next pass's update.
/// Deterministic for a given seed (apart from the event times and the run id). Used by `attrcloak replay`, the demo and
/// the benchmarks.
/// </summary>
public static class EventReplay
{
    /// <summary>The number of embedding updates <see cref="Generate"/> yields (privacy requests come on top, drawn at random).</summary>
    public static long UpdateCount(int users, ReplayOptions options) => (long)users * options.Passes;

    public static IEnumerable<ReplayMessage> Generate(IReadOnlyList<ReplayUser> users, ReplayOptions options)
    {
        ArgumentNullException.ThrowIfNull(users);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var keys = new byte[users.Count][];
        for (var u = 0; u < users.Count; u++)
        {
            ArgumentNullException.ThrowIfNull(users[u]);
            keys[u] = EventCodec.KeyOf(users[u].UserId); // checks the id up front, before anything is produced
        }
        return Iterate(users, keys, options);
    }

    private static IEnumerable<ReplayMessage> Iterate(IReadOnlyList<ReplayUser> users, byte[][] keys, ReplayOptions options)
    {
        var versions = new long[users.Count];
        Array.Fill(versions, options.FirstVersion);
        // Current attribute values per user: update_attributes changes them, later updates carry the new values.
        var current = new Dictionary<string, string>?[users.Count];
        for (var u = 0; u < users.Count; u++)
            current[u] = users[u].Attributes is { } a ? new Dictionary<string, string>(a, StringComparer.Ordinal) : null;
        var changeable = options.AttributeClasses?.Where(p => p.Value.Count >= 2).ToArray() ?? [];
        var requests = new Random(options.Seed);
        long sequence = 0;
        var contentType = options.Binary ? ContentTypes.EmbeddingBinary : ContentTypes.Json;

        for (var pass = 0; pass < options.Passes; pass++)
        {
            var order = Enumerable.Range(0, users.Count).ToArray();
            if (options.Shuffle) new Random(unchecked(options.Seed * 1_000_003 + pass)).Shuffle(order); // not HashCode: it is randomised per process
            foreach (var u in order)
            {
                var user = users[u];
                var update = new EmbeddingUpdate(NextId(), user.UserId, versions[u]++, options.Clock(), options.ModelVersion, user.Embedding,
                    options.WithAttributes && current[u] is { Count: > 0 } known ? new Dictionary<string, string>(known, StringComparer.Ordinal) : null);
                yield return new ReplayMessage(ReplayEventKind.EmbeddingUpdate, update, keys[u], EventCodec.Encode(update, options.Binary), contentType);

                if (options.UpdateAttributesFraction > 0 && requests.NextDouble() < options.UpdateAttributesFraction)
                {
                    var (attribute, classes) = changeable[requests.Next(changeable.Length)];
                    var now = current[u] is { } c && c.TryGetValue(attribute, out var v) ? v : null;
                    var choices = classes.Where(k => k != now).ToArray();
                    var chosen = choices[requests.Next(choices.Length)];
                    (current[u] ??= new Dictionary<string, string>(StringComparer.Ordinal))[attribute] = chosen;
                    var request = new PrivacyRequest(NextId(), user.UserId, versions[u]++, options.Clock(), PrivacyRequestType.UpdateAttributes,
                        new Dictionary<string, string?>(StringComparer.Ordinal) { [attribute] = chosen });
                    yield return Request(ReplayEventKind.UpdateAttributes, request, keys[u]);
                }
                if (options.OptOutFraction > 0 && requests.NextDouble() < options.OptOutFraction)
                {
                    var request = new PrivacyRequest(NextId(), user.UserId, versions[u]++, options.Clock(), PrivacyRequestType.OptOut, null);
                    yield return Request(ReplayEventKind.OptOut, request, keys[u]);
                }
                if (options.ForgetFraction > 0 && requests.NextDouble() < options.ForgetFraction)
                {
                    var request = new PrivacyRequest(NextId(), user.UserId, versions[u]++, options.Clock(), PrivacyRequestType.Forget, null);
                    yield return Request(ReplayEventKind.Forget, request, keys[u]);
                }
            }
        }

        string NextId() => $"{options.RunId}-{sequence++}";
    }

    private static ReplayMessage Request(ReplayEventKind kind, PrivacyRequest request, byte[] key) =>
        new(kind, request, key, EventCodec.Encode(request), ContentTypes.Json);
}
