using AttrCloak.Audit;
using AttrCloak.Cli.Experiments;
using AttrCloak.Learning.Backbones;
using AttrCloak.Learning.Unlearning;
using Spectre.Console;

namespace AttrCloak.Cli.Rendering;

/// <summary>Live progress bars for long work: one overall bar and one for the current phase.</summary>
public sealed class ConsoleProgress(ProgressContext context) : IReproduceProgress
{
    private ProgressTask? _overall;
    private ProgressTask? _phase;

    /// <summary>Runs <paramref name="work"/> with progress bars, or plainly where the console cannot show them.</summary>
    public static T Run<T>(Func<IReproduceProgress, T> work)
    {
        // Logs and pipes get one plain line per phase instead of redrawn bars (which would interleave with tables).
        if (!AnsiConsole.Profile.Capabilities.Interactive) return work(new LineProgress());
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx => result = work(new ConsoleProgress(ctx)));
        return result;
    }

    /// <summary>Runs one audit with a progress bar over its (attribute, fold) cells.</summary>
    public static T RunAudit<T>(Func<IProgress<AuditProgress>, T> work) => Run(p => work(p.Auditing(0, "embeddings")!));

    /// <summary>Runs one cloaking with a live line showing alpha_u and L_AU.</summary>
    public static T RunCloak<T>(string method, Func<IProgress<CloakIteration>, T> work) => Run(p => work(p.Cloaking(0, method)!));

    /// <summary>Runs backbone training with a live line showing epoch, loss and validation NDCG@10.</summary>
    public static T RunTraining<T>(Func<IProgress<TrainingProgress>, T> work) => Run(p => work(p.Training(0)!));

    public void Started(int seeds, int methodsPerSeed) =>
        _overall = context.AddTask($"{seeds} seed(s) x {methodsPerSeed} methods", maxValue: seeds * methodsPerSeed);

    private ProgressTask Phase(string description, double max)
    {
        _phase?.StopTask();
        _phase = context.AddTask(Markup.Escape(description), maxValue: max);
        return _phase;
    }

    public IProgress<TrainingProgress>? Training(int seed)
    {
        ProgressTask? task = null;
        return new InlineProgress<TrainingProgress>(p =>
        {
            task ??= Phase($"training backbone", 1);
            task.Description = Markup.Escape($"seed {seed}: training, epoch {p.Epoch}, loss {p.Loss:F4}" +
                (p.ValidationNdcg10 is { } v ? $", val NDCG@10 {v:F4}" : ""));
        });
    }

    public IProgress<CloakIteration>? Cloaking(int seed, string method)
    {
        ProgressTask? task = null;
        return new InlineProgress<CloakIteration>(p =>
        {
            task ??= Phase($"seed {seed}: {method}", 1);
            task.Description = Markup.Escape($"seed {seed}: {method} it {p.Iteration}, alpha_u {p.AlphaU:F3}, L_AU {p.LossAu:F3}");
        });
    }

    public IProgress<AuditProgress>? Auditing(int seed, string method)
    {
        ProgressTask? task = null;
        return new InlineProgress<AuditProgress>(p =>
        {
            task ??= Phase($"seed {seed}: auditing {method}", p.TotalCells);
            task.Value = p.CompletedCells;
        });
    }

    public void MethodDone(int seed, string method)
    {
        _phase?.StopTask();
        _overall?.Increment(1);
    }

    public IProgress<TargetStep>? Targeting(int seed, string method)
    {
        ProgressTask? task = null;
        return new InlineProgress<TargetStep>(p =>
        {
            task ??= Phase($"seed {seed}: {method} privacy target", 1);
            var worst = p.WorstAbsAdvantage.Count == 0 ? "under the utility floor" : $"worst |adv| {p.WorstAbsAdvantage.Max():F3}";
            task.Description = Markup.Escape($"seed {seed}: {method} {p.Name}, {worst}" + p.DescribeUtility());
        });
    }
}

/// <summary>
/// An <see cref="IProgress{T}"/> that reports on the caller's thread: System.Progress posts to the thread
/// pool, which would reorder and lag the bars.
/// </summary>
public sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

/// <summary>Progress for non-interactive output: one line when a phase starts and when a seed's method is done.</summary>
public sealed class LineProgress : IReproduceProgress
{
    private int _done;
    private int _total;

    public void Started(int seeds, int methodsPerSeed)
    {
        _total = seeds * methodsPerSeed;
        Write($"{seeds} seed(s) x {methodsPerSeed} methods");
    }

    public IProgress<TrainingProgress>? Training(int seed)
    {
        Write($"{Prefix(seed)}training backbone");
        return null;
    }

    public IProgress<CloakIteration>? Cloaking(int seed, string method)
    {
        Write($"{Prefix(seed)}{method}");
        return null;
    }

    public IProgress<AuditProgress>? Auditing(int seed, string method)
    {
        Write($"{Prefix(seed)}auditing {method}");
        return null;
    }

    public void MethodDone(int seed, string method) =>
        Write($"seed {seed}: {method} done ({++_done}/{Math.Max(_total, _done)})");

    public IProgress<TargetStep>? Targeting(int seed, string method) =>
        new InlineProgress<TargetStep>(p => Write(Markup.Escape($"{Prefix(seed)}{method} {p.Name}: " +
            (p.WorstAbsAdvantage.Count == 0 ? "under the utility floor" : $"worst |adv| {string.Join("/", p.WorstAbsAdvantage.Select(v => v.ToString("F3")))}") +
            $", strengths {string.Join("/", p.Strengths)}" + p.DescribeUtility())));

    // Single commands report seed 0: no prefix for them.
    private static string Prefix(int seed) => seed == 0 ? "" : $"seed {seed}: ";

    private static void Write(string line) =>
        AnsiConsole.MarkupLineInterpolated($"[grey]{DateTime.Now:HH:mm:ss}[/] {line}");
}
