using AttrCloak.Cli.Rendering;
using Spectre.Console;

namespace AttrCloak.Cli.Streaming;

/// <summary>A progress report of long streaming work: how far (of the total) and a one-line status.</summary>
public readonly record struct LiveUpdate(double Value, string Text);

/// <summary>
/// A live progress line for the streaming commands: a redrawn bar on a terminal, and one plain timestamped line every
/// few seconds in logs and pipes (where redrawn bars would interleave with the tables).
/// </summary>
public static class LiveStatus
{
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(5);

    public static async Task<T> RunAsync<T>(string title, double total, Func<IProgress<LiveUpdate>, Task<T>> work)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            AnsiConsole.MarkupLineInterpolated($"[grey]{DateTime.Now:HH:mm:ss}[/] {title}");
            var last = DateTime.UtcNow;
            return await work(new InlineProgress<LiveUpdate>(u =>
            {
                if (DateTime.UtcNow - last < PlainInterval) return;
                last = DateTime.UtcNow;
                AnsiConsole.MarkupLineInterpolated($"[grey]{DateTime.Now:HH:mm:ss}[/] {u.Text}");
            }));
        }
        T result = default!;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(Markup.Escape(title), maxValue: Math.Max(1, total));
                result = await work(new InlineProgress<LiveUpdate>(u =>
                {
                    task.Value = Math.Min(u.Value, task.MaxValue);
                    task.Description = Markup.Escape(u.Text);
                }));
                task.Value = task.MaxValue;
                task.StopTask();
            });
        return result;
    }
}
