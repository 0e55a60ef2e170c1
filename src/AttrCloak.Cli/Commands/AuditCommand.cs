using System.ComponentModel;
using System.Text.Json;
using AttrCloak.Audit;
using AttrCloak.Audit.Attackers;
using AttrCloak.Cli.Experiments;
using AttrCloak.Cli.Rendering;
using AttrCloak.Core.IO;
using AttrCloak.Learning.Backbones;
using Spectre.Console;
using Spectre.Console.Cli;

namespace AttrCloak.Cli.Commands;

public sealed class AuditSettings : ModelSettings
{
    [CommandOption("--embeddings <FILE>")]
    [Description("User embeddings to attack (.npy, row i = user index i). Default: the model's original users.npy.")]
    public string? Embeddings { get; init; }

    [CommandOption("--attributes <LIST>")]
    [Description("Attributes to attack (default: all).")]
    public string? Attributes { get; init; }

    [CommandOption("--attackers <LIST>")]
    [Description("Attackers: lr, lr+cal, mlp, mlp-wide, lgbm, lgbm+cal (default: all of them).")]
    public string? Attackers { get; init; }

    [CommandOption("--seed <S>")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    [CommandOption("--json <FILE>")]
    public string? Json { get; init; }

    public static AuditOptions Options(string? attackers, int seed = 1)
    {
        if (string.IsNullOrWhiteSpace(attackers)) return new AuditOptions { Seed = seed };
        var names = attackers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var n in names)
        {
            try { AttackerCatalog.Create(n); }
            catch (ArgumentException) { throw new UsageException($"unknown attacker '{n}'; expected some of: {string.Join(", ", AttackerCatalog.DefaultNames)}"); }
        }
        return new AuditOptions { Seed = seed, Attackers = names };
    }
}

/// <summary>
/// Attacks one embedding matrix. The attackers train on shadow users OF THE SAME MATRIX (user-disjoint folds),
/// so to audit cloaked embeddings pass the cloaked file: an attacker trained on originals says nothing about them.
/// </summary>
public sealed class AuditCommand : Command<AuditSettings>
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public override int Execute(CommandContext context, AuditSettings s, CancellationToken cancellationToken)
    {
        var model = ModelFolder.Load(s.Model);
        var source = s.ToSource(DataSource.ReadBeside(s.Model));
        var data = source.Load();
        var users = s.Embeddings is null ? model.Users : NpyFile.Read(s.Embeddings);
        ModelFolder.CheckRows(users.Rows, data.UserCount, s.Embeddings ?? s.Model);
        var attributes = AttributeSelection.Audited(data, AttributeSelection.Resolve(data, s.Attributes));
        var options = AuditSettings.Options(s.Attackers, s.Seed);
        var result = ConsoleProgress.RunAudit(p => PrivacyAudit.Run(users, attributes, options, p, cancellationToken));
        AnsiConsole.Write(AuditTable.Render(result, s.Embeddings ?? "original embeddings"));
        if (s.Json is not null) File.WriteAllText(s.Json, JsonSerializer.Serialize(result, Indented));
        return 0;
    }
}
