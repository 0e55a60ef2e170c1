using AttrCloak.Core.Data;

namespace AttrCloak.Core.Tests;

/// <summary>A fresh directory under the system temp folder, deleted on dispose; tests never share one.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "attrcloak-core-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>Writes <paramref name="content"/> as UTF-8 and returns the full path.</summary>
    public string Write(string fileName, string content)
    {
        var file = System.IO.Path.Combine(Path, fileName);
        File.WriteAllText(file, content);
        return file;
    }

    public string PathOf(string fileName) => System.IO.Path.Combine(Path, fileName);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { /* a leftover temp folder is harmless */ }
    }
}

/// <summary>Assertions for loader errors: one <see cref="DataFormatException"/> naming file and line.</summary>
internal static class LoaderAssert
{
    public static DataFormatException FailsAt(Action load, string file, int line, string fragment)
    {
        var e = Should.Throw<DataFormatException>(load);
        e.Message.ShouldStartWith($"{file}:{line}: ", customMessage: e.Message);
        e.Message.ShouldContain(fragment, customMessage: e.Message);
        return e;
    }
}
