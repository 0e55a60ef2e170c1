using System.Text.Json;
using AttrCloak.Audit.Attackers;
using AttrCloak.Core.Data;

namespace AttrCloak.Audit.Tests;

public sealed class PrivacyAuditTests
{
    private static (EmbeddingMatrix X, AuditedAttribute[] Attributes) Data(int n = 200, int seed = 1)
    {
        var rng = new Random(seed);
        var gender = Enumerable.Range(0, n).Select(_ => rng.NextDouble() < 0.7 ? 0 : 1).ToArray();
        var age = Enumerable.Range(0, n).Select(_ => rng.Next(4)).ToArray();
        var x = SyntheticEmbeddings.Gaussian(8, seed, 1.5, (gender, 2), (age, 4));
        return (x, [new AuditedAttribute("gender", 2, gender), new AuditedAttribute("age", 4, age)]);
    }

    private static AuditResult Audit(EmbeddingMatrix x, IReadOnlyList<AuditedAttribute> attributes, AuditOptions options,
        IProgress<AuditProgress>? progress = null) =>
        PrivacyAudit.Run(x, attributes, options, progress, TestContext.Current.CancellationToken);

    private static readonly AuditOptions Fast = new() { Attackers = ["lr", "lr+cal", "lgbm"], Seed = 3 };

    [Fact]
    public void Worst_is_at_least_every_attacker_and_chance_is_one_over_k()
    {
        var (x, attributes) = Data();
        var progress = new List<AuditProgress>();
        var result = Audit(x, attributes, new AuditOptions { Seed = 3 }, new SyncProgress(progress.Add));

        result.Attributes.Count.ShouldBe(2);
        progress.Count.ShouldBe(10);
        progress.Max(p => p.CompletedCells).ShouldBe(10);
        foreach (var a in result.Attributes)
        {
            a.Chance.ShouldBe(1.0 / a.ClassCount, 1e-15);
            a.Attackers.Select(s => s.Attacker).ShouldBe(AttackerCatalog.DefaultNames);
            foreach (var s in a.Attackers)
            {
                a.WorstBalancedAccuracy.ShouldBeGreaterThanOrEqualTo(s.BalancedAccuracy);
                a.WorstBalancedAccuracy.ShouldBeGreaterThanOrEqualTo(s.PriorCorrectedBalancedAccuracy);
                a.MaxAbsAdvantage.ShouldBeGreaterThanOrEqualTo(Math.Abs(s.Advantage));
                s.Advantage.ShouldBe(s.BalancedAccuracy - a.Chance, 1e-12);
                s.Auc.ShouldNotBeNull();
            }
            // The signal is real: the worst attacker clearly beats chance and its AUC beats 0.5.
            a.WorstBalancedAccuracy.ShouldBeGreaterThan(a.Chance + 0.15);
            a.Attackers.Max(s => s.Auc!.Value).ShouldBeGreaterThan(0.7);
        }
        result.Attributes[0].MajorityRate.ShouldBe(attributes[0].Labels.Count(c => c == 0) / 200.0, 1e-12);
    }

    [Fact]
    public void Unknown_labels_are_excluded()
    {
        var (x, attributes) = Data();
        var labels = (int[])attributes[1].Labels.Clone();
        var known = new List<int>();
        for (var u = 0; u < labels.Length; u++)
            if (u % 5 == 0) labels[u] = RecDataset.UnknownLabel;
            else known.Add(u);
        // Unknown users get garbage embeddings: if they were used, the scores would change.
        var poisoned = x.Clone();
        for (var u = 0; u < labels.Length; u++)
            if (labels[u] < 0) poisoned.Row(u).Fill(1e6f);

        var withUnknown = Audit(poisoned, [attributes[1] with { Labels = labels }], Fast);
        var knownOnly = Audit(x.SelectRows(known), [new AuditedAttribute("age", 4, known.Select(u => labels[u]).ToArray())], Fast);

        withUnknown.Attributes[0].LabelledUsers.ShouldBe(known.Count);
        withUnknown.Attributes[0].Attackers.ShouldBe(knownOnly.Attributes[0].Attackers);
    }

    [Fact]
    public void A_fixed_seed_gives_identical_results_whatever_the_thread_count()
    {
        var (x, attributes) = Data(150);
        var options = new AuditOptions { Attackers = ["lr", "mlp", "lgbm+cal"], Seed = 9 };
        var a = Audit(x, attributes, options with { MaxThreads = 2 });
        var b = Audit(x, attributes, options with { MaxThreads = 1 });
        for (var i = 0; i < a.Attributes.Count; i++)
        {
            a.Attributes[i].Attackers.ShouldBe(b.Attributes[i].Attackers);
            a.Attributes[i].WorstBalancedAccuracy.ShouldBe(b.Attributes[i].WorstBalancedAccuracy);
        }
    }

    [Fact]
    public void Pure_noise_audits_near_chance()
    {
        var rng = new Random(4);
        var labels = Enumerable.Range(0, 300).Select(_ => rng.Next(3)).ToArray();
        var x = SyntheticEmbeddings.Gaussian(8, 5, 0.0, (labels, 3));
        var result = Audit(x, [new AuditedAttribute("noise", 3, labels)], Fast);
        foreach (var s in result.Attributes[0].Attackers)
            Math.Abs(s.BalancedAccuracy - 1.0 / 3).ShouldBeLessThan(0.1);
    }

    [Fact]
    public void Results_print_as_a_table_and_round_trip_through_json()
    {
        var (x, attributes) = Data(100);
        var result = Audit(x, attributes, Fast with { Attackers = ["lr"] });
        var table = result.ToTable();
        table.ShouldContain("gender");
        table.ShouldContain("WORST");
        var json = JsonSerializer.Serialize(result);
        var back = JsonSerializer.Deserialize<AuditResult>(json)!;
        back.Attributes[1].Attackers.ShouldBe(result.Attributes[1].Attackers);
    }

    [Fact]
    public void Bad_input_is_rejected_clearly()
    {
        var (x, attributes) = Data(50);
        Should.Throw<ArgumentException>(() => Audit(x, [attributes[0] with { Labels = [0, 1] }], Fast))
            .Message.ShouldContain("labels for 50");
        Should.Throw<ArgumentException>(() => Audit(x, attributes, Fast with { Attackers = ["lr", "lr"] }));
        Should.Throw<ArgumentException>(() => Audit(x, attributes, Fast with { Folds = 1 }));
    }

    /// <summary>Progress{T} posts to the thread pool; tests want the reports synchronously.</summary>
    private sealed class SyncProgress(Action<AuditProgress> report) : IProgress<AuditProgress>
    {
        private readonly Lock _gate = new();

        public void Report(AuditProgress value)
        {
            lock (_gate) report(value);
        }
    }
}
