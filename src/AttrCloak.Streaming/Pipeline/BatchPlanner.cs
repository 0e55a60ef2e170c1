using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// Turns a batch's valid events into the state store's <see cref="UserStateChange"/>s: folds each user's events in
/// order over the state read from the store, cloaking as it goes, and remembers for each change the state it leads
/// to, so that the pipeline can publish each user's last state once the store has said which changes applied.
/// <list type="bullet">
/// <item>embedding update: new original; classes = the user's classes overridden by the event's attributes; cloaked =
/// cloaker(original, classes).</item>
/// <item>update_attributes: classes changed (null clears to unknown); re-cloaked from the stored original.</item>
/// <item>opt_out: re-cloaked now from the stored original (the pipeline refreshed the cloaker first). Every served
/// embedding is cloaked, so the user stays cloaked without a flag.</item>
/// <item>forget: <see cref="UserStateChange.ForgetUser"/>.</item>
/// <item>opt_out / update_attributes of a user with no state (never seen, or forgotten): dead-lettered as
/// <see cref="ReasonCode.UnknownUser"/>, unless the store finds it older than the user's forget (a redelivery:
/// Stale). Nothing is served for that user, so the request fails closed; acking it silently would lose declared
/// attributes (their first embedding would then be cloaked without them), while the dead letter keeps the request
/// for a replay once their first embedding is in.</item>
/// </list>
/// Whether an event applies is decided by <see cref="FoldPoint.Decide"/>, the store's own rule, over the state the store
/// returned (or this worker's memory of it): the worker needs the answer before the write, to cloak only what applies
/// and to hand the store each applicable change's cloaked embedding; the store calls the same rule again under its
/// atomic write over what it holds then, so the two answers differ only when the prior differs (another writer, a
/// tombstone the worker cannot see), never by rule.
/// An event that does not apply is passed on without fields (the store decides
/// Stale or Duplicate and changes nothing); a redelivery of the stored event carries the stored event id back, so
/// that the store recognises it as a duplicate (see <see cref="StoredEventId"/>). Such an event from the same stream
/// (input topic) as the applied version is remembered as a version conflict (same version, other event) or a stale
/// version (older); the pipeline dead-letters it as that when the store says Stale and the event is no redelivery
/// (above its partition's applied-offset watermark). From the other topic it is only stale: the two topics are not
/// ordered with each other, so an opt_out may legitimately arrive after the next embedding update.
/// <para>
/// Limitation: the store reports no version for a forgotten user, so an older event redelivered after a forget looks
/// applicable here; the store rejects it (Stale, from its tombstone), but a later event of the same user in the same
/// batch was folded on top of it. That needs an out-of-order producer (per-user order holds within a partition).
/// </para>
/// Not thread-safe: one per pipeline, reused batch after batch.
/// </summary>
internal sealed class BatchPlanner
{
    private readonly int _dimension;
    private readonly AttributeCatalog _catalog;
    private readonly Dictionary<string, int> _attributeIndex = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, string[]> _protectedNames = [];
    private readonly Dictionary<string, UserFold> _folds = new(StringComparer.Ordinal);

    public BatchPlanner(int dimension, AttributeCatalog catalog)
    {
        _dimension = dimension;
        _catalog = catalog ?? throw new ArgumentNullException(nameof(catalog));
        for (var a = 0; a < catalog.AttributeNames.Count; a++) _attributeIndex[catalog.AttributeNames[a]] = a;
    }

    /// <summary>The embedding dimension.</summary>
    public int Dimension => _dimension;

    /// <summary>The changes of the batch, in event order (one per planned event).</summary>
    public List<UserStateChange> Changes { get; } = [];

    /// <summary>For each change: the state it leads to if it applies.</summary>
    public List<PlannedChange> Planned { get; } = [];

    /// <summary>The batch's users in order of first appearance, with their fold.</summary>
    public List<UserFold> Users { get; } = [];

    /// <summary>Forgets the previous batch.</summary>
    public void Reset()
    {
        Changes.Clear();
        Planned.Clear();
        Users.Clear();
        _folds.Clear();
    }

    /// <summary>Registers a user with the state the store holds for them (null: unknown or forgotten).</summary>
    public void AddUser(string userId, UserState? stored)
    {
        if (_folds.ContainsKey(userId)) return;
        var fold = new UserFold(userId, stored);
        _folds.Add(userId, fold);
        Users.Add(fold);
    }

