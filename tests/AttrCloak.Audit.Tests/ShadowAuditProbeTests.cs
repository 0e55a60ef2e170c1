using AttrCloak.Core.Data;

namespace AttrCloak.Audit.Tests;

public sealed class ShadowAuditProbeTests
{
    [Fact]
    public void The_reading_carries_the_signed_value_of_its_worst_cell()
    {
        var rng = new Random(2);
        var gender = Enumerable.Range(0, 400).Select(_ => rng.Next(2)).ToArray();
        var x = SyntheticEmbeddings.Gaussian(8, 2, 1.5, (gender, 2));
        var options = new ShadowAuditOptions { Attackers = ["lr"], NoisePermutations = 1 };
        var reading = new ShadowAuditProbe([new AuditedAttribute("gender", 2, gender)], options).Measure(x, TestContext.Current.CancellationToken);
        reading.WorstAbsAdvantage[0].ShouldBeGreaterThan(0.2);
        reading.WorstSignedAdvantage.ShouldNotBeNull();
        reading.WorstSignedAdvantage[0].ShouldBe(reading.WorstAbsAdvantage[0], 1e-12);

        // On noise the worst cell may fall on either side of chance; its magnitude is still the reading.
        var noise = SyntheticEmbeddings.Gaussian(8, 3, 0.0, (gender, 2));
        var flat = new ShadowAuditProbe([new AuditedAttribute("gender", 2, gender)], options).Measure(noise, TestContext.Current.CancellationToken);
        Math.Abs(flat.WorstSignedAdvantage![0]).ShouldBe(flat.WorstAbsAdvantage[0], 1e-12);
    }

    [Fact]
    public void The_second_audit_uses_other_folds_reads_the_same_signal_and_keeps_the_noise_floor_of_the_first()
    {
        var rng = new Random(3);
        var gender = Enumerable.Range(0, 400).Select(_ => rng.Next(2)).ToArray();
        var x = SyntheticEmbeddings.Gaussian(8, 4, 0.4, (gender, 2));
        var probe = new ShadowAuditProbe([new AuditedAttribute("gender", 2, gender)], new ShadowAuditOptions { Attackers = ["lr"], NoisePermutations = 1 });
        var ct = TestContext.Current.CancellationToken;
        var first = probe.Measure(x, ct);
        var second = ((AttrCloak.Learning.Unlearning.IPrivacyProbe)probe).Confirm(x, ct).ShouldNotBeNull();
        var again = probe.Measure(x, ct);
        again.WorstAbsAdvantage[0].ShouldBe(first.WorstAbsAdvantage[0], 1e-12); // the loop's own folds are fixed
        second.WorstAbsAdvantage[0].ShouldNotBe(first.WorstAbsAdvantage[0]);     // other folds, other fits
        second.WorstAbsAdvantage[0].ShouldBe(first.WorstAbsAdvantage[0], 0.1);   // the same signal within an audit's noise at 400 users
        second.NoiseFloor.ShouldBe(first.NoiseFloor);
    }
}
