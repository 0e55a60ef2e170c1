using System.Diagnostics.CodeAnalysis;

namespace AttrCloak.Streaming.Contracts;

/// <summary>
/// Why a message was rejected. <paramref name="Message"/> is for people (dead-letter header, logs): it never
/// contains a user id nor an attribute value, only positions, counts, member and attribute names.
/// </summary>
public sealed record DecodeError(ReasonCode Reason, string Message)
{
    public override string ToString() => $"{Reason.Label()}: {Message}";
}

/// <summary>Either a decoded <see cref="InboundEvent"/> or a <see cref="DecodeError"/>, never both.</summary>
public readonly record struct DecodeResult
{
    private DecodeResult(InboundEvent? @event, DecodeError? error)
    {
        Event = @event;
        Error = error;
    }

    /// <summary>The event; null when <see cref="IsSuccess"/> is false.</summary>
    public InboundEvent? Event { get; }

    /// <summary>The reason for rejection; null when <see cref="IsSuccess"/> is true.</summary>
    public DecodeError? Error { get; }

    [MemberNotNullWhen(true, nameof(Event))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool IsSuccess => Event is not null;

    public static DecodeResult Success(InboundEvent @event) => new(@event ?? throw new ArgumentNullException(nameof(@event)), null);

    public static DecodeResult Failure(DecodeError error) => new(null, error ?? throw new ArgumentNullException(nameof(error)));

    public static DecodeResult Failure(ReasonCode reason, string message) => new(null, new DecodeError(reason, message));

    public static implicit operator DecodeResult(DecodeError error) => Failure(error);

    public override string ToString() => IsSuccess ? $"ok: {Event.SchemaName}" : $"rejected: {Error}";
}
