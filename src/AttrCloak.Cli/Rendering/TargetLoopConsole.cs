using AttrCloak.Cli.Experiments;
using AttrCloak.Learning.Unlearning;
using Spectre.Console;

namespace AttrCloak.Cli.Rendering;

/// <summary>The privacy-target loop on the console: one grey line per round, then its outcome in green or red.</summary>
public static class TargetLoopConsole
{
    public static IProgress<TargetStep> Rounds(IReadOnlyList<string> names) =>
        new Progress<TargetStep>(step => AnsiConsole.MarkupLineInterpolated($"[grey]{DateTime.Now:HH:mm:ss} {TargetedCloaking.Describe(step, names)}[/]"));

    public static void Outcome(TargetedCloakResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        AnsiConsole.MarkupLine((result.Outcome == TargetOutcome.Met ? "[green]" : "[red]") + Markup.Escape(result.Describe()) + "[/]");
    }
}
