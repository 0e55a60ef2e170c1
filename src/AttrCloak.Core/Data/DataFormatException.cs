namespace AttrCloak.Core.Data;

/// <summary>A malformed input file: the message names the file, the line and what was expected.</summary>
public sealed class DataFormatException(string message) : Exception(message)
{
    public static DataFormatException At(string file, int line, string problem) =>
        new($"{file}:{line}: {problem}");
}
