using System.Globalization;
using AttrCloak.Audit;
using AttrCloak.Cli.Experiments;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Testing;

namespace AttrCloak.Cli.Tests;

/// <summary>
/// The noise control of the evaluation protocol (docs/evaluation.md) and issue 13: i.i.d. Gaussian embeddings carry no information about anyone's
/// attributes, so after the cloak every attacker, the calibrated ones included, must still sit at chance. Labels are
/// ML-100K's when the data is present (each user's label triple repeated three times: the real joint distribution of
/// gender, age and occupation with 2,829 users, so that the chance spread of one audit, about 0.02 at 943 users, does
/// not drown the +/- 0.02 bar) and synthetic ones otherwise. The cloak is the DF preset at FULL strength on every
/// attribute, over whole classes (the stream's method) and within the principal strata (the privacy-target loop's): the
/// strongest cloak the loop can choose (on noise the loop itself would stop at 0).
/// </summary>
public sealed class NoiseControlTests
{
    private const double Bar = 0.02;
    private static readonly string[] Attackers = ["lr", "lr+cal", "mlp"];

    private static void Log(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    private static (IReadOnlyList<AuditedAttribute> Audited, IReadOnlyList<LabeledAttribute> Protected, string Source) Labels()
    {
        RecDataset data;
        string source;
        var repeat = 1;
        if (TestData.MovieLens100KDirectory is { } dir)
        {
            data = new DataSource("ml-100k", dir).Load();
            source = "ML-100K labels x3";
            repeat = 3;
        }
        else
        {
            data = new DataSource("synthetic", null, 3000).Load();
            source = $"synthetic labels (ML-100K absent: {TestData.MovieLens100KMissingReason})";
        }
        var audited = new List<AuditedAttribute>();
        var protectedAttributes = new List<LabeledAttribute>();
        for (var a = 0; a < data.Attributes.Count; a++)
        {
            var labels = Enumerable.Repeat(data.Labels[a], repeat).SelectMany(l => l).ToArray();
            audited.Add(new AuditedAttribute(data.Attributes[a].Name, data.Attributes[a].ClassCount, labels));
            protectedAttributes.Add(new LabeledAttribute(data.Attributes[a], labels));
        }
        return (audited, protectedAttributes, source);
    }

    private static string Describe(NoiseControlResult r) => string.Join(Environment.NewLine, r.Attributes.SelectMany(a =>
        a.Cloaked.Select(c => string.Create(CultureInfo.InvariantCulture,
            $"{a.Name,-10} {c.Attacker,-7} {c.Rule,-6} mean {c.MeanAdvantage:+0.000;-0.000} (draws {c.MinAdvantage:+0.000;-0.000}..{c.MaxAdvantage:+0.000;-0.000})"))));

    [Theory]
    [InlineData(1)]
    [InlineData(CloakPresets.TargetStrata)]
    public void Cloaking_noise_that_carries_no_attribute_leaves_every_attacker_at_chance(int strata)
    {
        var (audited, protectedAttributes, source) = Labels();
        // StrataEverywhere: on noise the class offsets never vary along the component, so the strata would not be used.
        // Four draws: with strata forced, the MLP's gender reading averages 0.008 below chance over 6 draws on synthetic
        // labels (range -0.019..+0.008), so two draws could land on either side of the bar by their noise alone.
        var preset = CloakPresets.DataFree with { Strata = strata, StrataEverywhere = true };
        AtChance(audited, $"{source}, DF preset at full strength, {strata} strata",
            (noise, draw) => new Cloaker().Cloak(noise, protectedAttributes, preset with { TargetSeed = preset.TargetSeed + draw },
                ct: TestContext.Current.CancellationToken).Embeddings);
    }

    [Fact]
    public void AttrCloak_OT_at_full_strength_on_noise_leaves_every_attacker_at_chance()
    {
        // The worker's Gaussian maps cross-fitted over the batch, every attribute at full strength (the strongest the
        // loop can choose): no user's own row shapes its map, so nothing in the noise is there to invert.
        var (audited, protectedAttributes, source) = Labels();
        var full = protectedAttributes.Select(_ => new AttributeStrength(1, 0)).ToArray();
        AtChance(audited, $"{source}, AttrCloak-OT at full strength",
            (noise, draw) => new CrossFittedTransport(noise, protectedAttributes, seed: 11 + draw).Run(full, TestContext.Current.CancellationToken).Embeddings);
    }

    /// <summary>Four draws of noise through <paramref name="cloak"/>; every attacker's mean signed advantage within the bar.</summary>
    private static void AtChance(IReadOnlyList<AuditedAttribute> audited, string label, Func<EmbeddingMatrix, int, EmbeddingMatrix> cloak)
    {
        var result = NoiseControl.Run(audited,
            new NoiseControlOptions { Draws = 4, Seed = 3, AuditOriginal = false, Audit = new AuditOptions { Attackers = Attackers } },
            cloak, ct: TestContext.Current.CancellationToken);
        Log($"{label}, {result.Users} users, {result.Draws} draws:");
        Log(Describe(result));
        foreach (var a in result.Attributes)
            foreach (var c in a.Cloaked)
                Math.Abs(c.MeanAdvantage).ShouldBeLessThanOrEqualTo(Bar, $"{a.Name} {c.Attacker} {c.Rule}:{Environment.NewLine}{Describe(result)}");
    }

    [Fact]
    public void The_control_catches_exact_empirical_moment_matching()
    {
        // The same control must fail the slides' targets (every class exactly onto the global fit), or passing it
        // above would mean nothing.
        var (audited, protectedAttributes, source) = Labels();
        var result = NoiseControl.Run(audited,
            new NoiseControlOptions { Draws = 1, Seed = 3, AuditOriginal = false, Audit = new AuditOptions { Attackers = ["lr"] } },
            (noise, _) => new Cloaker().Cloak(noise, protectedAttributes, CloakPresets.DataFreeV1, ct: TestContext.Current.CancellationToken).Embeddings,
            ct: TestContext.Current.CancellationToken);
        Log($"{source}, old DF defaults:");
        Log(Describe(result));
        // Measured: LR with the prior-corrected decision 0.045 / 0.052 / 0.030 below chance (gender / age / occupation)
        // at this size (at ML-100K's own 943 users: 0.11-0.21); the new preset's worst cell above is 0.010.
        result.Worst.ShouldBeGreaterThan(2 * Bar, Describe(result));
    }
}
