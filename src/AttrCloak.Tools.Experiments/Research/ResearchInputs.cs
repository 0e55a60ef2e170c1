using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Backbones;
using AttrCloak.Tools.Experiments.Support;

namespace AttrCloak.Tools.Experiments.Research;

/// <summary>
/// What the research experiments start from: ML-100K (found as the tests find it), a model trained on it
/// (ATTRCLOAK_MODEL, `attrcloak train --out DIR`), the evaluation's leave-one-out split, and the attributes to protect
/// (ATTRCLOAK_PROTECT, comma-separated).
/// </summary>
internal sealed record ResearchInputs(RecDataset Data, TrainedModel Model, LeaveOneOutSplit Split, LabeledAttribute[] Protected)
{
    public static ResearchInputs Load(string defaultProtect = "gender,age")
    {
        var modelDir = Environment.GetEnvironmentVariable("ATTRCLOAK_MODEL")
            ?? throw new ExperimentUnavailableException("set ATTRCLOAK_MODEL to a model directory (attrcloak train --out DIR)");
        var data = MovieLens100KLoader.Load(MovieLensData.Require());
        var model = TrainedModel.Load(modelDir);
        var names = (Environment.GetEnvironmentVariable("ATTRCLOAK_PROTECT") ?? defaultProtect).Split(',', StringSplitOptions.TrimEntries);
        return new ResearchInputs(data, model, LeaveOneOutSplit.Create(data, 99, 2025), names.Select(n => Attribute(data, n)).ToArray());
    }

    public static LabeledAttribute Attribute(RecDataset data, string name) =>
        new(data.Attributes[data.AttributeIndex(name)], data.Labels[data.AttributeIndex(name)]);
}
