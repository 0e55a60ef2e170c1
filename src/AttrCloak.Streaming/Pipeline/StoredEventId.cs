using System.Globalization;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// What the worker writes into the state store's event-id field: the event id, plus the two facts the serving output
/// needs that the store has no field for, namely the model version of the stored embedding and the protected-attribute
/// mask of the stored cloak, so that a redelivered event can re-publish the stored state exactly (at-least-once
/// never loses an output). Joined by U+001F (a control character, which neither an event id nor a model version may
/// contain, so parsing is unambiguous): <c>{eventId}\u001F{modelVersion}\u001F{mask hex}</c>.
/// <para>
/// The store's duplicate check compares this whole string: a redelivered embedding update recomputes the same model
/// version, but its mask could differ after a cloaker refresh, so the pipeline recognises a redelivery itself
/// (same version, same <see cref="EventId"/>) and hands the store the stored string back unchanged.
/// </para>
/// An id written by another tool (bootstrap) without the separators parses as that id with an unknown model version
/// and no mask.
/// <para>
/// Optionally a fourth part, the <see cref="Stream"/> the applied event came from (<see cref="EmbeddingStream"/> or
/// <see cref="RequestStream"/>): per-user order holds within one input topic only, so an older version is bad input
/// (stale_version) only when it comes from the same stream as the applied one; across the two topics it can be a race.
/// </para>
/// <para>
/// Optionally a fifth part, the generation's <see cref="SeatEpoch"/> the stored cloak was made with (the maps after
/// that many seatings): a sweep re-cloaks a user whose cloak is older than the generation's last seating.
/// </para>
/// </summary>
internal readonly record struct StoredEventId(string EventId, string ModelVersion, uint ProtectedMask, bool HasMask, char Stream = StoredEventId.UnknownStream,
    int SeatEpoch = 0)
{
    /// <summary>Embedding updates (the embeddings topic).</summary>
    public const char EmbeddingStream = 'e';
    /// <summary>Privacy requests (the privacy-requests topic).</summary>
    public const char RequestStream = 'r';
    /// <summary>Not recorded (an id written before streams were recorded, or by another tool).</summary>
    public const char UnknownStream = '?';

    private const char Separator = '\u001F';

    /// <summary>Model version shown when the stored record does not say (written by a tool that does not record it).</summary>
    public const string UnknownModelVersion = "unknown";

    public static string Compose(string eventId, string modelVersion, uint protectedMask) =>
        string.Concat(eventId, Separator.ToString(), modelVersion, Separator.ToString(), protectedMask.ToString("x", CultureInfo.InvariantCulture));

    /// <summary><see cref="Compose(string, string, uint)"/> with the stream the event came from.</summary>
    public static string Compose(string eventId, string modelVersion, uint protectedMask, char stream) =>
        string.Concat(Compose(eventId, modelVersion, protectedMask), Separator.ToString(), stream.ToString());

    /// <summary><see cref="Compose(string, string, uint, char)"/> with the seat epoch of the maps that made the cloak.</summary>
    public static string Compose(string eventId, string modelVersion, uint protectedMask, char stream, int seatEpoch) =>
        string.Concat(Compose(eventId, modelVersion, protectedMask, stream), Separator.ToString(), seatEpoch.ToString(CultureInfo.InvariantCulture));

    /// <summary>This id again, for a re-cloak: the same event, stream and model, another mask and seat epoch.</summary>
    public string Recompose(uint protectedMask, int seatEpoch) => Compose(EventId, ModelVersion, protectedMask, Stream, seatEpoch);

    public static StoredEventId Parse(string stored)
    {
        ArgumentNullException.ThrowIfNull(stored);
        var first = stored.IndexOf(Separator);
        if (first < 0) return new StoredEventId(stored, UnknownModelVersion, 0, false);
        var second = stored.IndexOf(Separator, first + 1);
        var third = second < 0 ? -1 : stored.IndexOf(Separator, second + 1);
        var maskText = third < 0 ? stored.AsSpan(second + 1) : stored.AsSpan(second + 1, third - second - 1);
        if (second < 0
            || !uint.TryParse(maskText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var mask))
            return new StoredEventId(stored, UnknownModelVersion, 0, false);
        var model = stored[(first + 1)..second];
        var fourth = third < 0 ? -1 : stored.IndexOf(Separator, third + 1);
        var streamEnd = fourth < 0 ? stored.Length : fourth;
        var stream = third >= 0 && streamEnd == third + 2 && stored[third + 1] is EmbeddingStream or RequestStream ? stored[third + 1] : UnknownStream;
        var epoch = fourth >= 0 && int.TryParse(stored.AsSpan(fourth + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var e) ? e : 0;
        return new StoredEventId(stored[..first], model.Length == 0 ? UnknownModelVersion : model, mask, true, stream, epoch);
    }
}
