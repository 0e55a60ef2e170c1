using Spectre.Console;

namespace AttrCloak.Cli.Tests;

/// <summary>Runs the real `attrcloak` entry point in-process and captures what a user would see.</summary>
internal static class CliRunner
{
    private static readonly SemaphoreSlim OneAtATime = new(1, 1); // AnsiConsole is process-wide

    public static async Task<(int ExitCode, string Output)> RunAsync(params string[] args)
    {
        await OneAtATime.WaitAsync();
        var previous = AnsiConsole.Console;
        try
        {
            var writer = new StringWriter();
            AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
                Out = new AnsiConsoleOutput(writer),
            });
            AnsiConsole.Profile.Width = 200;
            var code = await CliApp.RunAsync(args);
            return (code, writer.ToString());
        }
        finally
        {
            AnsiConsole.Console = previous;
            OneAtATime.Release();
        }
    }
}
