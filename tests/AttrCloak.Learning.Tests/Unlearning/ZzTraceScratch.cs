using System.Globalization;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Learning.Tests.Unlearning;

public sealed class ZzTraceScratch
{
    [Fact]
    public void Trace()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("ATTRCLOAK_PROFILE") == "1", "scratch");
        TorchRuntime.EnsureInitialised();
        var log = new List<string>();
        var (e, attributes) = Synthetic.Users(400, 16, [2, 4], shift: 1.5, seed: 42);
        log.Add("before " + string.Join(" ", attributes.Select(a => Synthetic.NearestMeanBalancedAccuracy(e, a).ToString("F3", CultureInfo.InvariantCulture))));
        foreach (var (lr, ridge, amin) in new[] { (0.05, 1e-3, 0.1), (0.1, 1e-3, 0.1), (0.2, 1e-3, 0.1), (0.1, 1.0, 0.1) })
        {
            var r = new Cloaker().Cloak(e, attributes, new CloakOptions { LearningRate = lr, MaxIterations = 100, ConvergenceTolerance = 0, Ridge = CovarianceRidge.Relative(ridge), AlphaMin = amin, PrivacyTarget = PrivacyTarget.Chance(1.0) }, ct: TestContext.Current.CancellationToken);
            log.Add($"lr {lr} ridge {ridge} amin {amin} stop {r.StopReason} after {r.Iterations} chance {string.Join(",", r.ChanceMeanShiftPerAttribute!)}");
            foreach (var row in r.Trace.Where(t => t.Iteration % 10 == 0))
                log.Add(string.Create(CultureInfo.InvariantCulture, $"  {row.Iteration} a={row.AlphaU:F3} LAU={row.LossAu:F4} [{string.Join(",", row.LossAuPerAttribute.Select(v => v.ToString("F4", CultureInfo.InvariantCulture)))}] LR={row.LossR:F3} gAU={row.GradNormAu:E2} ms=[{string.Join(",", row.MeanShiftPerAttribute.Select(v => v.ToString("F4", CultureInfo.InvariantCulture)))}]"));
            log.Add("  after " + string.Join(" ", attributes.Select(a => Synthetic.NearestMeanBalancedAccuracy(r.Embeddings, a).ToString("F3", CultureInfo.InvariantCulture))) + $" rel {Synthetic.RelativeChange(e, r.Embeddings):F3}");
        }
        File.WriteAllLines("/tmp/attrcloak-trace.txt", log);
    }
}
