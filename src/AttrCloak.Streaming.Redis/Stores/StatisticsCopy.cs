using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// The store's in-process copy of the stored statistics sums, at a known version: with it a batch sends new absolute
/// values (Redis only stores bytes) instead of deltas for the script to add. Also the encoding buffers: per slot, a
/// second array for the next absolute values (swapped with the copy when the write succeeds) and the bytes sent,
/// reused instead of new arrays per touched slot and batch, which the garbage collector had to promote.
/// Used under the store's gate only.
/// </summary>
internal sealed class StatisticsCopy(StoreLayout layout)
{
    private double[][]? _sums;
    private readonly double[]?[] _spare = new double[layout.SlotCount][];
    private readonly byte[]?[] _payload = new byte[layout.SlotCount][];

    /// <summary>The version the copy is at; null when unknown (never read, or another writer may have moved it).</summary>
    public StatisticsVersion? Version { get; private set; }

    /// <summary>Whether the copy can serve an absolute write after a read that saw <paramref name="seen"/> (null: no read).</summary>
    public bool IsCurrent(StatisticsVersion? seen) => Version is { } v && (seen is null || seen == v);

    public void Invalidate() => Version = null;

    public async Task ReloadAsync(IDatabase db)
    {
        var raw = await RawStatistics.ReadAsync(db, layout).ConfigureAwait(false);
        var bad = Array.IndexOf(raw.Malformed, true);
        if (bad >= 0)
            throw new InvalidDataException(
                $"statistics key {layout.StatsKeys[bad]} has a wrong length; run `attrcloak stats verify` and `stats rebuild`");
        _sums = raw.Slots;
        Version = raw.Version;
    }

    /// <summary>The statistics as a snapshot (the copy must be current).</summary>
    public StatisticsSnapshot Snapshot() => layout.Shape.ToSnapshot(Version!.Value, _sums!);

    /// <summary>The slot's new absolute values (copy + delta) as the script's argument; <paramref name="next"/> is installed by <see cref="Committed"/>.</summary>
    public RedisValue EncodeAbsolute(int slot, double[] delta, out double[] next)
    {
        var bytes = _payload[slot] ??= new byte[layout.Shape.StatsLength * sizeof(double)];
        next = _spare[slot] ??= new double[layout.Shape.StatsLength];
        _sums![slot].CopyTo(next, 0);
        SufficientStatistics.AddInPlace(next, delta);
        Codec.DoublesToBytes(next, bytes);
        return next[0] == 0 ? RedisValue.EmptyString : (ReadOnlyMemory<byte>)bytes;
    }

    /// <summary>The slot's delta as the script's argument.</summary>
    public RedisValue EncodeDelta(int slot, double[] delta)
    {
        var bytes = _payload[slot] ??= new byte[layout.Shape.StatsLength * sizeof(double)];
        Codec.DoublesToBytes(delta, bytes);
        return (ReadOnlyMemory<byte>)bytes;
    }

    /// <summary>After a successful write at <paramref name="written"/>: installs the absolute values, or adds the deltas when ours was the only write since the copy.</summary>
    public void Committed(BatchPlan plan, char mode, double[][]? absolute, StatisticsVersion written)
    {
        if (mode == 'N') return;
        if (mode == 'A')
        {
            for (var s = 0; s < plan.Slots.Length; s++)
            {
                var slot = plan.Slots[s];
                (_sums![slot], _spare[slot]) = (absolute![s], _sums[slot]);
            }
            Version = written;
            return;
        }
        // Server-side addition: the copy is still exact if ours was the only write since it was taken.
        if (Version is { } v && v.Epoch == written.Epoch && v.Sequence + 1 == written.Sequence)
        {
            for (var s = 0; s < plan.Slots.Length; s++) SufficientStatistics.AddInPlace(_sums![plan.Slots[s]], plan.Deltas[s]);
            Version = written;
        }
        else
            Version = null;
    }
}
