namespace AttrCloak.Tools.Experiments;

/// <summary>
/// <c>dotnet run --project src/AttrCloak.Tools.Experiments -c Release -- NAME</c> runs one benchmark or experiment and
/// prints its figures; with no name (or <c>list</c>) it lists them. Settings are environment variables, as each
/// experiment's summary says. Exit codes: 0 done, 1 failed, 2 unknown name or missing prerequisite (data,
/// redis-server), 130 interrupted.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "list" or "-h" or "--help")
        {
            PrintList(Console.Out);
            return 0;
        }
        var experiment = ExperimentCatalog.Find(args[0]);
        if (experiment is null || args.Length > 1)
        {
            await Console.Error.WriteLineAsync(experiment is null
                ? $"unknown experiment '{args[0]}'"
                : $"{experiment.Name} takes no arguments (its settings are environment variables)");
            PrintList(Console.Error);
            return 2;
        }

        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        try
        {
            await experiment.RunAsync(new ExperimentContext(Console.Out, stop.Token));
            return 0;
        }
        catch (ExperimentUnavailableException e)
        {
            await Console.Error.WriteLineAsync($"{experiment.Name}: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync($"{experiment.Name}: interrupted");
            return 130;
        }
    }

    private static void PrintList(TextWriter output)
    {
        output.WriteLine("usage: dotnet run --project src/AttrCloak.Tools.Experiments -c Release -- NAME");
        output.WriteLine("Benchmarks and experiments: they print figures and assert nothing. Settings are environment variables.");
        output.WriteLine();
        var width = ExperimentCatalog.All.Max(e => e.Name.Length);
        foreach (var e in ExperimentCatalog.All)
        {
            var indent = new string(' ', width + 4);
            output.WriteLine($"  {e.Name.PadRight(width)}  {e.Summary}");
            output.WriteLine($"{indent}time: {e.Duration}");
            if (e.Settings.Length > 0) output.WriteLine($"{indent}settings: {e.Settings}");
        }
    }
}
