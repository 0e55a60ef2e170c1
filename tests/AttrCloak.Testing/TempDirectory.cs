namespace AttrCloak.Testing;

/// <summary>
/// A fresh directory under the system temp folder (<c>attrcloak-tests/&lt;guid&gt;</c>), deleted on dispose; tests
/// never share one. <c>dir["name"]</c> and <see cref="PathOf"/> give a path inside it without creating anything.
/// </summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "attrcloak-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    /// <summary>The full path of the directory.</summary>
    public string Path { get; }

    /// <summary>The full path of <paramref name="name"/> inside the directory (nothing is created).</summary>
    public string PathOf(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Same as <see cref="PathOf"/>.</summary>
    public string this[string name] => PathOf(name);

    /// <summary>Writes <paramref name="content"/> as UTF-8 and returns the full path.</summary>
    public string Write(string fileName, string content)
    {
        var file = PathOf(fileName);
        File.WriteAllText(file, content);
        return file;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { /* a leftover temp folder is harmless */ }
        catch (UnauthorizedAccessException) { /* likewise */ }
    }
}
