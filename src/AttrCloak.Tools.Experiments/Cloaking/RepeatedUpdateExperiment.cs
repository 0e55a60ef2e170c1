using System.Globalization;
using System.Text;
using AttrCloak.Audit;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Statistics;
using AttrCloak.Tools.Benchmarks;

namespace AttrCloak.Tools.Experiments.Cloaking;

/// <summary>
/// <c>repeated-updates</c>: does the streaming re-cloak stay private when the SAME users are re-cloaked again and
/// again (the soak: every user ~18 times in 90 s), with the maps rebuilt from served statistics that the re-cloaked
/// users themselves changed? In process, no Kafka/Redis: the soak's synthetic population (<see cref="BenchmarkPopulation"/>, ML-1M-like catalog)
/// seeded with batch AttrCloak-DF as <c>attrcloak bootstrap</c> does, then rounds of update events (each user once per
/// round in random order; the soak's update generator: the user's embedding plus a small change in one value), the
/// store's statistics updated per event (old state removed, new added) and the cloaker rebuilt every
/// <see cref="RebuildEvery"/> events (the worker: after CloakerRefreshEvents changes). Prints per audited round the
/// worst signed advantage per attribute (lr and mlp, the attacker and decision rule furthest from chance, either direction), the mean squared displacement and how far the served class
/// covariances are from the served global one (about a minute per variant); also written to
/// attrcloak-repeated-update-experiment.txt in the temp folder.
/// <para>
/// Run: <c>dotnet run --project src/AttrCloak.Tools.Experiments -c Release -- repeated-updates</c>. Environment:
/// ATTRCLOAK_CLOAK_VARIANTS (comma list, default "transport"), ATTRCLOAK_ROUNDS (default 12), ATTRCLOAK_USERS (default
/// 2000), ATTRCLOAK_DIM (default 32).
/// </para>
/// </summary>
internal static class RepeatedUpdateExperiment
{
    private const int RebuildEvery = 500;

    private static readonly Dictionary<string, Func<TransportCloakerOptions>> Variants = new()
    {
        ["transport"] = () => new TransportCloakerOptions(),
        // The maps before the noise-matched class draws (ClassSamplingNoise): re-cloaks pin the served class offsets at zero.
        ["no-draws"] = () => new TransportCloakerOptions { SamplingNoiseScale = 0 },
        ["no-covariance-draws"] = () => new TransportCloakerOptions { CovarianceNoiseScale = 0 },
        ["covariance-draws-half"] = () => new TransportCloakerOptions { CovarianceNoiseScale = 0.5 },
        // The targets before the repeated-update fix: served class and global covariances (they feed back).
        ["served-cov"] = () => new TransportCloakerOptions { CovarianceAnchor = 0, TargetCovarianceScale = 1 },
        ["mean-only"] = () => new TransportCloakerOptions { CovarianceMaps = false },
        ["equalise"] = () => new TransportCloakerOptions { TargetOffsetScale = 0 },
        ["cov05"] = () => new TransportCloakerOptions { TargetCovarianceScale = 0.5 },
        ["cov0"] = () => new TransportCloakerOptions { TargetCovarianceScale = 0 },
        ["anchored"] = () => new TransportCloakerOptions { CovarianceAnchor = 1, TargetCovarianceScale = 0 },
        ["anchor05"] = () => new TransportCloakerOptions { CovarianceAnchor = 0.5, TargetCovarianceScale = 0 },
        ["anchor025"] = () => new TransportCloakerOptions { CovarianceAnchor = 0.25, TargetCovarianceScale = 0 },
        ["anchor01"] = () => new TransportCloakerOptions { CovarianceAnchor = 0.1, TargetCovarianceScale = 0 },
        ["prior256"] = () => new TransportCloakerOptions { CovariancePriorUsers = 256 },
        ["equalise-cov0"] = () => new TransportCloakerOptions { TargetOffsetScale = 0, TargetCovarianceScale = 0 },
    };

