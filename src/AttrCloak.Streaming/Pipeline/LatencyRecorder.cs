namespace AttrCloak.Streaming.Pipeline;

/// <summary>
/// Keeps per-event latencies for exact percentiles (benchmarks, tests): every value up to <c>capacity</c>, then a
/// uniform reservoir sample of all values seen. Written by the consume thread; read after the run, or under its lock.
/// </summary>
public sealed class LatencyRecorder(int capacity = 1_000_000)
{
    private readonly double[] _values = new double[capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity))];
    private readonly Random _random = new(12345);
    private readonly Lock _gate = new();
    private long _seen;
    private long _windowSeen;
    private int _count;

    /// <summary>Values recorded so far (all, not only the kept sample).</summary>
    public long Count
    {
        get { lock (_gate) return _seen; }
    }

    public void Record(double seconds)
    {
        lock (_gate)
        {
            _seen++;
            _windowSeen++;
            if (_count < _values.Length)
                _values[_count++] = seconds;
            else
            {
                var slot = _random.NextInt64(_windowSeen);
                if (slot < _values.Length) _values[slot] = seconds;
            }
        }
    }

    /// <summary>The <paramref name="quantile"/> (0..1) of the kept values, in seconds; NaN when none.</summary>
    public double Percentile(double quantile)
    {
        double[] sorted;
        lock (_gate)
        {
            if (_count == 0) return double.NaN;
            sorted = _values.AsSpan(0, _count).ToArray();
        }
        Array.Sort(sorted);
        var rank = Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1);
        return sorted[rank];
    }

    /// <summary>
    /// The kept values since the last call (or since the start), sorted, and forgets them: per-window percentiles of a
    /// long run (the soak benchmark of AttrCloak.Tools). <see cref="Count"/> keeps counting every value.
    /// </summary>
    public double[] TakeWindow()
    {
        double[] window;
        lock (_gate)
        {
            window = _values.AsSpan(0, _count).ToArray();
            _count = 0;
            _windowSeen = 0;
        }
        Array.Sort(window);
        return window;
    }

    /// <summary>The <paramref name="quantile"/> (0..1) of sorted values; NaN when empty.</summary>
    public static double PercentileOfSorted(double[] sorted, double quantile)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Length == 0) return double.NaN;
        return sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1)];
    }
}
