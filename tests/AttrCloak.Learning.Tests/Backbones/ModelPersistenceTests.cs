using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Core.IO;
using AttrCloak.Learning.Backbones;

namespace AttrCloak.Learning.Tests.Backbones;

public sealed class ModelPersistenceTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "attrcloak-model-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static TrainedModel Sample(BackboneKind kind = BackboneKind.LightGcn) => new(kind,
        new EmbeddingMatrix(3, 2, [1f, 2f, 3f, 4f, 5f, 6f]),
        new EmbeddingMatrix(4, 2, [0.5f, -1f, 0f, 2f, 1e-7f, 3f, -4f, 7f]),
        "tiny", epochsTrained: 12, bestEpoch: 9,
        new RankingMetrics(0.5, 0.75, 0.3, 0.4, 3), new RankingMetrics(0.25, 0.5, 0.2, 0.3, 3), 1.25,
        BackboneTrainingOptions.DefaultsFor(kind) with { Seed = 42, Threads = 2 });

    [Fact]
    public void Save_then_load_round_trips_vectors_and_metadata()
    {
        var model = Sample();
        model.Save(_dir);
        var loaded = TrainedModel.Load(_dir);
        loaded.Kind.ShouldBe(BackboneKind.LightGcn);
        loaded.Dim.ShouldBe(2);
        loaded.Users.Values.ShouldBe(model.Users.Values);
        loaded.Items.Values.ShouldBe(model.Items.Values);
        loaded.DatasetName.ShouldBe("tiny");
        loaded.EpochsTrained.ShouldBe(12);
        loaded.BestEpoch.ShouldBe(9);
        loaded.Validation.ShouldBe(model.Validation);
        loaded.Test.ShouldBe(model.Test);
        loaded.TrainingSeconds.ShouldBe(1.25);
        loaded.Options.ShouldBe(model.Options);
        loaded.Seed.ShouldBe(42);
        File.ReadAllText(Path.Combine(_dir, TrainedModel.MetadataFile)).ShouldContain("\"LightGcn\"");
    }

    [Fact]
    public void Load_names_the_missing_directory_or_file()
    {
        Should.Throw<DataFormatException>(() => TrainedModel.Load(_dir)).Message.ShouldContain(_dir);

        Sample().Save(_dir);
        File.Delete(Path.Combine(_dir, TrainedModel.ItemsFile));
        Should.Throw<DataFormatException>(() => TrainedModel.Load(_dir)).Message.ShouldContain(TrainedModel.ItemsFile);

        File.Delete(Path.Combine(_dir, TrainedModel.MetadataFile));
        Should.Throw<DataFormatException>(() => TrainedModel.Load(_dir)).Message.ShouldContain(TrainedModel.MetadataFile);
    }

    [Fact]
    public void Load_rejects_a_shape_mismatch_and_an_unknown_kind()
    {
        Sample().Save(_dir);
        NpyFile.Write(Path.Combine(_dir, TrainedModel.UsersFile), new EmbeddingMatrix(3, 3, new float[9]));
        var e = Should.Throw<DataFormatException>(() => TrainedModel.Load(_dir));
        e.Message.ShouldContain(TrainedModel.UsersFile);
        e.Message.ShouldContain("(3, 3)");

        Sample().Save(_dir);
        var json = Path.Combine(_dir, TrainedModel.MetadataFile);
        File.WriteAllText(json, File.ReadAllText(json).Replace("\"LightGcn\"", "\"Transformer\""));
        Should.Throw<DataFormatException>(() => TrainedModel.Load(_dir)).Message.ShouldContain(TrainedModel.MetadataFile);

        File.WriteAllText(json, "{ not json");
        Should.Throw<DataFormatException>(() => TrainedModel.Load(_dir)).Message.ShouldContain(json);
    }
}
