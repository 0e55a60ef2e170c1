using AttrCloak.Core.Data;
using AttrCloak.Audit;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Tools.Benchmarks;

namespace AttrCloak.Streaming.Tests.Cloaking;

/// <summary>
/// The same users re-cloaked again and again, the maps rebuilt from served statistics that contain them (the soak's
/// situation; the repeated-updates experiment of AttrCloak.Tools.Experiments is the long version with the mlp attacker): the displacement
/// must settle and the attack stay near the DF seed's. The targets before the fix (served class and global
/// covariances) fail the same bars, so the test can fail.
/// </summary>
[Collection(RunsAlone.Name)]
public sealed class RepeatedUpdateTests
{
    [Fact]
    public void RepeatedReCloaksOfTheSameUsersDoNotDriftTowardsLeakage()
    {
        const int Users = 1000, Dimension = 16, Rounds = 6;
        var ct = TestContext.Current.CancellationToken;
        var catalog = BenchmarkRig.Catalog;
        var population = BenchmarkPopulation.Create(Users, Dimension, catalog);
        var originals = RepeatedUpdateRun.Matrix(population.Originals, Dimension);
        var labels = catalog.Select((_, a) => population.Classes.Select(c => c[a]).ToArray()).ToArray();
        var seeded = new Cloaker().Cloak(originals, catalog.Select((a, i) => new LabeledAttribute(a, labels[i])).ToArray(),
            StreamingReplay.DataFreePreset, ct: ct).Embeddings;
        var audited = catalog.Select((a, i) => new AuditedAttribute(a.Name, a.ClassCount, labels[i])).ToArray();
        // lr and the mlp, both directions: the signed balanced accuracy - chance of the attacker and decision rule
        // furthest from chance (the mlp reads second moments, which exact covariance matching inverts).
        var audit = new AuditOptions { Seed = 1, Attackers = ["lr", "mlp"], MaxThreads = 2 };
        double[] WorstBa(AttrCloak.Core.Data.EmbeddingMatrix m) =>
            PrivacyAudit.Run(m, audited, audit, ct: ct).Attributes.Select(a => a.WorstCell().SignedAdvantage).ToArray();

        (double Msd2, double MsdLast, double[] Ba) Run(TransportCloakerOptions options)
        {
            var run = new RepeatedUpdateRun(population, seeded, new TransportCloakerFactory(options), rebuildEvery: 250, seed: 5);
            run.Round();
            run.Round();
            var msd2 = StreamingReplay.MeanSquaredDisplacement(run.Served, originals);
            for (var r = 2; r < Rounds; r++) run.Round();
            return (msd2, StreamingReplay.MeanSquaredDisplacement(run.Served, originals), WorstBa(run.Served));
        }

        var baSeed = WorstBa(seeded);
        var fixedTargets = Run(new TransportCloakerOptions());
        var servedTargets = Run(new TransportCloakerOptions { TargetCovarianceScale = 1, CovarianceAnchor = 0, ClassShiftShrinkage = 0, SamplingNoiseScale = 0, CovarianceNoiseScale = 0 });
        var noCovarianceDraws = Run(new TransportCloakerOptions { CovarianceNoiseScale = 0 });
        var f = System.Globalization.CultureInfo.InvariantCulture;
        TestContext.Current.TestOutputHelper?.WriteLine(string.Create(f,
            $"worst signed advantage seed {string.Join("/", baSeed.Select(v => v.ToString("F3", f)))}; after {Rounds} rounds: default {string.Join("/", fixedTargets.Ba.Select(v => v.ToString("F3", f)))} " +
            $"(without covariance draws {string.Join("/", noCovarianceDraws.Ba.Select(v => v.ToString("F3", f)))}) " +
            $"msd {fixedTargets.Msd2:F3} -> {fixedTargets.MsdLast:F3}; served covariance targets {string.Join("/", servedTargets.Ba.Select(v => v.ToString("F3", f)))} msd {servedTargets.Msd2:F3} -> {servedTargets.MsdLast:F3}"));

        // Settling: rounds 3-6 add little displacement (measured 1.20x; the fed-back targets: 1.58x and accelerating).
        fixedTargets.MsdLast.ShouldBeLessThan(1.35 * fixedTargets.Msd2, "the default targets must not inflate the served population round after round");
        servedTargets.MsdLast.ShouldBeGreaterThan(1.35 * servedTargets.Msd2, "the fed-back targets must fail this bar, else it proves nothing");
        for (var a = 0; a < catalog.Length; a++)
        {
            var bar = Math.Abs(baSeed[a]) + 0.035;
            fixedTargets.Ba[a].ShouldBeLessThanOrEqualTo(bar, $"{catalog[a].Name}: repeated re-cloaks must stay as private as the DF seed");
            // Both directions (issue 13): re-cloaks that pin the served class offsets or covariances leave the attackers
            // systematically wrong, which an attacker inverts.
            fixedTargets.Ba[a].ShouldBeGreaterThanOrEqualTo(-bar, $"{catalog[a].Name}: repeated re-cloaks must not leave the classes inverted");
        }
        // The control: exact covariance matching (no covariance draws) must fail the lower bar, else it proves nothing.
        noCovarianceDraws.Ba.Min().ShouldBeLessThan(-(Math.Abs(baSeed.Min()) + 0.035), "without the covariance draws the classes must read inverted");
    }
}
