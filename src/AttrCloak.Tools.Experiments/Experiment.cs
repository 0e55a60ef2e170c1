namespace AttrCloak.Tools.Experiments;

/// <summary>
/// One named benchmark or experiment: what it prints, how long it takes, the environment variables that change it
/// (empty if none), and the run itself.
/// </summary>
internal sealed record Experiment(string Name, string Summary, string Duration, string Settings, Func<ExperimentContext, Task> RunAsync);

/// <summary>What a run gets: where its figures go and the Ctrl+C token.</summary>
internal sealed class ExperimentContext(TextWriter output, CancellationToken cancellationToken)
{
    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>Prints one line of figures.</summary>
    public void WriteLine(string line) => output.WriteLine(line);
}

/// <summary>A prerequisite is missing (data set, redis-server): the run cannot start; the message says what to do.</summary>
internal sealed class ExperimentUnavailableException : Exception
{
    public ExperimentUnavailableException()
    {
    }

    public ExperimentUnavailableException(string message) : base(message)
    {
    }

    public ExperimentUnavailableException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
