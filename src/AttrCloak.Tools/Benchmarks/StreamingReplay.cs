using System.Diagnostics;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Tools.Benchmarks;

/// <summary>
/// The acceptance protocol of the re-cloak, in process: batch AttrCloak-DF on a bootstrap part of the users seeds the
/// served and original statistics; every other user is then streamed one by one in random order through the
/// per-user cloaker, the statistics updated after each user as the store would, and the cloaker rebuilt every
/// <see cref="RefreshEvery"/> users. Shared by the re-cloak's quality tests, the streaming-quality experiment
/// (AttrCloak.Tools.Experiments) and the served-stream row of `attrcloak harness`.
/// </summary>
public sealed class StreamingReplay
{
    /// <summary>The DF preset (<see cref="CloakPresets.DataFree"/>), what bootstrap and seatings run.</summary>
    public static CloakOptions DataFreePreset => CloakPresets.DataFree;

    /// <summary>The DF preset of issue 13 at a fixed strength on every attribute (the privacy-target loop picks such strengths).</summary>
    public static CloakOptions NoiseMatchedPreset(double strength) => CloakPresets.DataFree with { Strength = strength };

    public required IReadOnlyList<AttributeSpec> Attributes { get; init; }
    public double BootstrapFraction { get; init; } = 0.5;
    public int RefreshEvery { get; init; } = 25;
    public int Seed { get; init; } = 7;
    public CloakOptions BatchOptions { get; init; } = DataFreePreset;

    /// <summary>
    /// Re-seat (batch DF with <see cref="BatchOptions"/> over every user so far, as a worker's seating does) whenever the
    /// population reaches this many times the users of the last seating (0: never; the worker's
    /// <c>AttrCloak:Generations:ReseatGrowth</c>).
    /// </summary>
    public double ReseatGrowth { get; init; }

    /// <summary>
    /// Re-seatings remove no class offset beyond the cap the last seating recorded, and record no larger caps
    /// (<see cref="ClassOffsetCaps"/>; the worker's re-seatings with <c>TransportCloakerOptions.HoldShiftWeightsAtSeating</c>).
    /// </summary>
    public bool ReseatCapsClassOffsets { get; init; } = true;

    /// <summary>
    /// How the bootstrap part is cloaked: given the bootstrap users' indices, their original rows and their labels
    /// (per attribute), their served rows. Null: batch DF with <see cref="BatchOptions"/>.
    /// </summary>
    public Func<int[], EmbeddingMatrix, int[][], EmbeddingMatrix>? BootstrapCloak { get; init; }

    public sealed record Result(EmbeddingMatrix Served, int BootstrapUsers, int StreamedUsers, int Builds,
        double BuildMilliseconds, double CloakMicroseconds, int UnprotectedCalls);

    /// <summary>Batch DF over every user (the reference the stream is compared with).</summary>
    public EmbeddingMatrix Batch(EmbeddingMatrix original, int[][] labels) =>
        new Cloaker().Cloak(original, Protected(labels), BatchOptions).Embeddings;

