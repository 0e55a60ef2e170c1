using System.Reflection;
using AttrCloak.Streaming.Redis;

namespace AttrCloak.Streaming.Redis.Scripts;

/// <summary>
/// The Lua scripts (embedded <c>*.lua</c> files beside this class). They are sent with
/// <c>IDatabase.ScriptEvaluateAsync(string, ...)</c>, which runs them by SHA1 (EVALSHA) once the server knows them and
/// falls back to EVAL after a restart or SCRIPT FLUSH.
/// </summary>
internal static class LuaScripts
{
    public static readonly string Init = Load("init.lua");
    public static readonly string ReadUsers = Load("read_users.lua");
    public static readonly string Apply = Load("apply.lua");
    public static readonly string ReadStatistics = Load("read_stats.lua");
    public static readonly string Rebuild = Load("rebuild.lua");
    public static readonly string RaiseConsumed = Load("raise_consumed.lua");
    public static readonly string MarkSwept = Load("mark_swept.lua");
    public static readonly string WriteRegistry = Load("write_registry.lua");

    private static string Load(string name)
    {
        var resource = "AttrCloak.Streaming.Redis.Scripts." + name;
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"embedded script {resource} is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
