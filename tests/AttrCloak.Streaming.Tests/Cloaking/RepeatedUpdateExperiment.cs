using System.Globalization;
using System.Text;
using AttrCloak.Audit;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Pipeline;
using AttrCloak.Streaming.Statistics;
using AttrCloak.Tools.Benchmarks;

namespace AttrCloak.Streaming.Tests.Cloaking;

/// <summary>
/// Does the streaming re-cloak stay private when the SAME users are re-cloaked again and again (the soak: every user
/// ~18 times in 90 s), with the maps rebuilt from served statistics that the re-cloaked users themselves changed? In
/// process, no Kafka/Redis: the soak's synthetic population (<see cref="BenchmarkPopulation"/>, ML-1M-like catalog)
/// seeded with batch AttrCloak-DF as <c>attrcloak bootstrap</c> does, then rounds of update events (each user once per
/// round in random order; the soak's update generator: the user's embedding plus a small change in one value), the
/// store's statistics updated per event (old state removed, new added) and the cloaker rebuilt every
/// <see cref="RebuildEvery"/> events (the worker: after CloakerRefreshEvents changes). Prints per audited round the
/// worst balanced accuracy per attribute (lr and mlp), the mean squared displacement and how far the served class
/// covariances are from the served global one. Explicit (about a minute per variant).
/// <para>
/// Run: <c>dotnet test --project tests/AttrCloak.Streaming.Tests -c Release --output detailed -- --filter-method
/// "*RepeatedUpdates*" --explicit only</c>. Environment: ATTRCLOAK_CLOAK_VARIANTS (comma list, default "transport"),
/// ATTRCLOAK_ROUNDS (default 12), ATTRCLOAK_USERS (default 2000), ATTRCLOAK_DIM (default 32).
/// </para>
/// </summary>
public sealed class RepeatedUpdateExperiment
{
    private const int RebuildEvery = 500;

    internal static readonly Dictionary<string, Func<TransportCloakerOptions>> Variants = new()
    {
        ["transport"] = () => new TransportCloakerOptions(),
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

    [Fact(Explicit = true, DisplayName = "Experiment (explicit, prints figures): repeated re-cloaks of the same users with maps rebuilt from the served statistics")]
    public void RepeatedUpdatesStayPrivate()
    {
        var output = TestContext.Current.TestOutputHelper!;
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
        var seeded = new Cloaker().Cloak(Matrix(originals, dim), catalog.Select((a, i) => new LabeledAttribute(a, labels[i])).ToArray(),
            StreamingReplay.DataFreePreset, ct: TestContext.Current.CancellationToken).Embeddings;

        string Row(string name, EmbeddingMatrix served, ClassStatisticsAccumulator stats)
        {
            var result = PrivacyAudit.Run(served, audited, audit, ct: TestContext.Current.CancellationToken);
            var ba = string.Join(" ", result.Attributes.Select(a => $"{a.WorstBalancedAccuracy:F3}({a.WorstAttacker})"));
            var spread = string.Join("/", stats.Snapshot().Select(s => CovarianceSpread(s, dim).ToString("F3", CultureInfo.InvariantCulture)));
            return string.Create(CultureInfo.InvariantCulture,
                $"{name,-26} {ba}  msd {StreamingReplay.MeanSquaredDisplacement(served, Matrix(originals, dim)):F4}  cov spread {spread}");
        }

        Print($"synthetic soak population n={users} d={dim}, catalog {string.Join("/", catalog.Select(a => $"{a.Name}({a.ClassCount})"))}; rebuild every {RebuildEvery} events; " +
              $"columns: worst BA per attribute (chance {string.Join("/", catalog.Select(a => (1.0 / a.ClassCount).ToString("F3", CultureInfo.InvariantCulture)))}), msd, mean ||Sigma_k - Sigma_g||_F / ||Sigma_g||_F of the served classes per attribute");
        var originalStats = new ClassStatisticsAccumulator(dim, catalog);
        originalStats.AddAll(Matrix(originals, dim), labels);
        Print(Row("original", Matrix(originals, dim), originalStats));
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
                run.Round();
                if (round is 1 or 2 or 4 or 8 || round == rounds || round % 8 == 0)
                    Print(Row($"{variant} round {round}", run.Served, run.ServedStats));
            }
        }
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "attrcloak-repeated-update-experiment.txt"), lines.ToString());
    }

    /// <summary>Mean over classes of ||Sigma_k - Sigma_g||_F / ||Sigma_g||_F: how distinguishable the classes' spreads are.</summary>
    internal static double CovarianceSpread(ClassStatisticsSnapshot s, int d)
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

    internal static EmbeddingMatrix Matrix(float[][] rows, int d)
    {
        var values = new float[rows.Length * d];
        for (var i = 0; i < rows.Length; i++) rows[i].CopyTo(values, i * d);
        return new EmbeddingMatrix(rows.Length, d, values);
    }
}

