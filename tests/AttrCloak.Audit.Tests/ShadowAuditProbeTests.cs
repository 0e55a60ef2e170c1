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
}
