using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using AttrCloak.Streaming.Monitoring;

namespace AttrCloak.Deployment.Tests;

/// <summary>
/// deploy/prometheus: the rules and scrape config pass <c>promtool check</c>, the promtool unit tests (firing and
/// non-firing cases of every alert) pass, and every <c>attrcloak_*</c> metric the rules and their tests use is one the
/// worker really exports (a renamed metric would otherwise silently disable an alert).
/// </summary>
public sealed partial class PrometheusRulesTests
{
    private static readonly string PrometheusDirectory = Path.Combine(
        TestData.RepositoryRoot ?? throw new InvalidOperationException($"no {TestData.SolutionFileName} above {AppContext.BaseDirectory}"),
        "deploy", "prometheus");
    private static readonly string RulesFile = Path.Combine(PrometheusDirectory, "rules", "attrcloak.rules.yml");
    private static readonly string RulesTestFile = Path.Combine(PrometheusDirectory, "tests", "attrcloak.rules.test.yml");

    /// <summary>Every alert the issue asks for; each must exist and be covered by the promtool tests.</summary>
    private static readonly string[] RequiredAlerts =
        ["AttackAccuracyDrift", "AuditStale", "AuditFailing", "ConsumerLagGrowing", "DeadLetters", "PartitionsUnassigned", "WorkerNotReady", "WorkerDown"];

    [Fact]
    public void Promtool_check_rules_accepts_the_rules()
    {
        var output = RunPromtool("check", "rules", "rules/attrcloak.rules.yml");
        output.ShouldContain("SUCCESS");
    }

    [Fact]
    public void Promtool_check_config_accepts_the_scrape_config_and_its_rule_file()
    {
        var output = RunPromtool("check", "config", "prometheus.yml");
        output.ShouldContain("SUCCESS: 1 rule files found");
    }

    [Fact]
    public void Promtool_unit_tests_of_every_alert_pass()
    {
        var output = RunPromtool("test", "rules", "tests/attrcloak.rules.test.yml");
        output.ShouldContain("SUCCESS");
    }

    [Fact]
    public void Every_required_alert_has_a_severity_a_runbook_and_firing_and_quiet_test_cases()
    {
        var rules = File.ReadAllText(RulesFile);
        var tests = File.ReadAllText(RulesTestFile);
        var alerts = AlertName().Matches(rules).Select(m => m.Groups[1].Value).ToList();
        foreach (var alert in RequiredAlerts)
            alerts.ShouldContain(alert);
        foreach (var block in AlertBlocks(rules))
        {
            block.Text.ShouldMatch(@"severity: (warning|critical)", $"alert {block.Name} needs a severity label");
            block.Text.ShouldContain("summary:", customMessage: $"alert {block.Name} needs a summary");
            block.Text.ShouldContain("description:", customMessage: $"alert {block.Name} needs a description (what it means, what to do)");
        }
        // promtool passes a test whose alert name matches nothing, so check coverage here: every alert has a case that
        // expects it to fire (exp_alerts with entries) and one that expects silence (exp_alerts: []).
        var cases = AlertTestCase().Matches(tests).Select(m => (Name: m.Groups["name"].Value, Silent: m.Groups["expect"].Value == "[]")).ToList();
        foreach (var alert in alerts)
        {
            cases.ShouldContain(c => c.Name == alert && !c.Silent, $"no promtool case where {alert} fires");
            cases.ShouldContain(c => c.Name == alert && c.Silent, $"no promtool case where {alert} stays quiet");
        }
    }

