using System.ComponentModel;
using AttrCloak.Learning.Unlearning;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

/// <summary>The AttrCloak hyper-parameters a user may override; unset options keep the preset's value.</summary>
public static class CloakKnobs
{
    public static CloakOptions Apply(CloakOptions preset, double? lr, int? iterations, string? optimizer, double? ridge,
        double? alphaMin, double? alphaMax, double? tolerance, double? targetReduction, string? target = null, double? strength = null)
    {
        var o = preset;
        if (target is not null) o = o with { Target = ParseTarget(target) };
        if (strength is { } st) o = o with { Strength = st };
        if (lr is { } l) o = o with { LearningRate = l };
        if (iterations is { } i) o = o with { MaxIterations = i };
        if (optimizer is not null)
            o = o with
            {
                Optimizer = optimizer.ToLowerInvariant() switch
                {
                    "adam" => CloakOptimizer.Adam,
                    "sgd" or "gd" => CloakOptimizer.Sgd,
                    _ => throw new UsageException($"unknown --optimizer '{optimizer}'; expected adam or sgd"),
                },
            };
        if (ridge is { } r) o = o with { Ridge = CovarianceRidge.Relative(r) };
        if (alphaMin is not null) o = o with { AlphaMin = alphaMin };
        if (alphaMax is not null) o = o with { AlphaMax = alphaMax };
        if (tolerance is { } t) o = o with { ConvergenceTolerance = t };
        if (targetReduction is { } f) o = o with { PrivacyTarget = PrivacyTarget.Reduction(f) };
        try { o.Validate(o.Mode ?? CloakMode.DataFree); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        return o;
    }

    /// <summary>A --strata value, checked before any work starts.</summary>
    public static int Strata(int value) => value is >= 1 and <= 100
        ? value
        : throw new UsageException($"--strata must be between 1 and 100, got {value}");

    public static EqualisationTarget ParseTarget(string name) => name.ToLowerInvariant() switch
    {
        "noise-matched" or "noise" => EqualisationTarget.NoiseMatched,
        "empirical" or "paper" => EqualisationTarget.Empirical,
        "shrunk" or "james-stein" => EqualisationTarget.Shrunk,
        _ => throw new UsageException($"unknown --target '{name}'; expected noise-matched, empirical or shrunk"),
    };
}

/// <summary>Cloaking options shared by `cloak`.</summary>
public class CloakSettings : ModelSettings
{
    [CommandOption("--mode <MODE>")]
    [Description("df = data-free (L2 anchor to the original embeddings), dd = data-dependent (the backbone's own loss on the interactions), ot = the streaming guard's per-class Gaussian maps, cross-fitted over the users, then given back as fresh draws the sampling error they removed (cloak only).")]
    [DefaultValue("df")]
    public string Mode { get; init; } = "df";

    [CommandOption("--attributes <LIST>")]
    [Description("Comma-separated attributes to protect, e.g. gender,age,occupation (default: all of the data set's).")]
    public string? Attributes { get; init; }

    [CommandOption("--lr <RATE>")]
    [Description("Step size on the user embeddings (preset per mode).")]
    public double? LearningRate { get; init; }

    [CommandOption("--iterations <N>")]
    [Description("Iteration cap (preset per mode).")]
    public int? Iterations { get; init; }

    [CommandOption("--optimizer <NAME>")]
    [Description("adam (default) or sgd (the paper's plain gradient descent).")]
    public string? Optimizer { get; init; }

    [CommandOption("--ridge <EPS>")]
    [Description("Covariance ridge, relative to the mean per-dimension variance.")]
    public double? Ridge { get; init; }

    [CommandOption("--alpha-min <A>")]
    [Description("Lower clip of the MGDA weight alpha_u (DF default 0.1 per the paper's formula, DD default 0).")]
    public double? AlphaMin { get; init; }

    [CommandOption("--alpha-max <A>")]
    [Description("Upper clip of alpha_u (default 1).")]
    public double? AlphaMax { get; init; }

    [CommandOption("--tolerance <T>")]
    [Description("Stop when the relative change of L_All stays under T.")]
    public double? Tolerance { get; init; }

    [CommandOption("--target-reduction <F>")]
    [Description("Privacy stopping rule: stop once every attribute's L_AU has fallen by this factor.")]
    public double? TargetReduction { get; init; }

    [CommandOption("--target <KIND>")]
    [Description("Where each class is sent: noise-matched (global fit plus a fresh draw of its sampling error; creates no leakage), empirical (the slides' global fit) or shrunk (James-Stein); with --mode ot: global (default) or null (its fit in the same users with their labels permuted).")]
    public string? Target { get; init; }

    [CommandOption("--strength <T>")]
    [Description("How far each class moves toward its target, 0..1 (1 = all the way).")]
    public double? Strength { get; init; }

    [CommandOption("--privacy-target <EPS>")]
    [Description("Privacy as a target: the largest |balanced accuracy - chance| allowed per attribute (both directions, worst over the shadow attackers incl. calibrated ones); the strength of each attribute's cloak is raised in a closed loop on shadow audits until it is met.")]
    public double? PrivacyTarget { get; init; }

    [CommandOption("--utility-floor <F>")]
    [Description("With --privacy-target: never go below this validation NDCG@10 ratio (e.g. 0.97), with one standard error to spare (DF and DD: the mean over three noise-matched draws, their spread counted); the run says which attributes could not be protected above it.")]
    public double? UtilityFloor { get; init; }

    [CommandOption("--covariance-strength <T>")]
    [Description("Strength of the covariance part alone (default: --strength).")]
    public double? CovarianceStrength { get; init; }

    [CommandOption("--strata <N>")]
    [Description("Equalise the class means within N strata of the embeddings' leading principal component (default: 1, over the whole population, as the streaming guard does; 5 with --privacy-target).")]
    public int? Strata { get; init; }

    [CommandOption("--covariance-prior <USERS>")]
    [Description("--mode ot: users' worth of shrinkage of each class covariance toward the global one before its map (default 256; 0 = the classes' own covariances).")]
    public double? CovariancePrior { get; init; }

    [CommandOption("--exact-means <BOOL>")]
    [Description("Finish by putting every class mean exactly on its target with the least displacement.")]
    public bool? ExactMeans { get; init; }

    /// <summary>--mode ot: AttrCloak-OT (`cloak` only; the gradient cloaks' knobs do not apply).</summary>
    public bool IsTransport => Mode.ToLowerInvariant() is "ot" or "transport";

    public CloakMode ParsedMode => Mode.ToLowerInvariant() switch
    {
        "df" or "data-free" => CloakMode.DataFree,
        "dd" or "data-dependent" => CloakMode.DataDependent,
        "ot" or "transport" => throw new UsageException("--mode ot is not available here: it has no learning rate or iterations; use `attrcloak cloak --mode ot`"),
        _ => throw new UsageException($"unknown --mode '{Mode}'; expected df, dd or ot"),
    };
}
