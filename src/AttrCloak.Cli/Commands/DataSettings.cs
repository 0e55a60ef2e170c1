using System.ComponentModel;
using AttrCloak.Cli.Experiments;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

/// <summary>Options that name a data set; shared by every command that loads one.</summary>
public class DataSettings : CommandSettings
{
    [CommandOption("--dataset <NAME>")]
    [Description("Data set layout: ml-100k, ml-1m, csv (interactions.csv + users.csv) or synthetic (built in, the default).")]
    public string? Dataset { get; init; }

    [CommandOption("--data <DIR>")]
    [Description("Folder holding the data set's files (not needed for synthetic).")]
    public string? Data { get; init; }

    [CommandOption("--synthetic-users <N>")]
    [Description("Users in the synthetic data set.")]
    [DefaultValue(1000)]
    public int SyntheticUsers { get; init; } = 1000;

    [CommandOption("--synthetic-strength <S>")]
    [Description("How strongly attributes shape the synthetic users' tastes (default 0.5; 0 = no leakage).")]
    public double? SyntheticStrength { get; init; }

    /// <summary>The data source these options name, or <paramref name="recorded"/> when they name none.</summary>
    public DataSource ToSource(DataSource? recorded = null)
    {
        if (Dataset is null && Data is null && recorded is not null) return recorded;
        if (SyntheticUsers < 10) throw new UsageException($"--synthetic-users must be at least 10, got {SyntheticUsers}");
        var source = new DataSource(Dataset ?? (Data is null ? "synthetic" : "ml-100k"), Data, SyntheticUsers, SyntheticStrength: SyntheticStrength);
        _ = source.Kind; // validates the name now, with a clear message
        return source;
    }
}

/// <summary>Options of commands that work on a model saved by `attrcloak train`.</summary>
public class ModelSettings : DataSettings
{
    [CommandOption("--model <DIR>")]
    [Description("Folder written by `attrcloak train` (model.json, users.npy, items.npy, dataset.json).")]
    public string Model { get; init; } = "";

    public override Spectre.Console.ValidationResult Validate() =>
        string.IsNullOrWhiteSpace(Model)
            ? Spectre.Console.ValidationResult.Error("--model DIR is required (a folder written by `attrcloak train`)")
            : Spectre.Console.ValidationResult.Success();
}
