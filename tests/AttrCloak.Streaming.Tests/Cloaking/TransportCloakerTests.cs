using AttrCloak.Core.Data;
using AttrCloak.Streaming.Cloaking;
using static AttrCloak.Tools.Samples.GaussianSamples;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Tests.Cloaking;

public sealed class TransportCloakerTests
{
    private static readonly StatisticsVersion Version = new("test", 1);

    /// <summary>Exact maps: no shrinkage and served class offsets kept whole, so the map is the textbook Monge map of the given Gaussians.</summary>
    // Replicate mode: every class to its own served Gaussian (the defaults equalise class covariances instead).
    private static readonly TransportCloakerOptions Exact = new()
    {
        MeanPriorUsers = 0, CovariancePriorUsers = 0, MinCovarianceUsers = 2, TargetOffsetScale = 1, TargetCovarianceScale = 1, CovarianceAnchor = 0,
        ClassShiftShrinkage = 0, SamplingNoiseScale = 0,
    };

    [Fact]
    public void MongeMatrixPushesTheSourceCovarianceOntoTheTarget()
    {
        var rng = new Random(1);
        const int d = 6;
        var s = RandomSpd(rng, d);
        var t = RandomSpd(rng, d, scale: 2);
        var b = GaussianTransport.MongeMatrices([s], [t], d)[0];

        // Cov(Bx) = B S B^T must be T, and B must be symmetric (the OT map is the gradient of a convex function).
        MaxAbsDifference(MatMul(MatMul(b, s, d), b, d), t).ShouldBeLessThan(1e-9);
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++) b[i * d + j].ShouldBe(b[j * d + i], 1e-12);
        var v = RandomVector(rng, d);
        var quadratic = 0.0;
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++) quadratic += v[i] * b[i * d + j] * v[j];
        quadratic.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void MongeMatrixOfEqualCovariancesIsTheIdentity()
    {
        const int d = 5;
        var s = RandomSpd(new Random(2), d);
        var b = GaussianTransport.MongeMatrices([s], [s], d)[0];
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++) b[i * d + j].ShouldBe(i == j ? 1 : 0, 1e-9);
    }

    [Fact]
    public void MappedSamplesOfAClassHaveTheServedClassMeanAndCovariance()
    {
        var rng = new Random(3);
        const int d = 4;
        var originalMeans = new[] { RandomVector(rng, d), RandomVector(rng, d) };
        var originalCovs = new[] { RandomSpd(rng, d), RandomSpd(rng, d, scale: 1.5) };
        var servedMeans = new[] { RandomVector(rng, d, 0.1), RandomVector(rng, d, 0.1) };
        var servedCovs = new[] { RandomSpd(rng, d), RandomSpd(rng, d) };
        var snapshot = Snapshot(d, [Stats("gender", [1000, 1000], servedMeans, servedCovs)], [Stats("gender", [1000, 1000], originalMeans, originalCovs)]);
        var cloaker = new TransportCloakerFactory(Exact).BuildTransport(snapshot);

        for (var k = 0; k < 2; k++)
        {
            const int n = 40_000;
            var samples = Sample(rng, originalMeans[k], originalCovs[k], n);
            var mapped = new float[samples.Length];
            for (var r = 0; r < n; r++)
                cloaker.Cloak(samples.AsSpan(r * d, d), [k], mapped.AsSpan(r * d, d)).ProtectedMask.ShouldBe(1u);
            var (mean, cov) = Moments(mapped, d);
            // Sampling error at n = 40,000 is ~0.01 per entry for unit-scale Gaussians; 0.05 is 5 sigma, a wrong map is off by O(1).
            MaxAbsDifference(mean, servedMeans[k]).ShouldBeLessThan(0.05);
            MaxAbsDifference(cov, servedCovs[k]).ShouldBeLessThan(0.05);
        }
    }

    [Fact]
    public void ServedEqualToOriginalGivesTheIdentity()
    {
        var rng = new Random(4);
        const int d = 8;
        var means = new[] { RandomVector(rng, d), RandomVector(rng, d), RandomVector(rng, d) };
        var covs = new[] { RandomSpd(rng, d), RandomSpd(rng, d), RandomSpd(rng, d) };
        var age = Stats("age", [300, 200, 100], means, covs);
        var gender = Stats("gender", [300, 300], means[..2], covs[..2]);
        // With shrinkage but the served class offsets kept whole: shrinking both sides alike still maps a population onto itself.
        var snapshot = Snapshot(d, [gender, age], [gender, age]);
        var cloaker = new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 1, TargetCovarianceScale = 1, CovarianceAnchor = 0, ClassShiftShrinkage = 0, SamplingNoiseScale = 0 }).Build(snapshot);
        var x = RandomVector(rng, d).Select(v => (float)v).ToArray();
        var y = new float[d];
        cloaker.Cloak(x, [1, 2], y).ProtectedMask.ShouldBe(0b11u);
        for (var i = 0; i < d; i++) y[i].ShouldBe(x[i], 1e-4f);

        // The default pulls served class offsets halfway to the global mean, so even an unhidden population moves.
        new TransportCloakerFactory().Build(snapshot).Cloak(x, [1, 2], y);
        MaxAbsDifference(y.Select(v => (double)v).ToArray(), x.Select(v => (double)v).ToArray()).ShouldBeGreaterThan(0.01);
    }

    [Fact]
    public void UnknownClassesAreUnprotectedAndAnUnmappableDeclaredClassGetsTheWarmUpVector()
    {
        var rng = new Random(5);
        const int d = 3;
        var means = new[] { RandomVector(rng, d), RandomVector(rng, d) };
        var covs = new[] { RandomSpd(rng, d), RandomSpd(rng, d) };
        var big = Stats("gender", [50, 50], means, covs);
        var tiny = Stats("age", [3, 4], means, covs);
        var cloaker = new TransportCloakerFactory(new TransportCloakerOptions { MinGlobalUsers = 20 })
            .BuildTransport(Snapshot(d, [big, tiny], [big, tiny]));
        var x = new float[] { 1, 2, 3 };
        var y = new float[d];
        // Age has 7 users, fewer than MinGlobalUsers: a user declaring an age class is served the original population
        // mean of the largest attribute (gender: (50 m0 + 50 m1) / 100), which says nothing about them.
        var warmup = Enumerable.Range(0, d).Select(j => (float)((means[0][j] + means[1][j]) / 2)).ToArray();
        cloaker.IsWarmingUp([0, 1]).ShouldBeTrue();
        cloaker.Cloak(x, [0, 1], y).ProtectedMask.ShouldBe(0b11u);
        y.ShouldBe(warmup, tolerance: 1e-5);
        cloaker.Cloak(x, [-1, 1], y).ProtectedMask.ShouldBe(0b10u);
        y.ShouldBe(warmup, tolerance: 1e-5);
        cloaker.IsWarmingUp([1, -1]).ShouldBeFalse();
        cloaker.Cloak(x, [1, -1], y).ProtectedMask.ShouldBe(0b01u, "gender is mapped; age unknown");
        y.ShouldNotBe(warmup);
        cloaker.Cloak(x, [-1, -1], y).ProtectedMask.ShouldBe(0u, "nothing declared, nothing to protect");
        cloaker.Maps.Select(m => m.Mapped).ShouldBe([true, false]);
    }

    [Fact]
    public void The_warm_up_vector_is_no_other_users_embedding_before_the_population_is_large_enough()
    {
        var rng = new Random(6);
        const int d = 3;
        var means = new[] { RandomVector(rng, d), RandomVector(rng, d) };
        var covs = new[] { RandomSpd(rng, d), RandomSpd(rng, d) };
        // One user so far: the mean of the population is that user's original embedding.
        var one = Stats("gender", [1, 0], means, covs);
        var cloaker = new TransportCloakerFactory(new TransportCloakerOptions { MinGlobalUsers = 20 }).BuildTransport(Snapshot(d, [one], [one]));
        var y = new float[d];
        cloaker.Cloak([1, 2, 3], [1], y);
        y.ShouldBe(new float[d], "zeros until the population mean says nothing about anyone");
        y.ShouldNotBe(means[0].Select(v => (float)v).ToArray());
    }

    [Fact]
    public void WrongShapesAreRejectedWithClearMessagesAndOutputMayAliasInput()
    {
        var rng = new Random(6);
        const int d = 4;
        var means = new[] { RandomVector(rng, d), RandomVector(rng, d) };
        var covs = new[] { RandomSpd(rng, d), RandomSpd(rng, d) };
        var original = Stats("gender", [100, 100], means, covs);
        var served = Stats("gender", [100, 100], [RandomVector(rng, d, 0.1), RandomVector(rng, d, 0.1)], covs);
        var cloaker = new TransportCloakerFactory().Build(Snapshot(d, [served], [original]));
        var output = new float[d];

        Should.Throw<ArgumentException>(() => cloaker.Cloak(new float[d + 1], [0], output)).Message.ShouldContain("dimension is 4");
        Should.Throw<ArgumentException>(() => cloaker.Cloak(new float[d], [0], new float[d - 1]));
        Should.Throw<ArgumentException>(() => cloaker.Cloak(new float[d], [0, 1], output)).Message.ShouldContain("1 attributes");
        Should.Throw<ArgumentOutOfRangeException>(() => cloaker.Cloak(new float[d], [2], output));

        var x = new float[] { 0.5f, -1, 2, 0.25f };
        cloaker.Cloak(x, [1], output);
        var inPlace = (float[])x.Clone();
        cloaker.Cloak(inPlace, [1], inPlace);
        inPlace.ShouldBe(output);
        output.ShouldNotBe(x);
    }

    [Fact]
    public void SnapshotWithoutOriginalStatisticsIsRejected()
    {
        var rng = new Random(7);
        var stats = Stats("gender", [10, 10], [RandomVector(rng, 2), RandomVector(rng, 2)], [RandomSpd(rng, 2), RandomSpd(rng, 2)]);
        var snapshot = new StatisticsSnapshot(Version, 2, [stats]);
        Should.Throw<ArgumentException>(() => new TransportCloakerFactory().Build(snapshot)).Message.ShouldContain("original statistics");
        Should.Throw<ArgumentException>(() => new TransportCloakerFactory().Build(Snapshot(3, [stats], [stats]))).Message.ShouldContain("dimension 3");
    }

    [Fact]
    public void ColdStoreEqualisesEveryClassToTheOriginalGlobalGaussian()
    {
        // No served population yet: the cloaker falls back to sending each class to the attribute's original global fit.
        var rng = new Random(8);
        const int d = 4;
        var originalMeans = new[] { RandomVector(rng, d), RandomVector(rng, d) };
        var covs = new[] { RandomSpd(rng, d), RandomSpd(rng, d) };
        var original = Stats("gender", [500, 500], originalMeans, covs);
        var empty = Stats("gender", [0, 0], [new double[d], new double[d]], [new double[d * d], new double[d * d]]);
        var cloaker = new TransportCloakerFactory(Exact).BuildTransport(Snapshot(d, [empty], [original]));
        cloaker.Maps[0].ServedTarget.ShouldBeFalse();

        for (var k = 0; k < 2; k++)
        {
            const int n = 40_000;
            var samples = Sample(rng, originalMeans[k], covs[k], n);
            for (var r = 0; r < n; r++)
                cloaker.Cloak(samples.AsSpan(r * d, d), [k], samples.AsSpan(r * d, d)).ProtectedMask.ShouldBe(1u);
            var (mean, cov) = Moments(samples, d);
            MaxAbsDifference(mean, original.GlobalMean).ShouldBeLessThan(0.05);
            MaxAbsDifference(cov, original.GlobalCovariance).ShouldBeLessThan(0.06);
        }
    }

    [Fact]
    public void EmptyStoreServesZerosNeverTheOriginal()
    {
        const int d = 3;
        var attributes = new[] { new AttributeSpec("gender", ["F", "M"]) };
        var served = new ClassStatisticsAccumulator(d, attributes);
        var originals = new ClassStatisticsAccumulator(d, attributes);
        var cloaker = new TransportCloakerFactory().Build(ClassStatisticsAccumulator.Combine(served, originals, Version));
        var x = new float[] { 1, 2, 3 };
        var y = new float[d];
        cloaker.Cloak(x, [1], y).ProtectedMask.ShouldBe(1u);
        y.ShouldBe([0f, 0f, 0f]);
    }

    [Fact]
    public void AccumulatorMatchesDirectMomentsAndRemovalUndoesAddition()
    {
        var rng = new Random(9);
        const int d = 5;
        var attributes = new[] { new AttributeSpec("gender", ["F", "M"]), new AttributeSpec("age", ["young", "mid", "old"]) };
        var rows = Sample(rng, RandomVector(rng, d), RandomSpd(rng, d), 200);
        var labels = new[] { Enumerable.Range(0, 200).Select(i => i % 2).ToArray(), Enumerable.Range(0, 200).Select(i => i % 7 == 0 ? -1 : i % 3).ToArray() };
        var acc = new ClassStatisticsAccumulator(d, attributes);
        acc.AddAll(new EmbeddingMatrix(200, d, rows), labels);
        var snap = acc.Snapshot();

        var members = Enumerable.Range(0, 200).Where(u => labels[1][u] == 2).ToArray();
        var (mean, cov) = Moments(members.SelectMany(u => rows.AsSpan(u * d, d).ToArray()).ToArray(), d);
        snap[1].Counts[2].ShouldBe(members.Length);
        MaxAbsDifference(snap[1].Means[2], mean).ShouldBeLessThan(1e-9);
        MaxAbsDifference(snap[1].Covariances[2], cov).ShouldBeLessThan(1e-9);
        snap[1].GlobalCount.ShouldBe(labels[1].Count(c => c >= 0));
        snap[0].GlobalCount.ShouldBe(200);

        for (var u = 0; u < 200; u++) acc.Add(rows.AsSpan(u * d, d), [labels[0][u], labels[1][u]], -1);
        acc.Snapshot().ShouldAllBe(a => a.GlobalCount == 0);
    }

    /// <summary>Class statistics from exact parameters; the global fit by the law of total covariance.</summary>
    internal static ClassStatisticsSnapshot Stats(string name, long[] counts, double[][] means, double[][] covariances)
    {
        var d = means[0].Length;
        var total = counts.Sum();
        var globalMean = new double[d];
        var globalCov = new double[d * d];
        if (total > 0)
        {
            for (var k = 0; k < counts.Length; k++)
                for (var i = 0; i < d; i++) globalMean[i] += counts[k] * means[k][i] / total;
            for (var k = 0; k < counts.Length; k++)
            {
                var w = (double)counts[k] / total;
                for (var i = 0; i < d; i++)
                    for (var j = 0; j < d; j++)
                        globalCov[i * d + j] += w * (covariances[k][i * d + j] + (means[k][i] - globalMean[i]) * (means[k][j] - globalMean[j]));
            }
        }
        return new ClassStatisticsSnapshot(name, counts.Select((_, k) => $"c{k}").ToArray(), counts, means, covariances, total, globalMean, globalCov);
    }

    internal static StatisticsSnapshot Snapshot(int d, IReadOnlyList<ClassStatisticsSnapshot> served, IReadOnlyList<ClassStatisticsSnapshot> originals) =>
        new(Version, d, served) { Originals = originals };

    [Fact]
    public void A_small_class_whose_offset_is_within_its_sampling_noise_is_not_moved_class_specifically()
    {
        // Issue 13: a class of 5 users whose original offset is no larger than the sampling noise of 5 users has
        // nothing to hide; moving a new user of it by the shift its bootstrap received would hand the user a shared
        // offset the class never had. A large class with a real offset keeps its shift.
        var rng = new Random(11);
        const int d = 8;
        var cov = new double[d * d];
        for (var i = 0; i < d; i++) cov[i * d + i] = 1;
        double[] Scaled(double[] v, double length)
        {
            var norm = Math.Sqrt(v.Sum(x => x * x));
            return v.Select(x => x / norm * length).ToArray();
        }
        var real = RandomVector(rng, d, 1.0);
        // Originals: opposite real offsets for the two large classes (population mean about 0), a noise-sized one
        // (|offset|^2 = d / n_k in unit within-class variance) for the small class.
        var originalMeans = new[] { real, real.Select(v => -v * 600 / 395).ToArray(), Scaled(RandomVector(rng, d), Math.Sqrt(d / 5.0)) };
        // Served: the batch equalised the large classes and gave the small one a fresh noise-sized offset.
        var servedMeans = new[] { new double[d], new double[d], Scaled(RandomVector(rng, d), Math.Sqrt(d / 5.0)) };
        var counts = new long[] { 600, 395, 5 };
        var original = Stats("occupation", counts, originalMeans, [cov, cov, cov]);
        var served = Stats("occupation", counts, servedMeans, [cov, cov, cov]);
        var options = new TransportCloakerOptions { CovarianceMaps = false, TargetOffsetScale = 1, MeanPriorUsers = 0 };
        var shrunk = new TransportCloakerFactory(options).BuildTransport(Snapshot(d, [served], [original]));
        var plain = new TransportCloakerFactory(options with { ClassShiftShrinkage = 0 }).BuildTransport(Snapshot(d, [served], [original]));

        var x = RandomVector(rng, d).Select(v => (float)v).ToArray();
        float[] Cloak(TransportCloaker c, int k)
        {
            var y = new float[d];
            c.Cloak(x, [k], y);
            return y;
        }
        double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (p, q) => (double)(p - q) * (p - q)).Sum());
        var none = Cloak(shrunk, -1); // no class-specific move: the population-wide part only
        Distance(Cloak(plain, 2), none).ShouldBeGreaterThan(0.5);     // without shrinkage the small class is moved
        Distance(Cloak(shrunk, 2), none).ShouldBeLessThan(1e-5);      // with it, not
        Distance(Cloak(shrunk, 0), Cloak(plain, 0)).ShouldBeLessThan(0.02 * Distance(Cloak(plain, 0), none)); // real shift kept
    }

    [Fact]
    public void Classes_pinned_at_the_served_global_mean_get_a_noise_matched_draw_and_others_none()
    {
        // Issue 13, no created leakage: served class offsets pinned at zero (exact moment matching) are what a shadow
        // attacker inverts; the maps add a draw of the sampling error of each class's mean, fixed per store epoch.
        const int d = 8;
        var rng = new Random(5);
        var cov = new double[d * d];
        for (var i = 0; i < d; i++) cov[i * d + i] = 1;
        var counts = new long[] { 300, 100 };
        var original = Stats("gender", counts, [RandomVector(rng, d, 0.5), RandomVector(rng, d, 0.5)], [cov, cov]);
        var pinned = Stats("gender", counts, [new double[d], new double[d]], [cov, cov]);
        // Offsets three times as long as the sampling noise of the class means (d (1/n_k - 1/n) whitened).
        var big = RandomVector(rng, d);
        var norm = Math.Sqrt(big.Sum(v => v * v));
        var loud = big.Select(v => v / norm * Math.Sqrt(3 * d * (1.0 / 100 - 1.0 / 400))).ToArray();
        var leaky = Stats("gender", counts, [loud.Select(v => -v / 3).ToArray(), loud], [cov, cov]);

        ClassSamplingNoise.NeededShare(pinned, d, 5).ShouldAllBe(s => Math.Abs(s - 1) < 1e-9);
        ClassSamplingNoise.NeededShare(leaky, d, 5)[1].ShouldBe(0);
        var a = ClassSamplingNoise.Draw(original, d, "epoch-a");
        ClassSamplingNoise.Draw(original, d, "epoch-a")[1].ShouldBe(a[1]);           // every rebuild: the same direction
        ClassSamplingNoise.Draw(original, d, "epoch-b")[1].ShouldNotBe(a[1]);        // another store: another draw
        for (var i = 0; i < d; i++) (300 * a[0][i] + 100 * a[1][i]).ShouldBe(0, 1e-9); // centred: the population does not move
        // Its size: over many epochs, class 1's squared length averages d (1/n_1 - 1/n) in the unit within-class covariance.
        var mean = Enumerable.Range(0, 400).Average(e => ClassSamplingNoise.Draw(original, d, $"e{e}")[1].Sum(v => v * v));
        mean.ShouldBe(d * (1.0 / 100 - 1.0 / 400), 0.2 * d * (1.0 / 100 - 1.0 / 400));

        var x = RandomVector(rng, d).Select(v => (float)v).ToArray();
        float[] Cloak(ClassStatisticsSnapshot served, double noise)
        {
            var y = new float[d];
            new TransportCloakerFactory(new TransportCloakerOptions { CovarianceMaps = false, SamplingNoiseScale = noise })
                .Build(Snapshot(d, [served], [original])).Cloak(x, [1], y);
            return y;
        }
        MaxAbsDifference(Cloak(pinned, 1).Select(v => (double)v).ToArray(), Cloak(pinned, 0).Select(v => (double)v).ToArray()).ShouldBeGreaterThan(1e-3);
        MaxAbsDifference(Cloak(leaky, 1).Select(v => (double)v).ToArray(), Cloak(leaky, 0).Select(v => (double)v).ToArray()).ShouldBeLessThan(1e-6);
    }

    [Fact]
    public void An_unknown_shift_metric_is_refused_by_name()
    {
        var e = Should.Throw<ArgumentException>(() => new TransportCloakerFactory(new TransportCloakerOptions { ShiftShrinkageMetric = (ShiftShrinkageMetric)7 }));
        e.Message.ShouldContain("ShiftShrinkageMetric 7");
    }

    [Fact]
    public void The_shift_weight_measures_a_class_offset_in_the_metric_a_linear_attacker_separates_it_by()
    {
        // Embeddings with one loud shared factor (variance 25 along v = (1,..,1)/4) and quiet directions (variance 1).
        // Class 0 (50 users) sits 0.8 away from the rest along a quiet direction: a linear attacker separates it at 0.8
        // within-class standard deviations, above the sampling noise of 50 users (whitened squared length 0.64 against
        // d / n = 0.32). Per dimension the loud factor inflates every variance to 2.5 and the offset reads 0.26, under
        // the noise: that weight left the class unmoved. Class 2 (20 users) sits along v exactly as far as the sampling
        // noise of 20 users reaches (whitened 0.8 = d / n): nothing to hide, yet per dimension it reads 8 and its noise
        // was handed to every new member of the class as a shared offset.
        const int d = 16;
        var within = new double[d * d];
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++) within[i * d + j] = (i == j ? 1 : 0) + 24.0 / d;
        var quiet = Enumerable.Range(0, d).Select(i => (i % 2 == 0 ? 0.8 : -0.8) / 4).ToArray();
        var loud = Enumerable.Range(0, d).Select(_ => Math.Sqrt(20) / 4).ToArray();
        var counts = new long[] { 50, 930, 20 };
        var rest = Enumerable.Range(0, d).Select(i => -(50 * quiet[i] + 20 * loud[i]) / 930).ToArray();
        var original = Stats("gender", counts, [quiet, rest, loud], [within, within, within]);
        var served = Stats("gender", counts, [new double[d], new double[d], new double[d]], [within, within, within]);
        var options = new TransportCloakerOptions { CovarianceMaps = false, TargetOffsetScale = 0, MeanPriorUsers = 0 };
        var snapshot = Snapshot(d, [served], [original]);
        var whitened = new TransportCloakerFactory(options).ShiftWeights(snapshot)!["gender"];
        var perDimension = new TransportCloakerFactory(options with { ShiftShrinkageMetric = ShiftShrinkageMetric.PerDimension }).ShiftWeights(snapshot)!["gender"];

        whitened[0].ShouldBeInRange(0.45, 0.5);  // 1 - 0.32 / 0.64
        perDimension[0].ShouldBe(0);
        whitened[2].ShouldBeLessThan(0.01);      // 1 - 0.8 / 0.8
        perDimension[2].ShouldBeGreaterThan(0.85);

        // The maps apply the weight: class 0's specific move is half of the unshrunk one.
        var x = new float[d];
        double Move(TransportCloakerOptions o)
        {
            var c = new TransportCloakerFactory(o).BuildTransport(snapshot);
            var y = new float[d];
            var none = new float[d];
            c.Cloak(x, [0], y);
            c.Cloak(x, [-1], none);
            return Math.Sqrt(y.Zip(none, (p, q) => (double)(p - q) * (p - q)).Sum());
        }
        (Move(options) / Move(options with { ClassShiftShrinkage = 0 })).ShouldBeInRange(0.45, 0.5);
    }
}
