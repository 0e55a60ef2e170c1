using AttrCloak.Audit;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace AttrCloak.Cli.Rendering;

/// <summary>The privacy table of one audit.</summary>
public static class AuditTable
{
    public static IRenderable Render(AuditResult r, string what)
    {
        var t = new Table().Border(TableBorder.Rounded)
            .Title(Markup.Escape($"Attribute inference on {what}: {r.Users} users x {r.Dimensions} dims, {r.Folds}-fold user-disjoint CV, {r.ElapsedSeconds:F1} s"))
            .Caption("balanced accuracy: chance = 1/K; worst = highest over attackers and decision rules; |adv| counts below-chance too");
        foreach (var c in new[] { "attribute", "attacker", "balanced acc", "bal. acc (prior-corrected)", "accuracy", "AUC", "advantage" })
            t.AddColumn(c is "attribute" or "attacker" ? new TableColumn(c) : new TableColumn(c).RightAligned());
        foreach (var a in r.Attributes)
        {
            var head = $"{a.Name} (K={a.ClassCount}, n={a.LabelledUsers})\nchance {a.Chance:F3}, majority {a.MajorityRate:F3}";
            var first = true;
            foreach (var s in a.Attackers)
            {
                t.AddRow(first ? Markup.Escape(head) : "", Markup.Escape(s.Attacker), $"{s.BalancedAccuracy:F3}",
                    $"{s.PriorCorrectedBalancedAccuracy:F3}", $"{s.Accuracy:F3}", s.Auc is { } auc ? $"{auc:F3}" : "-", $"{s.Advantage:+0.000;-0.000}");
                first = false;
            }
            t.AddRow("", "[bold]worst[/]", $"[bold]{a.WorstBalancedAccuracy:F3}[/]", Markup.Escape(a.WorstAttacker), "", "", $"|adv| {a.MaxAbsAdvantage:F3}");
            t.AddEmptyRow();
        }
        return t;
    }
}
