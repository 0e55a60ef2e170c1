using AttrCloak.Learning.Unlearning;
using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Serialization;
using AttrCloak.Audit;
using AttrCloak.Cli.Experiments;
using AttrCloak.Cli.Plots;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

public sealed class HarnessSettings : CommandSettings
{
    [CommandOption("--family <NAME>")]
    [Description("small (one synthetic member, what CI runs) or full (ML-100K with MF and LightGCN when --data is given, synthetic sets varying users, dimension, attribute strength, imbalance and class count, and the noise control).")]
    [DefaultValue("full")]
    public string Family { get; init; } = "full";

    [CommandOption("--data <DIR>")]
    [Description("MovieLens-100K folder; without it the ML-100K members are skipped (and the noise control uses synthetic labels).")]
    public string? Data { get; init; }

    [CommandOption("--members <LIST>")]
    [Description("Run only these members of the family (comma-separated names).")]
    public string? Members { get; init; }

    [CommandOption("--privacy-target <EPS>")]
    [Description("The epsilon every cloak aims for.")]
    [DefaultValue(0.03)]
    public double PrivacyTarget { get; init; } = 0.03;

    [CommandOption("--pass <EPS>")]
    [Description("A member passes when every attribute's worst |advantage| is at most this.")]
    [DefaultValue(0.05)]
    public double Pass { get; init; } = 0.05;

    [CommandOption("--df-floor <F>")]
    [Description("DF's utility floor (validation NDCG@10 ratio); a low floor shows what the target costs where 0.97 cannot hold it.")]
    [DefaultValue(0.97)]
    public double DfFloor { get; init; } = 0.97;

    [CommandOption("--dd-floor <F>")]
    [DefaultValue(0.98)]
    public double DdFloor { get; init; } = 0.98;

    [CommandOption("--attackers <LIST>")]
    [Description("The final audit's attackers (default: all six).")]
    public string? Attackers { get; init; }

    [CommandOption("--shadow-attackers <LIST>")]
    [Description("The loop's shadow attackers (default: lr,lr+cal,mlp).")]
    public string? ShadowAttackers { get; init; }

    [CommandOption("--strata <N>")]
    [Description("Equalise the class means within N strata of the embeddings' leading principal component (1 = over the whole population).")]
    [DefaultValue(CloakPresets.TargetStrata)]
    public int Strata { get; init; } = CloakPresets.TargetStrata;

    [CommandOption("--no-dd")]
    public bool NoDataDependent { get; init; }

    [CommandOption("--no-ot")]
    [Description("Skip AttrCloak-OT: the worker's Gaussian maps cross-fitted over the batch, their strength set by the same privacy-target loop.")]
    public bool NoTransport { get; init; }

    [CommandOption("--no-stream")]
    [Description("Skip the served stream: half the users bootstrapped to the target, the rest streamed through the worker's maps, audited as served.")]
    public bool NoServedStream { get; init; }

    [CommandOption("--seed <S>")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    [CommandOption("--json <FILE>")]
    public string? Json { get; init; }

    [CommandOption("--plot <FILE>")]
    [Description("PNG: worst |advantage| per member and method, with the bar.")]
    public string? Plot { get; init; }
}

/// <summary>The generalization harness of issue 13: the whole evaluation over a family of data sets, a pass/fail row each.</summary>
public sealed class HarnessCommand : Command<HarnessSettings>
{
    public override int Execute(CommandContext context, HarnessSettings s, CancellationToken cancellationToken)
    {
        if (s.Data is not null && !Directory.Exists(s.Data)) throw new UsageException($"--data {s.Data} does not exist");
        var family = s.Family.ToLowerInvariant() switch
        {
            "small" => Harness.SmallFamily(),
            "full" => Harness.FullFamily(s.Data),
            _ => throw new UsageException($"unknown --family '{s.Family}'; expected small or full"),
        };
        if (s.Members is not null)
        {
            var wanted = s.Members.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var unknown = wanted.Where(w => family.All(m => m.Name != w)).ToArray();
            if (unknown.Length > 0) throw new UsageException($"unknown member(s) {string.Join(", ", unknown)}; the family has {string.Join(", ", family.Select(m => m.Name))}");
            family = family.Where(m => wanted.Contains(m.Name)).ToArray();
        }
        var options = new HarnessOptions
        {
            Members = family,
            Epsilon = s.PrivacyTarget,
            PassEpsilon = s.Pass,
            DataFreeFloor = s.DfFloor,
            DataDependentFloor = s.DdFloor,
            Seed = s.Seed,
            SkipDataDependent = s.NoDataDependent,
            ServedStream = !s.NoServedStream,
            Transport = !s.NoTransport,
            Strata = CloakKnobs.Strata(s.Strata),
            Attackers = AuditSettings.Options(s.Attackers).Attackers,
            Shadow = s.ShadowAttackers is null ? new ShadowAuditOptions() : new ShadowAuditOptions { Attackers = AuditSettings.Options(s.ShadowAttackers).Attackers },
        };
        if (s.Data is null) AnsiConsole.MarkupLine("[yellow]no --data: the ML-100K members are skipped[/]");
        AnsiConsole.MarkupLineInterpolated($"[bold]attrcloak harness[/]: {family.Count} member(s), privacy target {s.PrivacyTarget}, pass at |adv| <= {s.Pass}, DF floor {options.DataFreeFloor}x, DD floor {options.DataDependentFloor}x NDCG@10");
        var results = new Harness(new LineHarnessProgress()).Run(options, cancellationToken);
        AnsiConsole.Write(HarnessTable.Render(results, options));
        if (s.Json is not null)
        {
            HarnessJson.Write(s.Json, options, results);
            AnsiConsole.MarkupLineInterpolated($"figures written to [blue]{s.Json}[/]");
        }
        if (s.Plot is not null)
        {
            HarnessPlot.Write(results, options, s.Plot);
            AnsiConsole.MarkupLineInterpolated($"plot [blue]{s.Plot}[/]");
        }
        var failed = results.Count(r => !r.Pass);
        AnsiConsole.MarkupLineInterpolated($"{results.Count - failed} of {results.Count} member(s) passed");
        return failed == 0 ? 0 : 1;
    }
}

/// <summary>The harness's figures as JSON (`--json`): the bar, the floors and every member's result.</summary>
public static class HarnessJson
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };

    public static void Write(string path, HarnessOptions options, IReadOnlyList<MemberResult> results)
    {
        ArgumentNullException.ThrowIfNull(options);
        File.WriteAllText(path, JsonSerializer.Serialize(new { options.Epsilon, options.PassEpsilon, options.DataFreeFloor, options.DataDependentFloor, results }, Options));
    }
}

