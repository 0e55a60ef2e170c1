using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;
using AttrCloak.Core.Data.Synthetic;

namespace AttrCloak.Core.Tests;

public sealed class DatasetLoaderTests
{
    [Theory]
    [InlineData("ml-100k", DatasetKind.MovieLens100K)]
    [InlineData("ML-1M", DatasetKind.MovieLens1M)]
    [InlineData(" csv ", DatasetKind.Csv)]
    [InlineData("synthetic", DatasetKind.Synthetic)]
    [InlineData("MovieLens100K", DatasetKind.MovieLens100K)]
    public void Names_parse_case_insensitively(string name, DatasetKind kind) =>
        DatasetKindNames.Parse(name).ShouldBe(kind);

    [Fact]
    public void Every_kind_has_a_name_that_parses_back()
    {
        foreach (var kind in Enum.GetValues<DatasetKind>())
            DatasetKindNames.Parse(kind.ToName()).ShouldBe(kind);
        DatasetKindNames.Names.ShouldBe(["ml-100k", "ml-1m", "csv", "synthetic"]);
    }

    [Fact]
    public void An_unknown_name_lists_the_accepted_ones()
    {
        DatasetKindNames.TryParse("ml-20m", out _).ShouldBeFalse();
        DatasetKindNames.TryParse(null, out _).ShouldBeFalse();
        var e = Should.Throw<ArgumentException>(() => DatasetKindNames.Parse("ml-20m"));
        e.Message.ShouldContain("unknown data set 'ml-20m'; expected one of: ml-100k, ml-1m, csv, synthetic");
    }

    [Fact]
    public void Synthetic_needs_no_directory()
    {
        var data = DatasetLoader.Load(DatasetKind.Synthetic, "", new SyntheticOptions { Users = 30, Items = 200 });
        data.Name.ShouldBe("synthetic");
        data.UserCount.ShouldBe(30);
    }

    [Theory]
    [InlineData(DatasetKind.MovieLens100K, "u.data and u.user")]
    [InlineData(DatasetKind.MovieLens1M, "ratings.dat and users.dat")]
    [InlineData(DatasetKind.Csv, "interactions.csv")]
    public void A_missing_directory_says_what_the_layout_expects(DatasetKind kind, string expected)
    {
        var missing = Path.Combine(Path.GetTempPath(), "attrcloak-core-tests", "does-not-exist-" + Guid.NewGuid().ToString("N"));
        var e = Should.Throw<DataFormatException>(() => DatasetLoader.Load(kind, missing));
        e.Message.ShouldContain(missing);
        e.Message.ShouldContain(expected);
    }

    [Fact]
    public void An_empty_directory_argument_is_a_data_format_error_not_a_crash()
    {
        var e = Should.Throw<DataFormatException>(() => DatasetLoader.Load(DatasetKind.MovieLens1M, " "));
        e.Message.ShouldContain("no directory given");
    }
}
