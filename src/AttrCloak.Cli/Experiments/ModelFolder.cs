using AttrCloak.Core.Data;
using AttrCloak.Learning.Backbones;

namespace AttrCloak.Cli.Experiments;

/// <summary>Loading what `attrcloak train` saved, with messages that say what to do.</summary>
public static class ModelFolder
{
    public static TrainedModel Load(string dir)
    {
        if (!Directory.Exists(dir))
            throw new UsageException($"model folder '{dir}' does not exist; create one with `attrcloak train --out {dir}`");
        return TrainedModel.Load(dir);
    }

    public static void CheckRows(int rows, int users, string what)
    {
        if (rows != users)
            throw new DataFormatException($"{what}: {rows} embedding rows but the data set has {users} users (row i must be user index i)");
    }
}
