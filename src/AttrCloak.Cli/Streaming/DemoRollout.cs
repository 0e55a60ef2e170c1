using System.Diagnostics;
using AttrCloak.Cli.Rendering;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Backbones;
using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Generations;
using AttrCloak.Tools.Replay;
using Spectre.Console;
using OutboundMessage = AttrCloak.Tools.Replay.OutboundMessage;

namespace AttrCloak.Cli.Streaming;

/// <summary>
/// `attrcloak demo --rollout`: after the first model's stream, a second backbone trained with another seed (a
/// retrained recommender: an unrelated embedding space) is streamed for every user as a new model_version, while the
/// worker keeps running. Shows the rollout as an operator sees it: the new generation fills unserved, is promoted by
/// itself (seated with batch AttrCloak-DF), swept out to the serving topic; returns the new model.
/// </summary>
internal static class DemoRollout
{
    public static async Task<TrainedModel> RunAsync(RecDataset data, AttrCloak.Core.Evaluation.LeaveOneOutSplit split, BackboneTrainingOptions training,
        CatalogMapping catalog, IGenerationStore store, GuardHost host, StreamingSettings settings, string brokers, string modelVersion,
        double rate, int seed, bool binary, CancellationToken cancellationToken)
    {
        var retrained = training with { Seed = training.Seed + 1 };
        AnsiConsole.MarkupLineInterpolated($"[bold]rollout[/]: training model [blue]{modelVersion}[/] (MF, seed {retrained.Seed}): a retrained recommender, another embedding space");
        var model = ConsoleProgress.RunTraining(p => BackboneTrainers.Create(BackboneKind.Mf, retrained).Train(data, split, p, cancellationToken));

        var clock = Stopwatch.StartNew();
        var replay = new ReplayOptions { Shuffle = true, Seed = seed + 1, FirstVersion = 1_000, ModelVersion = modelVersion, Binary = binary };
        var users = Enumerable.Range(0, data.UserCount).Select(u => new ReplayUser(data.UserIds[u], model.Users.Row(u).ToArray(), catalog.AttributesOf(u))).ToArray();
        using (var producer = new KafkaBulkProducer(brokers))
        {
            var messages = EventReplay.Generate(users, replay).Select(m => new OutboundMessage(settings.Kafka.EmbeddingsTopic, m.Key, m.Value, m.ContentType, m.Event.SchemaName));
            await LiveStatus.RunAsync($"streaming {users.Length} embeddings of {modelVersion}", users.Length, async progress =>
            {
                var report = new InlineProgress<ProduceProgress>(p => progress.Report(new LiveUpdate(p.Acked, Describe(host, modelVersion))));
                return await producer.ProduceAsync(messages, rate, report, cancellationToken: cancellationToken);
            });
        }

        // Promotion (the worker seats the new generation once every class has enough users), then its sweep.
        var filledIn = clock.Elapsed;
        await LiveStatus.RunAsync($"waiting for {modelVersion} to be promoted and swept out", data.UserCount, async progress =>
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                var registry = await store.ReadRegistryAsync(cancellationToken);
                var swept = host.Metrics.SweepUsers.GetAllLabelValues().Where(l => l[0] == modelVersion).Sum(l => host.Metrics.SweepUsers.WithLabels(l).Value);
                progress.Report(new LiveUpdate(swept, Describe(host, modelVersion)));
                if (registry.Serving?.ModelVersion == modelVersion && swept > 0 && host.Metrics.SweepActive.WithLabels(modelVersion).Value == 0) return 0;
                if (deadline.Elapsed > TimeSpan.FromMinutes(5))
                    throw new UsageException($"{modelVersion} was not promoted and swept within 5 minutes (state: {registry.Find(modelVersion)?.StateLabel ?? "?"})");
                await Task.Delay(200, cancellationToken);
            }
        });
        var final = await store.ReadRegistryAsync(cancellationToken);
        AnsiConsole.MarkupLineInterpolated(
            $"rollout: {modelVersion} streamed in {filledIn.TotalSeconds:F1} s, promoted and swept out after {clock.Elapsed.TotalSeconds:F1} s; generations now: {string.Join(", ", final.Generations.Select(g => $"{g.ModelVersion} {g.StateLabel}"))}");
        return model;
    }

    private static string Describe(GuardHost host, string modelVersion)
    {
        var states = host.Metrics.GenerationInfo.GetAllLabelValues().Where(l => host.Metrics.GenerationInfo.WithLabels(l).Value == 1).Select(l => $"{l[0]} {l[1]}");
        return $"generations: {string.Join(", ", states)}; {modelVersion} users {host.Metrics.GenerationUsers.WithLabels(modelVersion).Value:F0}, swept {host.Metrics.SweepPending.WithLabels(modelVersion).Value:F0} pending";
    }
}
