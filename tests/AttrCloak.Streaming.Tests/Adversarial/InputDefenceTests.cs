using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Poisoning;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Tests.Adversarial;

/// <summary>The poisoning defences' pure parts: the learned input domain, the hard limits and the displacement cap.</summary>
public sealed class InputDefenceTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    private static List<float[]> Population(int users, int d, int seed, double scale = 1)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, users).Select(_ => Enumerable.Range(0, d).Select(j => (float)(j + scale * PoisoningScenario.Gaussian(rng))).ToArray()).ToList();
    }

    [Fact]
    public void Honest_users_of_the_population_are_accepted_and_far_values_are_refused_with_a_reason()
    {
        var domain = InputDomainEstimator.Learn(Population(2_000, 16, 1), T0)!;
        var options = new InputOptions();
        // Fresh honest users of the same population: (practically) never refused.
        var fresh = Population(5_000, 16, 2);
        fresh.Count(x => options.Refuses(x, domain) is not null).ShouldBeLessThan(5);

        var far = fresh[0].ToArray();
        far[3] = 3 + 13f; // 13 standard deviations in one value
        options.Refuses(far, domain)!.ShouldContain("value 3 is");
        var scaled = fresh[1].Select((v, j) => j + 3.5f * (v - j) * 4f).ToArray(); // every value moderate, the norm far
        options.Refuses(scaled, domain).ShouldNotBeNull();
        options.Refuses(new float[5], domain)!.ShouldContain("5 values");
    }

    [Fact]
    public void Below_fifty_users_there_is_no_domain_and_only_the_hard_limit_applies()
    {
        InputDomainEstimator.Learn(Population(49, 4, 1), T0).ShouldBeNull();
        var options = new InputOptions();
        options.Refuses([1e5f, 0, 0, 0], null)!.ShouldContain("MaxAbsValue");
        options.Refuses([9e3f, 0, 0, 0], null).ShouldBeNull();
        options.Refuses([float.NaN, 0, 0, 0], null).ShouldNotBeNull();
    }

    [Fact]
    public void A_minority_cannot_walk_the_domain_away_however_often_it_is_learned()
    {
        var honest = Population(1_000, 8, 3);
        var learned = InputDomainEstimator.Learn(honest, T0)!;
        // 45 % of the users at 8 scales out, each time within the last domain; the domain learned again ten times.
        for (var round = 0; round < 10; round++)
        {
            var attackers = Enumerable.Range(0, 800).Select(_ => learned.Center.Select((c, j) => c + 8 * learned.Scale[j]).ToArray()).ToList();
            learned = InputDomainEstimator.Learn([.. honest, .. attackers], T0)!;
        }
        for (var j = 0; j < 8; j++)
        {
            var column = honest.Select(x => (double)x[j]).Order().ToArray();
            learned.Center[j].ShouldBeLessThan((float)column[(int)(0.95 * column.Length)], $"dimension {j}'s center stayed inside the honest users' 95th percentile");
        }
    }

    [Fact]
    public void The_cap_pulls_a_result_back_along_its_segment_and_counts_it()
    {
        float[] x = [1, 1, 1, 1];
        float[] y = [4, 5, 1, 1]; // 5 away
        DisplacementCap.Apply(x, y, 2.5).ShouldBeTrue();
        y.ShouldBe([2.5f, 3f, 1f, 1f], tolerance: 1e-6);
        DisplacementCap.Apply(x, y, 2.5).ShouldBeFalse();

        var moves = new List<CloakMove>();
        var cloaker = new CappedCloaker(new ShiftCloaker(3f), cap: 3, moves.Add);
        var same = new float[] { 0, 0, 0, 0 };
        cloaker.Cloak(same, [0], same); // in place: the original's memory is the output's
        same.ShouldBe([1.5f, 1.5f, 1.5f, 1.5f], tolerance: 1e-6); // 6 away, pulled back to 3
        moves.Single().ShouldBe(new CloakMove(6, 1, true), "reported: the maps' move before the cap; the original's norm is 0");
        var near = new float[4];
        new CappedCloaker(new ShiftCloaker(0.5f), cap: 3, moves.Add).Cloak([1, 1, 1, 1], [0], near);
        near.ShouldAllBe(v => v == 1.5f);
        moves[1].Capped.ShouldBeFalse();
        moves[1].NormRatio.ShouldBe(1.5, 1e-9);
    }

    [Fact]
    public void The_seated_displacement_is_the_99th_percentile_and_the_cap_a_multiple_of_it()
    {
        var originals = Enumerable.Range(0, 100).Select(_ => new float[2]).ToList();
        var cloaked = Enumerable.Range(0, 100).Select(i => new float[] { i + 1, 0 }).ToList();
        DisplacementCap.Percentile99(originals, cloaked).ShouldBe(99);
        DisplacementCap.Percentile99([], []).ShouldBeNull();
        var options = new InputOptions { MaxDisplacementRatio = 1.5 };
        options.DisplacementCapOf(new SeatedDisplacement(2, 2.5)).ShouldBe(3);
        options.DisplacementCapOf(new SeatedDisplacement(2, 3.5)).ShouldBe(3.5, "the seating's own cloaks are inside the cap");
        double.IsPositiveInfinity(options.DisplacementCapOf(null)).ShouldBeTrue();
        Should.Throw<GenerationRuleException>(() => GenerationRegistry.Empty.WithSeatedDisplacement("A", new SeatedDisplacement(double.NaN, 1)));
    }

    [Fact]
    public void A_re_seating_never_widens_the_band_its_generation_had()
    {
        var options = new InputOptions { MaxDisplacementRatio = 1.5 };
        var previous = new SeatedDisplacement(2, 2.5); // cap 3
        float[][] originals = [[0, 0], [0, 0], [1, 1]];
        float[][] cloaked = [[2, 0], [0, 6], [1, 1]];
        SeatingFigures.CapReseating(previous, options, originals, cloaked).ShouldBe(1);
        cloaked[0].ShouldBe([2f, 0f], "within the cap: kept");
        cloaked[1].ShouldBe([0f, 3f], "pulled back along its segment to the previous cap");
        SeatingFigures.CapReseating(null, options, originals, [[0, 100], [0, 0], [1, 1]]).ShouldBe(0, "a first seating has no band to keep");

        // Poisoned statistics whose maps move the honest users further: the recorded figure stays the previous one.
        var carried = SeatingFigures.Carried(new SeatedDisplacement(9, 3), previous);
        carried.ShouldBe(new SeatedDisplacement(2, 3));
        options.DisplacementCapOf(carried).ShouldBeLessThanOrEqualTo(options.DisplacementCapOf(previous));
        SeatingFigures.Carried(new SeatedDisplacement(1.5, 2), previous).ShouldBe(new SeatedDisplacement(1.5, 2), "it may narrow");
        SeatingFigures.Carried(new SeatedDisplacement(9, 3), null).ShouldBe(new SeatedDisplacement(9, 3), "a first seating learns its band");

        // Shift weights: a re-seating records none above what the generation had; a first seating learns them.
        var before = new Dictionary<string, double[]> { ["occupation"] = [0.1, 0.9, 1] };
        var poisoned = new Dictionary<string, double[]> { ["occupation"] = [1, 0.5, 1], ["age"] = [0.7] };
        var carriedWeights = SeatingFigures.Carried(poisoned, before)!;
        carriedWeights["occupation"].ShouldBe([0.1, 0.5, 1]);
        carriedWeights["age"].ShouldBe([0.7], "an attribute the generation had no weights for keeps the measured ones");
        SeatingFigures.Carried(poisoned, null).ShouldBeSameAs(poisoned);
        SeatingFigures.Reseating(new Generation("A", GenerationState.Serving, 1, T0)).ShouldBeFalse();
        SeatingFigures.Reseating(new Generation("A", GenerationState.Serving, 1, T0) { Displacement = previous }).ShouldBeTrue();
    }

    [Fact]
    public void Options_outside_their_ranges_are_named()
    {
        var errors = new List<string>();
        new InputOptions { MaxDeviations = 2, MaxNormRatio = 1, MaxDisplacementRatio = 0.5, MaxAbsValue = 0, DomainRefresh = TimeSpan.Zero }.Validate(errors);
        errors.Count.ShouldBe(5);
        errors.ShouldContain(e => e.Contains("AttrCloak:Input:MaxDisplacementRatio"));
    }

    /// <summary>Moves every value by a constant.</summary>
    private sealed class ShiftCloaker(float shift) : IUserCloaker
    {
        public StatisticsVersion StatisticsVersion => default;

        public CloakOutcome Cloak(ReadOnlySpan<float> original, ReadOnlySpan<int> classes, Span<float> cloaked)
        {
            for (var j = 0; j < original.Length; j++) cloaked[j] = original[j] + shift;
            return new CloakOutcome(1);
        }
    }
}