    /// <summary>
    /// Plans one event of message <paramref name="messageIndex"/>. Returns null when a change was planned, or the
    /// reason to dead-letter the event (unknown user). Throws only on a fault (the caller dead-letters the event as
    /// an internal error; the user's fold is left as it was before this event).
    /// </summary>
    public DecodeError? Plan(int messageIndex, InboundEvent inbound, IUserCloaker cloaker) => Plan(messageIndex, inbound, cloaker, 0, null, null);

    /// <summary>
    /// <see cref="Plan(int, InboundEvent, IUserCloaker)"/> in a generation seated <paramref name="seatEpoch"/> times (recorded
    /// with each cloak, see <see cref="StoredEventId.SeatEpoch"/>), for an event read from input partition
    /// <paramref name="partition"/> (recorded as the partition that owns the user; null: not from Kafka); a change the
    /// live stream publishes carries the generation's sweep epoch as the user's <paramref name="sweepMark"/> (null: not published).
    /// </summary>
    public DecodeError? Plan(int messageIndex, InboundEvent inbound, IUserCloaker cloaker, int seatEpoch, int? partition, int? sweepMark)
    {
        var fold = _folds[inbound.UserId];
        var isForget = inbound is PrivacyRequest { Type: PrivacyRequestType.Forget };
        // The store's own decision (FoldPoint.Decide, the one rule) over the state read, so that only an event that
        // applies is cloaked; the store makes the same call over what it holds when it writes (see the class summary).
        var outcome = fold.Point.Decide(inbound.Version, inbound.EventId, isForget, recloak: false, carriesEmbeddings: inbound is EmbeddingUpdate);
        if (outcome is ApplyOutcome.Duplicate or ApplyOutcome.Stale)
        {
            // Not applicable: the store says Duplicate (same event) or Stale and changes nothing. The same event as
            // the user's state-setting one is sent with its stored id, so that the store's rule finds it a duplicate.
            var sameEvent = outcome == ApplyOutcome.Duplicate;
            var id = sameEvent ? fold.StoredId! : inbound.EventId;
            // Bad input only within one stream (per-user order holds per topic); across the two topics it may be a race.
            ReasonCode? conflict = fold.Stream != StreamOf(inbound) ? null
                : inbound.Version == fold.Version && !sameEvent ? ReasonCode.VersionConflict : ReasonCode.StaleVersion;
            Add(messageIndex, fold, isForget ? UserStateChange.ForgetUser(fold.UserId, id, inbound.Version) : new UserStateChange(fold.UserId, id, inbound.Version),
                PlannedKind.NotApplicable, null, null, 0, "", conflict);
            return null;
        }

        switch (inbound)
        {
            case EmbeddingUpdate update:
            {
                var classes = fold.Exists ? (int[])fold.Classes!.Clone() : NewUnknownClasses();
                if (update.Attributes is not null)
                    foreach (var (name, value) in update.Attributes)
                        classes[_attributeIndex[name]] = ClassIndex(name, value);
                var cloaked = Cloak(cloaker, update.Embedding, classes, out var mask);
                var id = StoredEventId.Compose(update.EventId, update.ModelVersion, mask, StoredEventId.EmbeddingStream, seatEpoch);
                var change = new UserStateChange(fold.UserId, id, update.Version)
                {
                    Original = update.Embedding, Cloaked = cloaked, Classes = classes, Partition = partition, SweepMark = sweepMark,
                };
                Add(messageIndex, fold, change, PlannedKind.Serve, cloaked, classes, mask, update.ModelVersion);
                fold.Set(update.Version, update.EventId, id, update.Embedding, cloaked, classes, mask, update.ModelVersion, StoredEventId.EmbeddingStream);
                return null;
            }
            case PrivacyRequest { Type: PrivacyRequestType.Forget } forget:
            {
                // Stale only against a tombstone (a forget: the requests stream), so an older forget is bad input.
                Add(messageIndex, fold, UserStateChange.ForgetUser(fold.UserId, forget.EventId, forget.Version), PlannedKind.Forget, null, null, 0, "",
                    fold.HasVersion ? null : ReasonCode.StaleVersion);
                fold.SetForgotten(forget.Version, forget.EventId);
                return null;
            }
            case PrivacyRequest request:
            {
                if (outcome == ApplyOutcome.Rejected) // no state and no embedding to start one
                {
                    // Only the store knows a forget's tombstone: a request older than the forget (redelivered after a
                    // crash) is Stale there and must not put the forgotten user's id on the dead-letter topic. Any
                    // other comes back Rejected and is dead-lettered as unknown_user (UnknownUserError).
                    Add(messageIndex, fold, new UserStateChange(fold.UserId, request.EventId, request.Version), PlannedKind.UnknownUser, null, null, 0, "");
                    return null;
                }
                var classes = fold.Classes!;
                if (request.Type == PrivacyRequestType.UpdateAttributes)
                {
                    classes = (int[])classes.Clone();
                    foreach (var (name, value) in request.Attributes ?? EmptyAttributes)
                        classes[_attributeIndex[name]] = value is null ? -1 : ClassIndex(name, value);
                }
                var cloaked = Cloak(cloaker, fold.Original!, classes, out var mask);
                var id = StoredEventId.Compose(request.EventId, fold.ModelVersion!, mask, StoredEventId.RequestStream, seatEpoch);
                var change = new UserStateChange(fold.UserId, id, request.Version)
                {
                    Cloaked = cloaked,
                    Classes = ReferenceEquals(classes, fold.Classes) ? null : classes,
                    Partition = partition,
                    SweepMark = sweepMark,
                };
                Add(messageIndex, fold, change, PlannedKind.Serve, cloaked, classes, mask, fold.ModelVersion!);
                fold.Set(request.Version, request.EventId, id, fold.Original!, cloaked, classes, mask, fold.ModelVersion!, StoredEventId.RequestStream);
                return null;
            }
            default:
                throw new InvalidOperationException($"unexpected event type {inbound.GetType().Name}");
        }
    }

