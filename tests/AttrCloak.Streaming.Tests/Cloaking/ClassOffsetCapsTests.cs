using AttrCloak.Core.Data;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Statistics;
using AttrCloak.Streaming.Tests.Adversarial;

namespace AttrCloak.Streaming.Tests.Cloaking;

/// <summary>The class offset caps of re-seatings: what a seating records, and what a later re-seating may remove.</summary>
public sealed class ClassOffsetCapsTests
{
    private const int D = 4;
    private static readonly AttributeSpec[] Catalog = [new("group", ["signal", "noise", "other"])];

    /// <summary>Class 0 offset by +2 in the first value, class 1 by -2, class 2 none (the global mean is 0); unit Gaussian noise.</summary>
    private static void AddHonest(ClassStatisticsAccumulator original, Random rng, int perClass)
    {
        for (var k = 0; k < 3; k++)
            for (var u = 0; u < perClass; u++)
            {
                var x = Enumerable.Range(0, D).Select(_ => (float)PoisoningScenario.Gaussian(rng)).ToArray();
                x[0] += k switch { 0 => 2, 1 => -2, _ => 0 };
                original.Add(x, [k]);
            }
    }

    private static StatisticsSnapshot Snapshot(ClassStatisticsAccumulator original) =>
        ClassStatisticsAccumulator.Combine(original, original, new StatisticsVersion("caps", 1));

    [Fact]
    public void A_seating_records_the_signal_beyond_noise_and_honest_growth_re_seats_without_floors()
    {
        var rng = new Random(1);
        var original = new ClassStatisticsAccumulator(D, Catalog);
        AddHonest(original, rng, 200);
        var caps = ClassOffsetCaps.Measure(Snapshot(original))["group"];
        caps[0].ShouldBeGreaterThan(4, "a real offset of 2 whitened units (squared 4) is recorded, with its headroom");
        caps[2].ShouldBeLessThan(0.1, "an offset within its sampling noise records (almost) no signal");

        // Twice the users from the same population: the signal class is removed whole, as a first seating would.
        AddHonest(original, rng, 200);
        var floors = ClassOffsetCaps.KeepFloors(Snapshot(original), ClassOffsetCaps.Measure(Snapshot(original)))["group"];
        floors[0].ShouldBe(0);
        ClassOffsetCaps.KeepFloors(Snapshot(original), new Dictionary<string, double[]> { ["group"] = caps })["group"][0].ShouldBe(0);
    }

    [Fact]
    public void A_coalition_that_moves_a_class_after_its_seating_cannot_have_a_re_seating_remove_the_offset_it_made()
    {
        var rng = new Random(2);
        var original = new ClassStatisticsAccumulator(D, Catalog);
        AddHonest(original, rng, 200);
        var caps = ClassOffsetCaps.Measure(Snapshot(original));
        // 2 % Sybils join the class without signal, far out: its offset is now theirs.
        for (var a = 0; a < 12; a++) original.Add([0, 0, 11, 11], [2]);
        var floors = ClassOffsetCaps.KeepFloors(Snapshot(original), caps)["group"];
        floors[2].ShouldBeGreaterThan(0.5, "the poisoned class keeps most of the offset the coalition made");
        floors[0].ShouldBe(0);
        floors[1].ShouldBe(0);

        // A re-seating records no larger signal than before, so the coalition cannot raise it by re-seating either.
        var carried = ClassOffsetCaps.Carried(ClassOffsetCaps.Measure(Snapshot(original)), caps)!;
        carried["group"][2].ShouldBe(caps["group"][2]);
        ClassOffsetCaps.Carried(caps, null).ShouldBeSameAs(caps);
    }
}
