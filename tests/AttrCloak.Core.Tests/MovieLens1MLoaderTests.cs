using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;

namespace AttrCloak.Core.Tests;

public sealed class MovieLens1MLoaderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    private const string Ratings = "10::1193::5::978300760\n2::661::3::978302109\n10::914::3::978301968\n3::1193::4::978300275\n";
    private const string Users = "2::F::1::10::48067\n3::M::56::16::70072\n10::M::25::12::55117\n4::F::45::7::02460\n";

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Ids_codes_and_groups_are_read_as_documented()
    {
        _dir.Write("ratings.dat", Ratings);
        _dir.Write("users.dat", Users);
        var data = MovieLens1MLoader.Load(_dir.Path);

        data.Name.ShouldBe("ml-1m");
        data.UserIds.ShouldBe(["2", "3", "10"]);
        data.ItemIds.ShouldBe(["661", "914", "1193"]);
        data.Interactions[0].ShouldBe(new Interaction(2, 2, 978300760));
        data.Attributes.ShouldBe([MovieLensAttributes.Gender, MovieLensAttributes.Age, MovieLensAttributes.Occupation1M]);
        data.Labels[0].ShouldBe([0, 1, 1]);
        data.Labels[1].ShouldBe([0, 6, 2]); // age codes 1, 56, 25
        data.Labels[2].ShouldBe([10, 16, 12]);
        data.Attributes[2].ClassNames[data.Labels[2][2]].ShouldBe("programmer");
    }

    [Fact]
    public void A_user_with_interactions_but_no_users_dat_row_is_unknown()
    {
        _dir.Write("ratings.dat", Ratings + "5::661::2::978300000\n");
        _dir.Write("users.dat", Users);
        var data = MovieLens1MLoader.Load(_dir.Path);
        data.UserIds.ShouldBe(["2", "3", "5", "10"]);
        data.Labels.ShouldAllBe(column => column[2] == RecDataset.UnknownLabel);
    }

    [Theory]
    [InlineData("2::F::1::10::48067\n3::M::30::16::70072\n", 2, "age code '30' is not one of 1, 18, 25, 35, 45, 50, 56")]
    [InlineData("2::F::1::21::48067\n", 1, "occupation code '21' is not an integer in 0-20")]
    [InlineData("2::F::1::-1::48067\n", 1, "occupation code '-1'")]
    [InlineData("2::female::1::10::48067\n", 1, "gender 'female' is not 'F' or 'M'")]
    [InlineData("2::F::1::10\n", 1, "expected 5 '::'-separated fields (UserID::Gender::Age::Occupation::Zip-code); found 4 fields")]
    [InlineData("2|F|1|10|48067\n", 1, "found 1 field")]
    [InlineData("2::F::1::10::1\n2::M::18::3::2\n", 2, "user 2 appears again (first on line 1)")]
    [InlineData("", 1, "empty file")]
    public void A_malformed_users_dat_names_file_and_line(string users, int line, string fragment)
    {
        _dir.Write("ratings.dat", Ratings);
        var file = _dir.Write("users.dat", users);
        LoaderAssert.FailsAt(() => MovieLens1MLoader.Load(_dir.Path), file, line, fragment);
    }

    [Theory]
    [InlineData("1::2::3::4\n1::2::3\n", 2, "expected 4 '::'-separated fields (user, item, rating, timestamp); found 3 fields")]
    [InlineData("1::2::3::4\n1\t2\t3\t4\n", 2, "found 1 field")]
    [InlineData("1::2::3::4::5\n", 1, "found 5 fields")]
    [InlineData("1::movie::3::4\n", 1, "item id 'movie' is not an integer")]
    [InlineData("1::2::3::yesterday\n", 1, "timestamp 'yesterday' is not an integer")]
    public void A_malformed_ratings_dat_names_file_and_line(string ratings, int line, string fragment)
    {
        var file = _dir.Write("ratings.dat", ratings);
        _dir.Write("users.dat", Users);
        LoaderAssert.FailsAt(() => MovieLens1MLoader.Load(_dir.Path), file, line, fragment);
    }

    [Fact]
    public void A_missing_users_dat_names_the_path_and_the_expected_layout()
    {
        _dir.Write("ratings.dat", Ratings);
        var e = Should.Throw<DataFormatException>(() => MovieLens1MLoader.Load(_dir.Path));
        e.Message.ShouldContain(_dir.PathOf("users.dat"));
        e.Message.ShouldContain("ratings.dat and users.dat");
    }
}