    /// <summary>Whether the user has a state at this point of the batch (as planned so far); false for users not added.</summary>
    public bool Holds(string userId) => _folds.TryGetValue(userId, out var fold) && fold.Exists;

    /// <summary>Whether the user was added to this batch.</summary>
    public bool Knows(string userId) => _folds.ContainsKey(userId);

    /// <summary>The user's fold (after <see cref="AddUser"/>).</summary>
    public UserFold FoldOf(string userId) => _folds[userId];

    /// <summary>The names of the attributes in <paramref name="mask"/> (catalog order), cached per mask.</summary>
    public IReadOnlyList<string> ProtectedNames(uint mask)
    {
        if (_protectedNames.TryGetValue(mask, out var names)) return names;
        names = _catalog.AttributeNames.Where((_, a) => (mask & (1u << a)) != 0).ToArray();
        _protectedNames[mask] = names;
        return names;
    }

    /// <summary>The mask of a stored record that does not say (written by another tool): the attributes with a known class.</summary>
    public static uint KnownClassMask(int[] classes)
    {
        var mask = 0u;
        for (var a = 0; a < classes.Length; a++)
            if (classes[a] >= 0) mask |= 1u << a;
        return mask;
    }

    private static readonly Dictionary<string, string?> EmptyAttributes = [];

    /// <summary>Why an opt_out / update_attributes of a user without state (and not older than their forget) is dead-lettered.</summary>
    public static DecodeError UnknownUserError(InboundEvent? inbound)
    {
        var type = inbound is PrivacyRequest { Type: PrivacyRequestType.OptOut } ? "opt_out" : "update_attributes";
        return new DecodeError(ReasonCode.UnknownUser,
            $"{type} for a user with no stored state (never seen, or forgotten): nothing is served for them; replay it after their first embedding update");
    }

    private static char StreamOf(InboundEvent inbound) => inbound is EmbeddingUpdate ? StoredEventId.EmbeddingStream : StoredEventId.RequestStream;

    private void Add(int messageIndex, UserFold fold, UserStateChange change, PlannedKind kind, float[]? cloaked, int[]? classes, uint mask, string modelVersion,
        ReasonCode? conflict = null)
    {
        fold.ChangeIndices.Add(Changes.Count);
        Changes.Add(change);
        Planned.Add(new PlannedChange(messageIndex, kind, change.Version, cloaked, classes, mask, modelVersion, conflict));
    }

    private int[] NewUnknownClasses()
    {
        var classes = new int[_catalog.AttributeNames.Count];
        Array.Fill(classes, -1);
        return classes;
    }

