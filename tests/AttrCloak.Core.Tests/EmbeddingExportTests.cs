using AttrCloak.Core.Data;
using AttrCloak.Core.IO;

namespace AttrCloak.Core.Tests;

public sealed class EmbeddingExportTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static RecDataset Data() => new("t", ["7", "b,\"x\"", "42"], ["i"],
        [new Interaction(0, 0, 1), new Interaction(1, 0, 1), new Interaction(2, 0, 1)],
        [MovieLensAttributes.Gender, new AttributeSpec("my attr", ["a", "b", "c"])],
        [[1, RecDataset.UnknownLabel, 0], [2, 0, RecDataset.UnknownLabel]]);

    private static EmbeddingMatrix Matrix(int rows, float start) =>
        new(rows, 2, Enumerable.Range(0, rows * 2).Select(i => start + i).ToArray());

    [Fact]
    public void Users_csv_has_one_row_per_user_index_with_integer_codes()
    {
        var dir = Path.Combine(_dir.Path, "nested", "out"); // created on demand
        EmbeddingExport.Write(dir, Data(), Matrix(3, 0), Matrix(3, 100));

        File.ReadAllText(Path.Combine(dir, "users.csv")).ShouldBe(
            "user_index,user_id,gender,my attr\n" +
            "0,7,1,2\n" +
            "1,\"b,\"\"x\"\"\",-1,0\n" +
            "2,42,0,-1\n");
    }

    [Fact]
    public void Embeddings_are_written_as_npy_with_row_i_for_user_i()
    {
        EmbeddingExport.Write(_dir.Path, Data(), Matrix(3, 0), Matrix(3, 100));
        NpyFile.Read(_dir.PathOf("embeddings_original.npy")).Values.ShouldBe(Matrix(3, 0).Values);
        var cloaked = NpyFile.Read(_dir.PathOf("embeddings_cloaked.npy"));
        (cloaked.Rows, cloaked.Cols).ShouldBe((3, 2));
        cloaked.Row(2).ToArray().ShouldBe([104f, 105f]);
    }

    [Fact]
    public void Without_cloaked_embeddings_a_stale_cloaked_file_is_removed()
    {
        EmbeddingExport.Write(_dir.Path, Data(), Matrix(3, 0), Matrix(3, 100));
        EmbeddingExport.Write(_dir.Path, Data(), Matrix(3, 0), null);
        File.Exists(_dir.PathOf("embeddings_cloaked.npy")).ShouldBeFalse();
        File.Exists(_dir.PathOf("embeddings_original.npy")).ShouldBeTrue();
    }

    [Fact]
    public void A_row_count_that_differs_from_the_user_count_is_refused_before_writing()
    {
        var dir = Path.Combine(_dir.Path, "refused");
        Should.Throw<ArgumentException>(() => EmbeddingExport.Write(dir, Data(), Matrix(2, 0), null))
            .Message.ShouldContain("the original embeddings have 2 rows but data set 't' has 3 users");
        Should.Throw<ArgumentException>(() => EmbeddingExport.Write(dir, Data(), Matrix(3, 0), Matrix(4, 0)))
            .Message.ShouldContain("the cloaked embeddings have 4 rows");
        Should.Throw<ArgumentException>(() => EmbeddingExport.Write(dir, Data(), Matrix(3, 0), new EmbeddingMatrix(3, 1, new float[3])))
            .Message.ShouldContain("1 dimensions but the original ones 2");
        Directory.Exists(dir).ShouldBeFalse();
    }
}