/// <summary>
/// The store and worker of the soak, in process: served and original statistics of a DF-seeded population, then
/// update events (each user once per <see cref="Round"/>, in random order) re-cloaked with a cloaker rebuilt every
/// <c>rebuildEvery</c> events; each event replaces the user's old state in the statistics by the new one.
/// </summary>
internal sealed class RepeatedUpdateRun
{
    private readonly BenchmarkPopulation _population;
    private readonly TransportCloakerFactory _factory;
    private readonly int _rebuildEvery;
    private readonly Random _rng;
    private readonly float[][] _currentOriginals;
    private readonly ClassStatisticsAccumulator _originalStats;
    private IUserCloaker? _cloaker;
    private long _events;
    private long _sequence;

    public RepeatedUpdateRun(BenchmarkPopulation population, EmbeddingMatrix seeded, TransportCloakerFactory factory, int rebuildEvery, int seed)
    {
        _population = population;
        _factory = factory;
        _rebuildEvery = rebuildEvery;
        _rng = new Random(seed);
        var d = seeded.Cols;
        var catalog = BenchmarkRig.Catalog;
        Served = seeded.Clone();
        _currentOriginals = population.Originals.Select(x => (float[])x.Clone()).ToArray();
        ServedStats = new ClassStatisticsAccumulator(d, catalog);
        _originalStats = new ClassStatisticsAccumulator(d, catalog);
        for (var u = 0; u < seeded.Rows; u++)
        {
            ServedStats.Add(Served.Row(u), population.Classes[u]);
            _originalStats.Add(_currentOriginals[u], population.Classes[u]);
        }
    }

    public EmbeddingMatrix Served { get; }
    public ClassStatisticsAccumulator ServedStats { get; }
    public int Builds { get; private set; }

    /// <summary>Every user once, in random order.</summary>
    public void Round()
    {
        var n = Served.Rows;
        var d = Served.Cols;
        var order = Enumerable.Range(0, n).ToArray();
        _rng.Shuffle(order);
        var cloaked = new float[d];
        foreach (var u in order)
        {
            if (_cloaker is null || _events % _rebuildEvery == 0)
            {
                _cloaker = _factory.Build(ClassStatisticsAccumulator.Combine(ServedStats, _originalStats, new StatisticsVersion("repeat", ++_sequence)));
                Builds++;
            }
            _events++;
            var classes = _population.Classes[u];
            // The soak's update: the user's embedding with one value changed by up to +-0.05 (the base does not drift).
            var original = (float[])_population.Originals[u].Clone();
            original[(int)(_events % d)] += (float)(_rng.NextDouble() - 0.5) * 0.1f;
            _cloaker.Cloak(original, classes, cloaked);
            // The store: the user's previous state leaves the statistics, the new one enters.
            ServedStats.Add(Served.Row(u), classes, -1);
            _originalStats.Add(_currentOriginals[u], classes, -1);
            cloaked.CopyTo(Served.Row(u));
            _currentOriginals[u] = original;
            ServedStats.Add(cloaked, classes);
            _originalStats.Add(original, classes);
        }
    }
}
