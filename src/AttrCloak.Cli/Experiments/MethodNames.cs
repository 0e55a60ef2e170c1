using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Cli.Experiments;

/// <summary>The cloaks' names in every table, JSON file and export folder, in one place.</summary>
public static class MethodNames
{
    public const string Original = "Original";
    public const string Df = "AttrCloak-DF";
    public const string Dd = "AttrCloak-DD";

    /// <summary>The streaming guard's per-class Gaussian maps cross-fitted over the batch.</summary>
    public const string Ot = "AttrCloak-OT";

    /// <summary>"AttrCloak-DF" or "AttrCloak-DD".</summary>
    public static string For(CloakMode mode) => mode == CloakMode.DataDependent ? Dd : Df;
}
