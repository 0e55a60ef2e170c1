using System.Diagnostics;
using AttrCloak.Audit;
using AttrCloak.Audit.Attackers;
using AttrCloak.Tools.Samples;

namespace AttrCloak.Tools.Experiments.Audit;

/// <summary>
/// <c>audit</c>: wall and CPU time of an ML-100K-sized audit (943 users x 64 dims; gender/age/occupation with the
/// ML-100K class counts): the full audit, then each attacker alone (about 2 minutes). Prints figures, asserts
/// nothing.
/// </summary>
internal static class AuditBenchmark
{
    // ML-100K marginals (u.user): gender M/F, age buckets <18..56+, the 21 occupations.
    private static readonly int[] GenderCounts = [670, 273];
    private static readonly int[] AgeCounts = [54, 187, 310, 178, 84, 78, 52];
    private static readonly int[] OccupationCounts =
        [79, 28, 7, 95, 67, 18, 32, 16, 7, 12, 51, 26, 9, 105, 66, 14, 12, 31, 196, 27, 45];

    private static int[] Shuffled(int[] counts, Random rng)
    {
        var labels = counts.SelectMany((n, c) => Enumerable.Repeat(c, n)).ToArray();
        rng.Shuffle(labels);
        return labels;
    }

    public static void Run(ExperimentContext output)
    {
        var rng = new Random(42);
        var gender = Shuffled(GenderCounts, rng);
        var age = Shuffled(AgeCounts, rng);
        var occupation = Shuffled(OccupationCounts, rng);
        // Weak class-mean shifts: "random-ish" embeddings with some leakage, as trained ones have.
        var x = SyntheticEmbeddings.Gaussian(64, 7, 0.6, (gender, 2), (age, 7), (occupation, 21));
        AuditedAttribute[] attributes =
        [
            new("gender", 2, gender), new("age", 7, age), new("occupation", 21, occupation),
        ];

        var ct = output.CancellationToken;
        var process = Process.GetCurrentProcess();
        // CPU seconds as well as wall time: on a shared machine the wall time mostly measures the neighbours.
        (AuditResult Result, double Cpu) Timed(AuditOptions options)
        {
            process.Refresh();
            var before = process.TotalProcessorTime;
            var result = PrivacyAudit.Run(x, attributes, options, null, ct);
            process.Refresh();
            return (result, (process.TotalProcessorTime - before).TotalSeconds);
        }

        Timed(new AuditOptions { Seed = 1, Attackers = ["lr", "mlp", "lgbm"], Folds = 2 }); // warm-up (JIT, native loads)
        var (full, cpu) = Timed(new AuditOptions { Seed = 1 });
        output.WriteLine(full.ToTable());
        output.WriteLine($"full audit ({string.Join(",", AttackerCatalog.DefaultNames)}), MaxThreads {Environment.ProcessorCount}: wall {full.ElapsedSeconds:F1} s, CPU {cpu:F1} s");

        foreach (var name in AttackerCatalog.DefaultNames.Append("mlp+cal"))
        {
            var (alone, aloneCpu) = Timed(new AuditOptions { Seed = 1, Attackers = [name] });
            output.WriteLine($"  {name,-10} alone: wall {alone.ElapsedSeconds:F1} s, CPU {aloneCpu:F1} s");
        }
    }
}