    private int ClassIndex(string attribute, string className) =>
        _catalog.TryGetClassIndex(attribute, className, out var index)
            ? index
            : throw new InvalidOperationException("a class passed the catalog check but has no index"); // decode validated it

    private float[] Cloak(IUserCloaker cloaker, float[] original, int[] classes, out uint mask)
    {
        var cloaked = new float[_dimension];
        var outcome = cloaker.Cloak(original, classes, cloaked);
        foreach (var v in cloaked)
            if (!float.IsFinite(v))
                throw new InvalidOperationException("the cloaker produced a non-finite value"); // fail closed: never store or serve it
        mask = outcome.ProtectedMask;
        return cloaked;
    }
}

internal enum PlannedKind
{
    /// <summary>Publish the cloaked embedding if applied.</summary>
    Serve,
    /// <summary>Publish a tombstone if applied.</summary>
    Forget,
    /// <summary>Predicted stale or duplicate: changes nothing.</summary>
    NotApplicable,
    /// <summary>
    /// A privacy request of a user without state: changes nothing; Stale when the store's tombstone says it is older
    /// than the user's forget (a redelivery), otherwise Rejected, which the pipeline dead-letters as unknown_user.
    /// </summary>
    UnknownUser,
}

/// <summary>
/// The state one change leads to, if it applies. <paramref name="Conflict"/>: when the store says Stale and the event is
/// no redelivery, the dead letter it is (<see cref="ReasonCode.StaleVersion"/>, <see cref="ReasonCode.VersionConflict"/>);
/// null: not bad input (an older version from the other input topic, which is not ordered with this one).
/// </summary>
internal readonly record struct PlannedChange(
    int MessageIndex, PlannedKind Kind, long Version, float[]? Cloaked, int[]? Classes, uint ProtectedMask, string ModelVersion,
    ReasonCode? Conflict = null);

/// <summary>One user's running state through the batch.</summary>
internal sealed class UserFold
{
    public UserFold(string userId, UserState? stored)
    {
        UserId = userId;
        Stored = stored;
        if (stored is not null)
        {
            var meta = StoredEventId.Parse(stored.EventId);
            StoredMeta = meta;
            Set(stored.Version, meta.EventId, stored.EventId, stored.Original, stored.Cloaked, stored.Classes,
                meta.HasMask ? meta.ProtectedMask : BatchPlanner.KnownClassMask(stored.Classes), meta.ModelVersion, meta.Stream);
        }
    }

    public string UserId { get; }

    /// <summary>What the store held before the batch (null: unknown or forgotten).</summary>
    public UserState? Stored { get; }

    public StoredEventId StoredMeta { get; }

    public List<int> ChangeIndices { get; } = [];

    /// <summary>Where the user's fold stands, as <see cref="FoldPoint.Decide"/> takes it (event ids plain, see <see cref="StoredEventId"/>).</summary>
    public FoldPoint Point => new(HasVersion ? Version : null, Forgotten, PlainEventId, Exists);

    public bool HasVersion { get; private set; }
    public long Version { get; private set; }
    public bool Exists { get; private set; }
    public bool Forgotten { get; private set; }
    public string? PlainEventId { get; private set; }
    public string? StoredId { get; private set; }
    public float[]? Original { get; private set; }
    public float[]? Cloaked { get; private set; }
    public int[]? Classes { get; private set; }
    public uint Mask { get; private set; }
    public string? ModelVersion { get; private set; }

    /// <summary>The stream of the event that set <see cref="Version"/> (see <see cref="StoredEventId.Stream"/>).</summary>
    public char Stream { get; private set; } = StoredEventId.UnknownStream;

    public void Set(long version, string plainEventId, string storedId, float[] original, float[] cloaked, int[] classes, uint mask, string modelVersion, char stream)
    {
        Stream = stream;
        HasVersion = true;
        Version = version;
        Exists = true;
        Forgotten = false;
        PlainEventId = plainEventId;
        StoredId = storedId;
        Original = original;
        Cloaked = cloaked;
        Classes = classes;
        Mask = mask;
        ModelVersion = modelVersion;
    }

    public void SetForgotten(long version, string eventId)
    {
        Stream = StoredEventId.RequestStream;
        HasVersion = true;
        Version = version;
        Exists = false;
        Forgotten = true;
        PlainEventId = eventId;
        StoredId = eventId;
        Original = Cloaked = null;
        Classes = null;
        Mask = 0;
        ModelVersion = null;
    }
}
