using System.Globalization;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Tools.Experiments.Research;

/// <summary>
/// <c>utility-gap</c>: how far the privacy loop's utility floor (NDCG@10 on the validation items) is from what the
/// final evaluation reads (the test items). For each mean strength of a DF cloak (ATTRCLOAK_PROTECT, 5 strata): the
/// validation and test NDCG@10 ratios, each with its paired standard error, and the correlation of the per-user
/// changes on the two items, per seed of the noise-matched draws (ATTRCLOAK_TARGET_SEEDS: the draws alone move both
/// ratios by 0.01-0.02). Needs ATTRCLOAK_MODEL (an ML-100K model directory).
/// </summary>
internal static class UtilityGapExperiment
{
    public static void Run(ExperimentContext output)
    {
        var strengths = (Environment.GetEnvironmentVariable("ATTRCLOAK_STRENGTHS") ?? "0.2,0.4,0.6,0.8,1").Split(',')
            .Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var targetSeeds = (Environment.GetEnvironmentVariable("ATTRCLOAK_TARGET_SEEDS") ?? "20250519").Split(',')
            .Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var (_, model, split, attributes) = ResearchInputs.Load();
        var validation = UtilityEvaluator.Ndcg10PerUser(model.Users, model.Items, split.ValidationCandidates);
        var test = UtilityEvaluator.Ndcg10PerUser(model.Users, model.Items, split.TestCandidates);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"original NDCG@10: validation {validation.Where(v => !double.IsNaN(v)).Average():0.0000}, test {test.Where(v => !double.IsNaN(v)).Average():0.0000}"));
        output.WriteLine("strength  seed  validation ratio +/- SE   test ratio +/- SE   test - validation   correlation of per-user changes");
        foreach (var seed in targetSeeds)
        foreach (var s in strengths)
        {
            var options = new CloakOptions
            {
                Mode = CloakMode.DataFree, Target = EqualisationTarget.NoiseMatched, ExactMeans = true, Strata = 5, TargetSeed = seed,
                AttributeStrengths = attributes.ToDictionary(a => a.Attribute.Name, _ => new AttributeStrength(s, 0), StringComparer.OrdinalIgnoreCase),
            };
            var cloaked = new Cloaker().Cloak(model.Users, attributes, options, null, null, output.CancellationToken).Embeddings;
            var cv = UtilityEvaluator.Ndcg10PerUser(cloaked, model.Items, split.ValidationCandidates);
            var ct = UtilityEvaluator.Ndcg10PerUser(cloaked, model.Items, split.TestCandidates);
            var (v, t) = (PairedRatio.Of(validation, cv), PairedRatio.Of(test, ct));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{s,-8}  {seed,-4}  {v.Ratio:0.000} +/- {v.StandardError:0.000}         {t.Ratio:0.000} +/- {t.StandardError:0.000}     {t.Ratio - v.Ratio:+0.000;-0.000}              {Correlation(Changes(validation, cv), Changes(test, ct)):0.00}"));
        }
    }

    private static double[] Changes(double[] original, double[] cloaked) =>
        original.Select((o, u) => double.IsNaN(o) ? 0 : cloaked[u] - o).ToArray();

    private static double Correlation(double[] a, double[] b)
    {
        double ma = a.Average(), mb = b.Average(), sab = 0, saa = 0, sbb = 0;
        for (var i = 0; i < a.Length; i++) { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) * (a[i] - ma); sbb += (b[i] - mb) * (b[i] - mb); }
        return sab / Math.Sqrt(saa * sbb);
    }
}
