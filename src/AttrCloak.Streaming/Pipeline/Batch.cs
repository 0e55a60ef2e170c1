using System.Diagnostics;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Kafka;
using Confluent.Kafka;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Pipeline;

/// <summary>One consumed message of a batch and everything the loop derived from it.</summary>
internal struct Slot
{
    public ConsumeResult<byte[], byte[]> Result;
    public long ConsumedAt;
    public InboundEvent? Event;
    public string? Type;
    public DecodeError? DecodeError;
    public DecodeError? PlanError;
    public ApplyOutcome Outcome;
    /// <summary>At or below its partition's applied-offset watermark: decided once already (at-least-once redelivery).</summary>
    public bool Redelivered;
    /// <summary>An embedding update of a retired model generation (or a forget with nothing stored anywhere): nothing to do.</summary>
    public bool Retired;
    /// <summary>The generations it went to have decided it (<see cref="Outcome"/> is the best of their outcomes).</summary>
    public bool Decided;
    /// <summary>Stale somewhere, and bad input if it is no redelivery (stale_version / version_conflict).</summary>
    public ReasonCode? Conflict;
    /// <summary>Why a generation rejected it (dead-lettered when no generation did better).</summary>
    public DecodeError? RejectError;
}

/// <summary>A user's serving record as published by a batch (a tombstone: no model, no embedding).</summary>
internal readonly record struct Served(string UserId, string? ModelVersion, float[]? Cloaked, int[]? Classes);

/// <summary>One batch's messages and everything derived from them, kept until its outputs are acknowledged; reused.</summary>
internal sealed class Batch
{
    public Slot[] Slots = new Slot[64];
    public int Count;
    public long Number;
    public List<ConsumedOffset> Consumed { get; } = [];
    public List<OutboundMessage> Outputs { get; } = [];
    public List<Served> Served { get; } = [];
    public OutputDelivery Delivery { get; } = new();

    public void Add(ConsumeResult<byte[], byte[]> result)
    {
        if (Count == Slots.Length) Array.Resize(ref Slots, Slots.Length * 2);
        Slots[Count++] = new Slot { Result = result, ConsumedAt = Stopwatch.GetTimestamp() };
    }

    /// <summary>Drops the references to the batch's messages, states and outputs.</summary>
    public void Clear()
    {
        Array.Clear(Slots, 0, Count);
        Count = 0;
        Outputs.Clear();
        Served.Clear();
    }
}
