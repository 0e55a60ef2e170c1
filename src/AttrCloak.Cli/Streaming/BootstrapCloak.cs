using AttrCloak.Cli.Commands.Streaming;
using AttrCloak.Cli.Experiments;
using AttrCloak.Cli.Rendering;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Generations;
using Spectre.Console;

namespace AttrCloak.Cli.Streaming;

/// <summary>
/// How `attrcloak bootstrap` cloaks the drawn users: the DF preset at full strength (what the worker's own seatings
/// run by default), or with --privacy-target the privacy-target loop on exactly these users
/// (<see cref="PopulationSeeder.CloakToTarget"/>: shadow audits of them, principal strata, and with --utility-floor their
/// validation NDCG@10). The worker's maps replicate
/// the served class statistics the bootstrap leaves, so the stream follows the strengths the loop chose.
/// </summary>
internal static class BootstrapCloak
{
    public static EmbeddingMatrix Run(BootstrapSettings s, Population population, IReadOnlyList<int> chosen, SeedPopulation seeded,
        IReadOnlyList<AttributeSpec> catalog, CancellationToken cancellationToken)
    {
        if (s.PrivacyTarget is not { } eps)
        {
            var cloak = ConsoleProgress.RunCloak(MethodNames.Df, p => PopulationSeeder.CloakDataFree(seeded, catalog, p, cancellationToken));
            AnsiConsole.WriteLine(
                $"AttrCloak-DF (Adam lr {CloakPresets.DataFree.LearningRate}, {cloak.Iterations} iterations, stopped: {cloak.StopReason}) in {cloak.WallTime.TotalSeconds:F2} s; " +
                $"L_AU {string.Join(", ", cloak.AttributeNames.Select((n, j) => $"{n} {cloak.Initial.LossAuPerAttribute[j]:F3} -> {cloak.Final.LossAuPerAttribute[j]:F3}"))}");
            return cloak.Embeddings;
        }

        var goal = new PrivacyGoal(eps, s.UtilityFloor); // ranges checked by BootstrapSettings.Validate
        IUtilityProbe? utility = null;
        if (s.UtilityFloor is not null)
        {
            if (population.Items is null || population.Source is null)
                throw new UsageException("--utility-floor needs the backbone's item embeddings: give --model DIR without --embeddings, or let bootstrap train a backbone");
            var split = population.Source.Split(population.Data);
            utility = new ValidationUtilityProbe(PopulationSeeder.Matrix(seeded), population.Items, chosen.Select(u => split.ValidationCandidates[u]).ToArray());
        }
        var names = catalog.Select(a => a.Name).ToArray();
        AnsiConsole.MarkupLineInterpolated(
            $"[bold]AttrCloak-DF[/] with privacy target {eps} (utility floor {(s.UtilityFloor is { } f ? f.ToString("0.###") : "none")}): shadow audits of the {chosen.Count} drawn users");
        // The same loop, probes and seeds as the worker's seatings to a target (AttrCloak:Generations:SeatingPrivacyTarget).
        var result = PopulationSeeder.CloakToTarget(seeded, catalog, goal, utility,
            TargetLoopConsole.Rounds(names),
            cancellationToken);
        TargetLoopConsole.Outcome(result);
        if (result.Cloak?.Strata is { } decisions)
            AnsiConsole.MarkupLineInterpolated($"  class means equalised within principal strata: {string.Join(", ", decisions)}");
        return result.Embeddings;
    }
}