    public Result Run(EmbeddingMatrix original, int[][] labels, IUserCloakerFactory factory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(factory);
        var n = original.Rows;
        var d = original.Cols;
        var (bootstrap, streamed) = Partition(n);

        var served = new EmbeddingMatrix(n, d, new float[n * d]);
        var servedStats = new ClassStatisticsAccumulator(d, Attributes);
        var originalStats = new ClassStatisticsAccumulator(d, Attributes);
        var classes = new int[Attributes.Count];
        if (bootstrap.Length > 0)
        {
            var bootOriginal = original.SelectRows(bootstrap);
            var bootLabels = labels.Select(l => bootstrap.Select(u => l[u]).ToArray()).ToArray();
            var bootServed = BootstrapCloak is { } cloak
                ? cloak(bootstrap, bootOriginal, bootLabels)
                : new Cloaker().Cloak(bootOriginal, Protected(bootLabels), BatchOptions, ct: cancellationToken).Embeddings;
            for (var i = 0; i < bootstrap.Length; i++)
            {
                bootServed.Row(i).CopyTo(served.Row(bootstrap[i]));
                for (var a = 0; a < classes.Length; a++) classes[a] = bootLabels[a][i];
                servedStats.Add(bootServed.Row(i), classes);
                originalStats.Add(bootOriginal.Row(i), classes);
            }
        }

        var seated = bootstrap.Length;
        var caps = ReseatGrowth > 0 && ReseatCapsClassOffsets && seated > 0 ? ClassOffsetCaps.Measure(Snapshot(servedStats, originalStats)) : null;

        IUserCloaker? cloaker = null;
        long sequence = 0;
        var builds = 0;
        var unprotected = 0;
        var buildClock = new Stopwatch();
        var cloakClock = new Stopwatch();
        for (var i = 0; i < streamed.Length; i++)
        {
            if (ReseatGrowth > 0 && seated > 0 && bootstrap.Length + i >= ReseatGrowth * seated)
            {
                var members = bootstrap.Concat(streamed[..i]).ToArray();
                var floors = caps is null ? null : ClassOffsetCaps.KeepFloors(Snapshot(servedStats, originalStats), caps);
                servedStats = Reseat(members, original, labels, floors, served, cancellationToken);
                seated = members.Length;
                if (caps is not null) caps = ClassOffsetCaps.Carried(ClassOffsetCaps.Measure(Snapshot(servedStats, originalStats)), caps);
                cloaker = null;
            }
            if (cloaker is null || i % RefreshEvery == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                buildClock.Start();
                cloaker = factory.Build(ClassStatisticsAccumulator.Combine(servedStats, originalStats, new StatisticsVersion("replay", ++sequence)));
                buildClock.Stop();
                builds++;
            }
            var u = streamed[i];
            for (var a = 0; a < classes.Length; a++) classes[a] = labels[a][u];
            cloakClock.Start();
            var outcome = cloaker.Cloak(original.Row(u), classes, served.Row(u));
            cloakClock.Stop();
            var expected = 0u;
            for (var a = 0; a < classes.Length; a++) if (classes[a] != -1) expected |= 1u << a;
            if (outcome.ProtectedMask != expected) unprotected++;
            servedStats.Add(served.Row(u), classes);
            originalStats.Add(original.Row(u), classes);
        }
        return new Result(served, bootstrap.Length, streamed.Length, builds,
            builds == 0 ? 0 : buildClock.Elapsed.TotalMilliseconds / builds,
            streamed.Length == 0 ? 0 : cloakClock.Elapsed.TotalMicroseconds / streamed.Length, unprotected);
    }

    /// <summary>Batch DF over <paramref name="members"/>, written into <paramref name="served"/>; their served statistics.</summary>
    private ClassStatisticsAccumulator Reseat(int[] members, EmbeddingMatrix original, int[][] labels, IReadOnlyDictionary<string, double[]>? floors,
        EmbeddingMatrix served, CancellationToken cancellationToken)
    {
        var memberLabels = labels.Select(l => members.Select(u => l[u]).ToArray()).ToArray();
        var options = floors is null ? BatchOptions : BatchOptions with { ClassKeepFloors = floors };
        var cloaked = new Cloaker().Cloak(original.SelectRows(members), Protected(memberLabels), options, ct: cancellationToken).Embeddings;
        var stats = new ClassStatisticsAccumulator(original.Cols, Attributes);
        var classes = new int[Attributes.Count];
        for (var i = 0; i < members.Length; i++)
        {
            cloaked.Row(i).CopyTo(served.Row(members[i]));
            for (var a = 0; a < classes.Length; a++) classes[a] = memberLabels[a][i];
            stats.Add(cloaked.Row(i), classes);
        }
        return stats;
    }

    private static StatisticsSnapshot Snapshot(ClassStatisticsAccumulator served, ClassStatisticsAccumulator original) =>
        ClassStatisticsAccumulator.Combine(served, original, new StatisticsVersion("replay-seating", 0));

    /// <summary>Which users <see cref="Run"/> bootstraps and which it streams, in streaming order, for <paramref name="users"/> users.</summary>
    public (int[] Bootstrap, int[] Streamed) Partition(int users)
    {
        var order = Enumerable.Range(0, users).ToArray();
        new Random(Seed).Shuffle(order);
        var bootstrapCount = (int)Math.Round(users * BootstrapFraction);
        return (order[..bootstrapCount], order[bootstrapCount..]);
    }

    private LabeledAttribute[] Protected(int[][] labels) =>
        Attributes.Select((a, i) => new LabeledAttribute(a, labels[i])).ToArray();

    /// <summary>Mean squared L2 displacement per user (the DF retention loss, averaged).</summary>
    public static double MeanSquaredDisplacement(EmbeddingMatrix a, EmbeddingMatrix b) => a.MeanSquaredDistanceTo(b);
}
