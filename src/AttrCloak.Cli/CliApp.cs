using AttrCloak.Cli.Commands;
using AttrCloak.Cli.Commands.Streaming;
using AttrCloak.Core.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli;

/// <summary>Builds the `attrcloak` command tree and turns expected failures into one clear line.</summary>
public static class CliApp
{
    public static async Task<int> RunAsync(string[] args)
    {
        // Redirected output (CI logs, `| tee`) would otherwise be wrapped at 80 columns and break the tables.
        if (Console.IsOutputRedirected && AnsiConsole.Profile.Width < 160) AnsiConsole.Profile.Width = 160;
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("attrcloak");
            config.PropagateExceptions();
            config.ConfigureConsole(AnsiConsole.Console); // help and errors go where our tables go (tests swap it)
            config.AddCommand<TrainCommand>("train")
                .WithDescription("Train a recommendation backbone (MF or LightGCN) and save its embeddings.")
                .WithExample("train", "--dataset", "ml-100k", "--data", "../shared/data/ml-100k", "--out", "runs/ml100k-mf");
            config.AddCommand<CloakCommand>("cloak")
                .WithDescription("Cloak saved user embeddings with AttrCloak (data-free 'df' or data-dependent 'dd').")
                .WithExample("cloak", "--model", "runs/ml100k-mf", "--mode", "df", "--attributes", "gender,age,occupation", "--out", "runs/ml100k-mf/df")
                .WithExample("cloak", "--model", "runs/ml100k-mf", "--mode", "ot", "--privacy-target", "0.03", "--utility-floor", "0.97", "--out", "runs/ml100k-mf/ot");
            config.AddCommand<AuditCommand>("audit")
                .WithDescription("Attack embeddings with attribute-inference attackers (5-fold, user-disjoint) and print the privacy table.")
                .WithExample("audit", "--model", "runs/ml100k-mf", "--embeddings", "runs/ml100k-mf/df/users.npy");
            config.AddCommand<EvaluateCommand>("evaluate")
                .WithDescription("Measure recommendation utility (leave-one-out, 99 negatives: HR and NDCG at 5 and 10).")
                .WithExample("evaluate", "--model", "runs/ml100k-mf", "--embeddings", "runs/ml100k-mf/df/users.npy");
            config.AddCommand<ControlCommand>("control")
                .WithDescription("Noise control: i.i.d. Gaussian embeddings with real labels, cloaked and attacked; every attacker must stay at chance.")
                .WithExample("control", "--dataset", "ml-100k", "--data", "../shared/data/ml-100k", "--draws", "3");
            config.AddCommand<HarnessCommand>("harness")
                .WithDescription("Generalization harness: the whole evaluation (privacy-target DF and DD, all attackers, NDCG) over a family of data sets, a pass/fail row per member.")
                .WithExample("harness", "--family", "full", "--data", "../shared/data/ml-100k", "--json", "runs/harness.json", "--plot", "runs/harness.png")
                .WithExample("harness", "--family", "small");
            config.AddCommand<SweepCommand>("sweep")
                .WithDescription("Privacy-utility curve of one model: cloak over a grid of learning rates and iteration caps, audit and evaluate each.")
                .WithExample("sweep", "--model", "runs/ml100k-mf", "--mode", "df", "--lrs", "0.01,0.03,0.1", "--iteration-caps", "10,30,100", "--plot", "runs/sweep.png");
            config.AddBranch("bench", bench =>
            {
                bench.SetDescription("Benchmarks that print figures (median of several runs).");
                bench.AddCommand<BenchCloakCommand>("cloak")
                    .WithDescription("Unlearning time alone (DF and DD with the default presets) and how it splits between phases.")
                    .WithExample("bench", "cloak", "--model", "runs/ml100k-mf", "--runs", "5");
                bench.AddCommand<BenchStreamCommand>("stream")
                    .WithDescription("Speed of the streaming worker end to end (mock Kafka, Redis, real re-cloak): updates/s, p50/p99 latency, stage breakdown, memory; median of --runs.");
                bench.AddCommand<BenchSoakCommand>("soak")
                    .WithDescription("Soak test of the streaming worker: a fixed rate with a realistic mix and periodic shadow audits for a fixed time; lag, latency and memory over time; exit 1 unless errors are nil, lag bounded and memory flat.")
                    .WithExample("bench", "soak", "--duration", "10m", "--rate", "2000", "--plot", "soak.png", "--json", "soak.json");
            });
            config.AddBranch("stats", stats =>
            {
                stats.SetDescription("The streaming guard's class statistics in Redis: recompute them from the user states.");
                stats.AddCommand<StatsVerifyCommand>("verify")
                    .WithDescription("Compare the stored class statistics with a recomputation from every user state; exit 1 when they differ.")
                    .WithExample("stats", "verify", "--config", "appsettings.json")
                    .WithExample("stats", "verify", "--redis", "localhost:6379", "--prefix", "attrcloak");
                stats.AddCommand<StatsRebuildCommand>("rebuild")
                    .WithDescription("Replace the stored class statistics with their recomputation from the user states (atomically).")
                    .WithExample("stats", "rebuild", "--config", "appsettings.json");
            });
            config.AddBranch("generations", generations =>
            {
                generations.SetDescription("The streaming guard's model generations (one per model_version): list, promote, retire.");
                generations.AddCommand<GenerationsListCommand>("list")
                    .WithDescription("The model generations of the deployment: state (filling, serving, superseded, retiring, retired), users, seatings.")
                    .WithExample("generations", "list", "--config", "appsettings.json");
                generations.AddCommand<GenerationsPromoteCommand>("promote")
                    .WithDescription("Promote a filling generation now: a worker seats it (batch AttrCloak-DF over its stored originals) and the workers publish its users.")
                    .WithExample("generations", "promote", "mf-2026-12", "--config", "appsettings.json", "--wait", "300");
                generations.AddCommand<GenerationsRetireCommand>("retire")
                    .WithDescription("Retire a superseded (or abandoned filling) generation: no longer served, tombstones for its users without a newer embedding, its keys deleted.")
                    .WithExample("generations", "retire", "mf-2026-11", "--config", "appsettings.json", "--wait", "300");
            });
            config.AddCommand<BootstrapCommand>("bootstrap")
                .WithDescription("Cold start of the streaming guard: cloak an initial population with AttrCloak-DF in batch, seed the Redis state store with it and publish it to the serving topic.")
                .WithExample("bootstrap", "--config", "appsettings.json", "--model", "runs/ml100k-mf", "--fraction", "0.5", "--seed", "7")
                .WithExample("bootstrap", "--config", "appsettings.json", "--dataset", "synthetic", "--synthetic-users", "500", "--publish");
            config.AddCommand<ReplayCommand>("replay")
                .WithDescription("Produce a data set's embeddings (and optional privacy requests) as streaming-guard events into any Kafka.")
                .WithExample("replay", "--brokers", "localhost:9092", "--model", "runs/ml100k-mf", "--shuffle", "--rate", "2000")
                .WithExample("replay", "--config", "appsettings.json", "--dataset", "synthetic", "--repeat", "10", "--binary", "--forget-fraction", "0.01");
            config.AddCommand<ServeCommand>("serve")
                .WithDescription("Run the streaming privacy guard against Kafka and Redis (configuration: appsettings.json, environment); endpoints /metrics, /healthz/live, /healthz/ready.");
            config.AddCommand<KafkaMockCommand>("kafka-mock")
                .WithDescription("A local in-memory Kafka broker (librdkafka's mock cluster) on a fixed address, for `serve`, kcat and fault tests; not for production.")
                .WithExample("kafka-mock", "--port", "19092");
            config.AddCommand<DemoCommand>("demo")
                .WithDescription("The streaming guard on one machine with nothing installed: mock Kafka cluster, Redis if configured (else in-process), bootstrap, live stream, before/after audit.")
                .WithExample("demo")
                .WithExample("demo", "--dataset", "ml-100k", "--data", "../shared/data/ml-100k", "--rate", "0");
            config.AddCommand<ReproduceCommand>("reproduce")
                .WithDescription("Original, AttrCloak-DD, AttrCloak-DF and AttrCloak-OT end to end over several seeds: the paper's tables, ours beside them.")
                .WithExample("reproduce", "--dataset", "synthetic")
                .WithExample("reproduce", "--dataset", "ml-100k", "--data", "../shared/data/ml-100k", "--seeds", "5", "--json", "runs/ml100k.json");
        });

        try
        {
            return await app.RunAsync(args);
        }
        catch (Exception e) when (UserFacingMessage(e) is { } message)
        {
            WriteError("error:", message);
            return 2;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("ATTRCLOAK_DEBUG") != "1")
        {
            // A bug, not bad input: still one line for the user; ATTRCLOAK_DEBUG=1 shows the stack trace.
            WriteError("internal error:", $"{e.GetType().Name}: {e.Message} (set ATTRCLOAK_DEBUG=1 for details)");
            return 70;
        }
    }

    /// <summary>
    /// The message as plain text: markup would turn configuration keys such as AttrCloak:Guard:Dimension into emoji
    /// (":guard:" is one, and Spectre has no way to escape emoji codes), and escaping only covers brackets.
    /// </summary>
    private static void WriteError(string label, string message)
    {
        AnsiConsole.Markup($"[red]{label}[/] ");
        AnsiConsole.Write(new Text(message));
        AnsiConsole.WriteLine();
    }

    /// <summary>The one line a user sees for failures caused by their input; null for real bugs.</summary>
    internal static string? UserFacingMessage(Exception e) => e switch
    {
        CommandParseException or CommandRuntimeException => e.Message,
        DataFormatException or UsageException => e.Message,
        FileNotFoundException f => $"file not found: {f.FileName ?? f.Message}",
        DirectoryNotFoundException => e.Message,
        UnauthorizedAccessException => e.Message,
        IOException => e.Message,
        OperationCanceledException => "cancelled",
        _ => null,
    };
}

/// <summary>A wrong combination of options or values: shown to the user as one line.</summary>
public sealed class UsageException(string message) : Exception(message);
