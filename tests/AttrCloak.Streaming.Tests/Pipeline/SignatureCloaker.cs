using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Tests.Pipeline;

/// <summary>
/// A deterministic stand-in for the real per-user cloaker (swapped in by the lead): adds <see cref="Offset"/> to
/// every value, so that a served embedding is recognisably not the original, and protects the attributes whose class
/// is known. Counts how often it was built (cloaker refreshes).
/// </summary>
internal sealed class SignatureCloakerFactory : IUserCloakerFactory
{
    public const float Offset = 10f;
    private int _builds;

    public int Builds => Volatile.Read(ref _builds);

    /// <summary>Snapshots the cloakers were built from, in order.</summary>
    public List<StatisticsSnapshot> Snapshots { get; } = [];

    /// <summary>When set, every Cloak call for an original whose first value equals it throws (a poison event).</summary>
    public float? PoisonFirstValue { get; set; }

    public IUserCloaker Build(StatisticsSnapshot snapshot)
    {
        Interlocked.Increment(ref _builds);
        lock (Snapshots) Snapshots.Add(snapshot);
        return new SignatureCloaker(snapshot.Version, PoisonFirstValue);
    }

    public static float[] Expected(float[] original) => original.Select(v => v + Offset).ToArray();

    private sealed class SignatureCloaker(StatisticsVersion version, float? poison) : IUserCloaker
    {
        public StatisticsVersion StatisticsVersion { get; } = version;

        public CloakOutcome Cloak(ReadOnlySpan<float> original, ReadOnlySpan<int> classes, Span<float> cloaked)
        {
            if (poison is { } p && original[0] == p)
                throw new InvalidOperationException("poison embedding");
            for (var i = 0; i < original.Length; i++) cloaked[i] = original[i] + Offset;
            var mask = 0u;
            for (var a = 0; a < classes.Length; a++)
                if (classes[a] >= 0) mask |= 1u << a;
            return new CloakOutcome(mask);
        }
    }
}
