using System.ComponentModel;
using AttrCloak.Audit;
using AttrCloak.Cli.Experiments;
using AttrCloak.Cli.Plots;
using AttrCloak.Cli.Rendering;
using AttrCloak.Learning.Backbones;
using AttrCloak.Learning.Unlearning;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

public sealed class ReproduceSettings : DataSettings
{
    [CommandOption("--seeds <N>")]
    [Description("Seeds to average over (backbone training, negative sampling, attacker folds).")]
    [DefaultValue(5)]
    public int Seeds { get; init; } = 5;

    [CommandOption("--first-seed <S>")]
    [DefaultValue(1)]
    public int FirstSeed { get; init; } = 1;

    [CommandOption("--backbone <NAME>")]
    [Description("mf (default) or lightgcn.")]
    [DefaultValue("mf")]
    public string Backbone { get; init; } = "mf";

    [CommandOption("--attributes <LIST>")]
    [Description("Attributes to protect and audit (default: all).")]
    public string? Attributes { get; init; }

    [CommandOption("--attackers <LIST>")]
    [Description("Attackers for the audits (default: lr,lr+cal,mlp,mlp-wide,lgbm,lgbm+cal).")]
    public string? Attackers { get; init; }

    [CommandOption("--df-lr <RATE>")] public double? DfLearningRate { get; init; }
    [CommandOption("--df-iterations <N>")] public int? DfIterations { get; init; }
    [CommandOption("--df-optimizer <NAME>")] public string? DfOptimizer { get; init; }
    [CommandOption("--dd-lr <RATE>")] public double? DdLearningRate { get; init; }
    [CommandOption("--dd-optimizer <NAME>")] public string? DdOptimizer { get; init; }
    [CommandOption("--dd-iterations <N>")] public int? DdIterations { get; init; }

    [CommandOption("--ridge <EPS>")]
    [Description("Covariance ridge relative to the mean per-dimension variance (both modes).")]
    public double? Ridge { get; init; }

    [CommandOption("--privacy-target <EPS>")]
    [Description("Privacy as a target: DF, DD and OT raise each attribute's strength in a closed loop on shadow audits until every worst |advantage| is at most EPS (0 = the fixed presets, no loop; OT at full strength).")]
    [DefaultValue(0.03)]
    public double PrivacyTarget { get; init; } = 0.03;

    [CommandOption("--df-floor <F>")]
    [Description("Utility floor of DF's loop (validation NDCG@10 ratio).")]
    [DefaultValue(0.97)]
    public double DfFloor { get; init; } = 0.97;

    [CommandOption("--dd-floor <F>")]
    [Description("Utility floor of DD's loop (validation NDCG@10 ratio).")]
    [DefaultValue(0.98)]
    public double DdFloor { get; init; } = 0.98;

    [CommandOption("--compare-old")]
    [Description("Also run the defaults from before issue 13 (fixed knobs, the slides' empirical targets) as extra rows.")]
    public bool CompareOld { get; init; }

    [CommandOption("--no-dd")]
    [Description("Skip AttrCloak-DD (data-free only).")]
    public bool NoDataDependent { get; init; }

    [CommandOption("--no-ot")]
    [Description("Skip AttrCloak-OT: the streaming guard's per-class Gaussian maps cross-fitted over the batch, under the same privacy target and the DF floor.")]
    public bool NoTransport { get; init; }

    [CommandOption("--epochs <N>")]
    [Description("Cap on backbone training epochs (early stopping on the validation item decides within it).")]
    public int? Epochs { get; init; }

    [CommandOption("--json <FILE>")]
    [Description("Also write every figure, machine-readable.")]
    public string? Json { get; init; }

    [CommandOption("--export <DIR>")]
    [Description("Write users.csv, embeddings_original.npy and embeddings_cloaked.npy (first seed, one folder per method).")]
    public string? Export { get; init; }

    [CommandOption("--plots <DIR>")]
    [Description("Write PNG figures: per-class distributions before/after (paper Fig. 4), alpha_u and loss curves.")]
    public string? Plots { get; init; }

    public override ValidationResult Validate()
    {
        if (Seeds < 1) return ValidationResult.Error("--seeds must be at least 1");
        if (PrivacyTarget < 0) return ValidationResult.Error("--privacy-target must be >= 0");
        return ValidationResult.Success();
    }
}

public sealed class ReproduceCommand : Command<ReproduceSettings>
{
    public override int Execute(CommandContext context, ReproduceSettings s, CancellationToken cancellationToken)
    {
        var source = s.ToSource();
        var backbone = BackboneNames.Parse(s.Backbone);
        var training = BackboneTrainingOptions.DefaultsFor(backbone);
        if (s.Epochs is { } e) training = training with { Epochs = e };
        var options = new ReproduceOptions
        {
            Source = source,
            Seeds = s.Seeds,
            FirstSeed = s.FirstSeed,
            Backbone = backbone,
            Training = training,
            DataFree = CloakKnobs.Apply(CloakPresets.DataFree, s.DfLearningRate, s.DfIterations, s.DfOptimizer, s.Ridge, null, null, null, null),
            DataDependent = CloakKnobs.Apply(CloakPresets.DataDependent, s.DdLearningRate, s.DdIterations, s.DdOptimizer, s.Ridge, null, null, null, null),
            Audit = AuditSettings.Options(s.Attackers),
            AttributeNames = s.Attributes,
            SkipDataDependent = s.NoDataDependent,
            DataFreeGoal = s.PrivacyTarget > 0 ? new PrivacyGoal(s.PrivacyTarget, s.DfFloor) : null,
            DataDependentGoal = s.PrivacyTarget > 0 ? new PrivacyGoal(s.PrivacyTarget, s.DdFloor) : null,
            CompareOldDefaults = s.CompareOld,
            Transport = !s.NoTransport,
        };
        try { options.DataFreeGoal?.Validate(); options.DataDependentGoal?.Validate(); }
        catch (ArgumentException invalid) { throw new UsageException(invalid.Message); }
        AnsiConsole.MarkupLineInterpolated($"[bold]attrcloak reproduce[/]: {source.Describe()}, backbone {backbone}, {s.Seeds} seed(s)");
        var result = ConsoleProgress.Run(p => new ReproducePipeline(p).Run(options, cancellationToken));
        foreach (var table in ReproduceReport.Render(result)) AnsiConsole.Write(table);

        if (s.Json is not null)
        {
            ReproduceReport.WriteJson(result, s.Json);
            AnsiConsole.MarkupLineInterpolated($"figures written to [blue]{s.Json}[/]");
        }
        if (s.Export is not null)
            foreach (var dir in ReproducePipeline.Export(result, s.Export))
                AnsiConsole.MarkupLineInterpolated($"exported [blue]{dir}[/]");
        if (s.Plots is not null)
            foreach (var file in CloakPlots.WriteAll(result, s.Plots))
                AnsiConsole.MarkupLineInterpolated($"plot [blue]{file}[/]");
        return 0;
    }
}

/// <summary>Names of backbones on the command line.</summary>
public static class BackboneNames
{
    public static BackboneKind Parse(string name) => name.ToLowerInvariant() switch
    {
        "mf" or "gmf" => BackboneKind.Mf,
        "lightgcn" => BackboneKind.LightGcn,
        _ => throw new UsageException($"unknown --backbone '{name}'; expected mf or lightgcn"),
    };
}
