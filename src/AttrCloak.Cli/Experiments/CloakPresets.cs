using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Cli.Experiments;

/// <summary>
/// The default AttrCloak settings per mode, chosen by measurement on ML-100K (see README "Choosing the knobs").
/// Every value can be overridden from the command line.
/// </summary>
public static class CloakPresets
{
    public static CloakOptions DataFree { get; } = new()
    {
        Mode = CloakMode.DataFree,
        Optimizer = CloakOptimizer.Adam,
        LearningRate = 0.05,
        MaxIterations = 60,
    };

    public static CloakOptions DataDependent { get; } = new()
    {
        Mode = CloakMode.DataDependent,
        Optimizer = CloakOptimizer.Adam,
        LearningRate = 0.05,
        MaxIterations = 60,
    };

    public static CloakOptions For(CloakMode mode) => mode == CloakMode.DataFree ? DataFree : DataDependent;
}