    [Fact]
    public async Task Rules_and_their_tests_use_only_metrics_the_worker_exports()
    {
        var exported = await ExportedFamilies(new WorkerMetrics());
        exported.Count.ShouldBeGreaterThan(10, "the exposition was not parsed");

        var exprs = Expressions(File.ReadAllText(RulesFile));
        exprs.Count.ShouldBeGreaterThan(8, "the rules' expr fields were not found");
        var usedInRules = exprs.SelectMany(e => MetricName().Matches(e).Select(m => m.Value)).ToHashSet(StringComparer.Ordinal);
        // The alerts the issue asks for read these; losing one from the rules means an alert was dropped.
        foreach (var required in (string[])["attrcloak_audit_worst_advantage", "attrcloak_audit_age_seconds", "attrcloak_audit_failing",
                     "attrcloak_consumer_lag_messages", "attrcloak_dead_letters_total", "attrcloak_ready",
                     "attrcloak_assigned_partitions", "attrcloak_topic_partitions"])
            usedInRules.ShouldContain(required);

        // The promtool tests must feed the real names too, or they would test alerts on series that never exist.
        var usedInTests = SeriesName().Matches(File.ReadAllText(RulesTestFile)).Select(m => m.Groups[1].Value)
            .Where(n => n.StartsWith("attrcloak_", StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
        usedInTests.ShouldNotBeEmpty();

        var unknown = usedInRules.Concat(usedInTests).Distinct().Where(n => !IsExported(n, exported)).Order().ToList();
        unknown.ShouldBeEmpty($"not exported by WorkerMetrics (exported: {string.Join(", ", exported.Keys.Order())})");
    }

    [Fact]
    public void The_metric_name_check_rejects_unknown_names_and_bare_histogram_names()
    {
        var exported = new Dictionary<string, string> { ["attrcloak_x_seconds"] = "histogram", ["attrcloak_ready"] = "gauge" };
        IsExported("attrcloak_ready", exported).ShouldBeTrue();
        IsExported("attrcloak_x_seconds_bucket", exported).ShouldBeTrue();
        IsExported("attrcloak_x_seconds_count", exported).ShouldBeTrue();
        IsExported("attrcloak_x_seconds", exported).ShouldBeFalse();
        IsExported("attrcloak_ready_bucket", exported).ShouldBeFalse();
        IsExported("attrcloak_readiness", exported).ShouldBeFalse();
        Expressions("""
            - record: a
              expr: sum(attrcloak_one)
            - alert: B
              expr: >-
                attrcloak_two > 1
                and attrcloak_three
              for: 5m
            """).ShouldBe(["sum(attrcloak_one)", "attrcloak_two > 1 and attrcloak_three"]);
    }

    /// <summary>Metric family name to type, from the text exposition's <c># TYPE</c> lines.</summary>
    private static async Task<Dictionary<string, string>> ExportedFamilies(WorkerMetrics metrics)
    {
        using var stream = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(stream, TestContext.Current.CancellationToken);
        var families = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in Encoding.UTF8.GetString(stream.ToArray()).Split('\n'))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts is ["#", "TYPE", var name, var type])
                families[name] = type;
        }
        return families;
    }

    /// <summary>
    /// A name used in PromQL is exported when it is a family of a gauge or counter, or a histogram's (summary's)
    /// _bucket/_sum/_count series; a histogram's bare family name selects nothing.
    /// </summary>
    private static bool IsExported(string name, IReadOnlyDictionary<string, string> families)
    {
        if (families.TryGetValue(name, out var type))
            return type is not ("histogram" or "summary");
        foreach (var suffix in (string[])["_bucket", "_sum", "_count"])
        {
            if (!name.EndsWith(suffix, StringComparison.Ordinal)) continue;
            var family = families.GetValueOrDefault(name[..^suffix.Length]);
            if (family == "histogram" || (family == "summary" && suffix != "_bucket")) return true;
        }
        return false;
    }

    /// <summary>
    /// The <c>expr</c> values of a rules file: plain or quoted on one line, or a block scalar (<c>&gt;-</c>, <c>|</c>)
    /// on the more-indented lines below, joined with spaces. Enough YAML for rule files, without a YAML library.
    /// </summary>
    private static List<string> Expressions(string yaml)
    {
        var lines = yaml.Replace("\r", "").Split('\n');
        var result = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var match = ExprLine().Match(lines[i]);
            if (!match.Success) continue;
            var value = match.Groups["value"].Value.Trim();
            if (value.Length > 0 && value[0] is '>' or '|')
            {
                var indent = match.Groups["indent"].Length;
                var block = new List<string>();
                while (i + 1 < lines.Length && (lines[i + 1].Trim().Length == 0 || lines[i + 1].Length - lines[i + 1].TrimStart().Length > indent))
                    block.Add(lines[++i].Trim());
                value = string.Join(' ', block.Where(l => l.Length > 0));
            }
            else if (value.Length > 1 && value[0] is '"' or '\'' && value[^1] == value[0])
                value = value[1..^1];
            result.Add(value);
        }
        return result;
    }

    private static IEnumerable<(string Name, string Text)> AlertBlocks(string rules)
    {
        var starts = AlertName().Matches(rules).ToList();
        for (var i = 0; i < starts.Count; i++)
        {
            var end = i + 1 < starts.Count ? starts[i + 1].Index : rules.Length;
            yield return (starts[i].Groups[1].Value, rules[starts[i].Index..end]);
        }
    }

    /// <summary>Runs promtool in deploy/prometheus (the files' relative paths resolve there); skips when it is missing.</summary>
    private static string RunPromtool(params string[] arguments)
    {
        var promtool = FindOnPath("promtool");
        if (promtool is null)
            Assert.Skip("promtool is not installed (Debian package prometheus; scripts/prerequisites.sh test installs it)");
        var start = new ProcessStartInfo(promtool)
        {
            WorkingDirectory = PrometheusDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("promtool did not start");
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"promtool {string.Join(' ', arguments)} did not finish in 2 minutes");
        }
        var output = stdout.Result + stderr.Result;
        process.ExitCode.ShouldBe(0, $"promtool {string.Join(' ', arguments)} failed:\n{output}");
        return output;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin")
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    [GeneratedRegex(@"^\s*- alert:\s*(\w+)\s*$", RegexOptions.Multiline)]
    private static partial Regex AlertName();

    [GeneratedRegex(@"^(?<indent>\s*)(?:- )?expr:(?<value>.*)$")]
    private static partial Regex ExprLine();

    /// <summary>A metric name (not a recording rule's <c>attrcloak:</c> name, not inside a label value like <c>"attrcloak.*"</c>).</summary>
    [GeneratedRegex(@"(?<![\w:.""])attrcloak_[A-Za-z0-9_]+\b")]
    private static partial Regex MetricName();

    /// <summary>The metric name of a promtool input series (<c>series: name{labels}</c>, quoted or not).</summary>
    [GeneratedRegex(@"series:\s*['""]?([A-Za-z_:][A-Za-z0-9_:]*)")]
    private static partial Regex SeriesName();

    /// <summary>One alert test case: its alert name, then its exp_alerts (empty list or entries).</summary>
    [GeneratedRegex(@"alertname:\s*(?<name>\w+)\s*\n\s*exp_alerts:\s*(?<expect>\[\]|\n)")]
    private static partial Regex AlertTestCase();
}
