using AttrCloak.Core.Data;

namespace AttrCloak.Core.Tests;

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