    public static void Run(ExperimentContext output)
    {
        var ct = output.CancellationToken;
        var variants = (Environment.GetEnvironmentVariable("ATTRCLOAK_CLOAK_VARIANTS") ?? "transport").Split(',', StringSplitOptions.TrimEntries);
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_ROUNDS"), out var r) ? r : 12;
        var users = int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_USERS"), out var u) ? u : 2000;
        var dim = int.TryParse(Environment.GetEnvironmentVariable("ATTRCLOAK_DIM"), out var dd) ? dd : 32;
        var lines = new StringBuilder();
        void Print(string line)
        {
            output.WriteLine(line);
            lines.AppendLine(line);
        }

        var catalog = BenchmarkRig.Catalog;
        var population = BenchmarkPopulation.Create(users, dim, catalog);
        var originals = population.Originals;
        var labels = catalog.Select((_, a) => population.Classes.Select(c => c[a]).ToArray()).ToArray();
        var audited = catalog.Select((a, i) => new AuditedAttribute(a.Name, a.ClassCount, labels[i])).ToArray();
        var audit = new AuditOptions { Seed = 1, Attackers = ["lr", "mlp"], MaxThreads = 2 };
        var seeded = new Cloaker().Cloak(RepeatedUpdateRun.Matrix(originals, dim), catalog.Select((a, i) => new LabeledAttribute(a, labels[i])).ToArray(),
            StreamingReplay.DataFreePreset, ct: ct).Embeddings;

        string Row(string name, EmbeddingMatrix served, ClassStatisticsAccumulator stats)
        {
            var result = PrivacyAudit.Run(served, audited, audit, ct: ct);
            // Both directions: the worst |advantage| over attackers and decision rules, signed (negative: the classes read inverted).
            var ba = string.Join(" ", result.Attributes.Select(a => { var (who, signed) = a.WorstCell(); return $"{signed:+0.000;-0.000}({who})"; }));
            var spread = string.Join("/", stats.Snapshot().Select(s => CovarianceSpread(s, dim).ToString("F3", CultureInfo.InvariantCulture)));
            return string.Create(CultureInfo.InvariantCulture,
                $"{name,-26} {ba}  msd {StreamingReplay.MeanSquaredDisplacement(served, RepeatedUpdateRun.Matrix(originals, dim)):F4}  cov spread {spread}");
        }

        Print($"synthetic soak population n={users} d={dim}, catalog {string.Join("/", catalog.Select(a => $"{a.Name}({a.ClassCount})"))}; rebuild every {RebuildEvery} events; " +
              $"columns: worst signed advantage per attribute (balanced accuracy - chance; chance {string.Join("/", catalog.Select(a => (1.0 / a.ClassCount).ToString("F3", CultureInfo.InvariantCulture)))}), msd, mean ||Sigma_k - Sigma_g||_F / ||Sigma_g||_F of the served classes per attribute");
        var originalStats = new ClassStatisticsAccumulator(dim, catalog);
        originalStats.AddAll(RepeatedUpdateRun.Matrix(originals, dim), labels);
        Print(Row("original", RepeatedUpdateRun.Matrix(originals, dim), originalStats));
        var seededStats = new ClassStatisticsAccumulator(dim, catalog);
        seededStats.AddAll(seeded, labels);
        Print(Row("batch DF seed", seeded, seededStats));

        foreach (var variant in variants)
        {
            if (!Variants.TryGetValue(variant, out var make))
                throw new ArgumentException($"unknown variant '{variant}'; known: {string.Join(", ", Variants.Keys)}");
            var factory = new TransportCloakerFactory(make());
            var run = new RepeatedUpdateRun(population, seeded, factory, RebuildEvery, seed: 5);
            foreach (var round in Enumerable.Range(1, rounds))
            {
                ct.ThrowIfCancellationRequested();
                run.Round();
                if (round is 1 or 2 or 4 or 8 || round == rounds || round % 8 == 0)
                    Print(Row($"{variant} round {round}", run.Served, run.ServedStats));
            }
        }
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "attrcloak-repeated-update-experiment.txt"), lines.ToString());
    }

    /// <summary>Mean over classes of ||Sigma_k - Sigma_g||_F / ||Sigma_g||_F: how distinguishable the classes' spreads are.</summary>
    private static double CovarianceSpread(ClassStatisticsSnapshot s, int d)
    {
        var g = Math.Sqrt(s.GlobalCovariance.Sum(v => v * v));
        var sum = 0.0;
        var classes = 0;
        for (var k = 0; k < s.Counts.Length; k++)
        {
            if (s.Counts[k] < 2) continue;
            var diff = 0.0;
            for (var i = 0; i < d * d; i++) diff += Math.Pow(s.Covariances[k][i] - s.GlobalCovariance[i], 2);
            sum += Math.Sqrt(diff) / g;
            classes++;
        }
        return classes == 0 ? 0 : sum / classes;
    }
}
