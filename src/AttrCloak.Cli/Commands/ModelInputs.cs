using AttrCloak.Cli.Experiments;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Backbones;

namespace AttrCloak.Cli.Commands;

/// <summary>
/// What the commands on a saved model start from: the model, the data set it was trained on (checked row for row
/// against its embeddings), the `--attributes` chosen and the evaluation's leave-one-out split.
/// </summary>
public sealed record ModelInputs(TrainedModel Model, DataSource Source, RecDataset Data, IReadOnlyList<int> Attributes, LeaveOneOutSplit Split)
{
    public static ModelInputs Load(ModelSettings settings, string? attributes)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var model = ModelFolder.Load(settings.Model);
        var source = settings.ToSource(DataSource.ReadBeside(settings.Model));
        var data = source.Load();
        ModelFolder.CheckRows(model.Users.Rows, data.UserCount, settings.Model);
        return new ModelInputs(model, source, data, AttributeSelection.Resolve(data, attributes), source.Split(data));
    }
}
