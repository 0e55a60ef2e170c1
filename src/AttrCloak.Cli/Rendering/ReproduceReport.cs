using System.Text.Json;
using System.Text.Json.Serialization;
using AttrCloak.Cli.Experiments;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace AttrCloak.Cli.Rendering;

/// <summary>The paper-style tables of `reproduce`: privacy per attribute and attacker, utility, time.</summary>
public static class ReproduceReport
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static IEnumerable<IRenderable> Render(ReproduceResult r)
    {
        var methods = r.Runs.Select(x => x.Method).Distinct().ToArray();
        var backbone = r.Backbone.ToString().ToLowerInvariant();
        var seedsNote = r.Seeds.Count == 1 ? "1 seed" : $"mean ± std over {r.Seeds.Count} seeds";

        // 1. Headline: worst-attacker balanced accuracy per attribute, utility ratio, the paper beside.
        var headline = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{r.Dataset}[/] · {backbone} · {r.Users} users · {seedsNote}")
            .Caption("Headline = worst |balanced accuracy - chance| over all attackers and both decision rules, in BOTH directions " +
                     "(below chance is leakage too; lower is better), the highest balanced accuracy beside it. " +
                     "Paper = XGBoost / MLP plain accuracy from its Table IV/VII.");
        headline.AddColumn("method");
        foreach (var a in r.Attributes)
        {
            var chance = r.Runs[0].Privacy.Attributes.First(x => x.Name == a).Chance;
            headline.AddColumn(new TableColumn($"{a}\n[grey]chance {chance:F3}[/]").RightAligned());
            headline.AddColumn(new TableColumn($"paper {a}").RightAligned());
        }
        headline.AddColumn(new TableColumn("NDCG@10 vs Original").RightAligned());
        headline.AddColumn(new TableColumn("paper").RightAligned());
        var originalNdcg = Stat.Of(r.Runs.Where(x => x.Method == ReproduceResult.Original).Select(x => x.Utility.Ndcg10)).Mean;
        foreach (var m in methods)
        {
            var runs = r.Runs.Where(x => x.Method == m).ToArray();
            var cells = new List<string> { m };
            foreach (var a in r.Attributes)
            {
                cells.Add("|adv| " + Stat.Of(runs.Select(x => x.Privacy.Attributes.First(y => y.Name == a).MaxAbsAdvantage)).Format() +
                    " (bal " + Stat.Of(runs.Select(x => x.Privacy.Attributes.First(y => y.Name == a).WorstBalancedAccuracy)).Format() + ")");
                cells.Add(PaperFigures.Attack(r.Dataset, backbone, m, a) ?? "-");
            }
            cells.Add(Stat.Of(runs.Select(x => x.Utility.Ndcg10 / originalNdcg)).Format() + "x");
            cells.Add(PaperFigures.Ndcg10Ratio(r.Dataset, backbone, m) is { } p ? $"{p:F3}x" : "-");
            headline.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        yield return headline;

        // 1b. The privacy-target loop's outcome per seed and method.
        var loops = r.Runs.Where(x => x.Target is not null).ToArray();
        if (loops.Length > 0)
        {
            var lt = new Table().Border(TableBorder.Simple).Title("Privacy-target loop (shadow audits with their own folds)");
            lt.AddColumn("seed");
            lt.AddColumn("method");
            lt.AddColumn("outcome");
            foreach (var x in loops) lt.AddRow($"{x.Seed}", Markup.Escape(x.Method), Markup.Escape(x.Target!));
            yield return lt;
        }

        // 2. Every attacker, per attribute.
        foreach (var a in r.Attributes)
        {
            var first = r.Runs[0].Privacy.Attributes.First(x => x.Name == a);
            var t = new Table().Border(TableBorder.Simple)
                .Title($"{a}: balanced accuracy per attacker (K={first.ClassCount}, chance {first.Chance:F3}, majority {first.MajorityRate:F3})");
            t.AddColumn("method");
            var attackers = first.Attackers.Select(s => s.Attacker).ToArray();
            foreach (var name in attackers) t.AddColumn(new TableColumn(name).RightAligned());
            t.AddColumn(new TableColumn("worst").RightAligned());
            t.AddColumn(new TableColumn("max |adv|").RightAligned());
            t.AddColumn(new TableColumn("accuracy (worst)").RightAligned());
            t.AddColumn(new TableColumn("AUC (worst)").RightAligned());
            foreach (var m in methods)
            {
                var audits = r.Runs.Where(x => x.Method == m).Select(x => x.Privacy.Attributes.First(y => y.Name == a)).ToArray();
                var cells = new List<string> { m };
                foreach (var name in attackers)
                    cells.Add(Stat.Of(audits.Select(x => x.Attackers.First(s => s.Attacker == name).BalancedAccuracy)).Format());
                cells.Add(Stat.Of(audits.Select(x => x.WorstBalancedAccuracy)).Format());
                cells.Add(Stat.Of(audits.Select(x => x.MaxAbsAdvantage)).Format());
                cells.Add(Stat.Of(audits.Select(x => x.Attackers.Max(s => s.Accuracy))).Format());
                cells.Add(Stat.Of(audits.Select(x => x.Attackers.Max(s => s.Auc ?? double.NaN)).Where(v => !double.IsNaN(v))).Format());
                t.AddRow(cells.Select(Markup.Escape).ToArray());
            }
            yield return t;
        }

        // 3. Utility at 5 and 10.
        var u = new Table().Border(TableBorder.Simple).Title("Recommendation utility (leave-one-out, 99 sampled negatives)");
        foreach (var c in new[] { "method", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "unlearning s" })
            u.AddColumn(c == "method" ? new TableColumn(c) : new TableColumn(c).RightAligned());
        foreach (var m in methods)
        {
            var runs = r.Runs.Where(x => x.Method == m).ToArray();
            u.AddRow(Markup.Escape(m), Stat.Of(runs.Select(x => x.Utility.Hr5)).Format(), Stat.Of(runs.Select(x => x.Utility.Hr10)).Format(),
                Stat.Of(runs.Select(x => x.Utility.Ndcg5)).Format(), Stat.Of(runs.Select(x => x.Utility.Ndcg10)).Format(),
                m == ReproduceResult.Original ? "-" : Stat.Of(runs.Select(x => x.CloakSeconds)).Format("F2"));
        }
        yield return u;

        // 4. Where the time went.
        var time = new Table().Border(TableBorder.Simple).Title($"Wall time per phase (all {r.Seeds.Count} seeds)");
        time.AddColumn("phase");
        time.AddColumn(new TableColumn("seconds").RightAligned());
        foreach (var (phase, seconds) in r.PhaseSeconds) time.AddRow(phase, $"{seconds:F2}");
        time.AddRow("[bold]total[/]", $"[bold]{r.PhaseSeconds.Values.Sum():F2}[/]");
        yield return time;
    }

    public static void WriteJson(ReproduceResult result, string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        File.WriteAllText(path, JsonSerializer.Serialize(result, Json));
    }
}