/// <summary>Timestamped progress lines.</summary>
public sealed class LineHarnessProgress : IHarnessProgress
{
    public void Report(string line) => AnsiConsole.MarkupLineInterpolated($"[grey]{DateTime.Now:HH:mm:ss} {line}[/]");
}

/// <summary>The harness's table: a row per member and method, then the verdict.</summary>
public static class HarnessTable
{
    public static Table Render(IReadOnlyList<MemberResult> results, HarnessOptions options)
    {
        var t = new Table().Border(TableBorder.Rounded)
            .Title(Markup.Escape($"Generalization harness: worst |balanced accuracy - chance| over attackers and decision rules, both directions (signed, best AUC beside); pass at <= {options.PassEpsilon}"));
        foreach (var c in new[] { "member", "method", "attribute 1", "attribute 2", "attribute 3", "NDCG@10 (test, ± SE)", "loop", "verdict" }) t.AddColumn(c);
        foreach (var r in results)
        {
            if (r.Noise is { } noise)
            {
                var cells = noise.Attributes.Select(a => $"{a.Name} {a.WorstCloaked:F3} (noise {a.WorstOriginal:F3})").ToList();
                while (cells.Count < 3) cells.Add("");
                t.AddRow(Markup.Escape(r.Member.Name), "DF preset, full strength", Markup.Escape(cells[0]), Markup.Escape(cells[1]), Markup.Escape(cells[2]),
                    "", $"{noise.Draws} draws", Verdict(r));
                foreach (var (label, extra) in new[] { (Harness.Served, r.StreamNoise), ($"{Harness.Ot}, full strength", r.TransportNoise) })
                {
                    if (extra is null) continue;
                    var extraCells = extra.Attributes.Select(a => $"{a.Name} {a.WorstCloaked:F3}").ToList();
                    while (extraCells.Count < 3) extraCells.Add("");
                    t.AddRow("", Markup.Escape(label), Markup.Escape(extraCells[0]), Markup.Escape(extraCells[1]), Markup.Escape(extraCells[2]),
                        "", $"{extra.Draws} draws", "");
                }
                continue;
            }
            var first = true;
            foreach (var m in r.Methods)
            {
                var cells = m.Attributes.Select(a => $"{a.Attribute} {a.WorstAbsAdvantage:F3} ({a.SignedAdvantage:+0.000;-0.000}, AUC {(a.MaxAuc is { } auc ? auc.ToString("F3") : "-")})").ToList();
                while (cells.Count < 3) cells.Add("");
                var ndcg = m.Method == Harness.Original ? $"{m.Ndcg10:F4}" : $"{m.Ndcg10Ratio:F3}x ± {m.Ndcg10RatioStandardError:F3}";
                t.AddRow(first ? Markup.Escape($"{r.Member.Name}\n{r.Users} users{(r.AuditedUsers < r.Users ? $" (audit {r.AuditedUsers})" : "")}") : "",
                    Markup.Escape(m.Method), Markup.Escape(cells[0]), Markup.Escape(cells[1]), Markup.Escape(cells[2]), ndcg,
                    Markup.Escape(m.Loop ?? ""), first ? Verdict(r) : "");
                first = false;
                if (m.Method == Harness.Original && r.Chance is { } chance)
                {
                    var chanceCells = chance.Select(a => $"{a.Attribute} {a.WorstAbsAdvantage:F3}").ToList();
                    while (chanceCells.Count < 3) chanceCells.Add("");
                    t.AddRow("", "chance (permuted labels)", Markup.Escape(chanceCells[0]), Markup.Escape(chanceCells[1]), Markup.Escape(chanceCells[2]), "",
                        "the audit's resolution", "");
                }
            }
        }
        return t;
    }

    private static string Verdict(MemberResult r) => (r.Pass ? "[green]PASS[/] " : "[red]FAIL[/] ") + Markup.Escape(r.Verdict);
}
