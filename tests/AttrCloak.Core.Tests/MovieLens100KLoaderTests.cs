using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;

namespace AttrCloak.Core.Tests;

public sealed class MovieLens100KLoaderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    // Raw user ids 10, 2, 3 and item ids 100, 7, 5 appear out of order on purpose.
    private const string Ratings = "10\t5\t3\t100\n2\t7\t4\t50\n10\t7\t1\t200\n2\t5\t5\t40\n3\t100\t2\t10\n";
    private const string Users = "2|17|F|student|11111\n3|56|M|writer|22222\n10|25|M|other|T8H1N\n99|30|F|artist|00000\n";
    private const string Occupations = "writer\nstudent\nother\nartist\n";

    public void Dispose() => _dir.Dispose();

    private RecDataset LoadValid()
    {
        _dir.Write("u.data", Ratings);
        _dir.Write("u.user", Users);
        _dir.Write("u.occupation", Occupations);
        return MovieLens100KLoader.Load(_dir.Path);
    }

    [Fact]
    public void Users_and_items_are_indexed_by_numeric_raw_id()
    {
        var data = LoadValid();
        data.Name.ShouldBe("ml-100k");
        data.UserIds.ShouldBe(["2", "3", "10"]); // ordinal order would put "10" first
        data.ItemIds.ShouldBe(["5", "7", "100"]);
        data.Interactions.ShouldBe(
        [
            new Interaction(2, 0, 100), new Interaction(0, 1, 50), new Interaction(2, 1, 200),
            new Interaction(0, 0, 40), new Interaction(1, 2, 10),
        ]);
    }

    [Fact]
    public void Attributes_follow_the_evaluation_encoding()
    {
        var data = LoadValid();
        data.Attributes.Select(a => a.Name).ShouldBe(["gender", "age", "occupation"]);
        data.Attributes[0].ShouldBe(MovieLensAttributes.Gender);
        data.Attributes[1].ShouldBe(MovieLensAttributes.Age);
        data.Attributes[2].ClassNames.ShouldBe(["writer", "student", "other", "artist"]); // u.occupation file order
        data.Labels[0].ShouldBe([0, 1, 1]); // F, M, M
        data.Labels[1].ShouldBe([0, 6, 2]); // 17 -> <18, 56 -> 56+, 25 -> 25-34
        data.Labels[2].ShouldBe([1, 0, 2]); // student, writer, other
    }

    [Fact]
    public void Users_without_an_attribute_row_are_unknown_and_rows_without_interactions_are_ignored()
    {
        _dir.Write("u.data", Ratings + "7\t5\t3\t300\n");
        _dir.Write("u.user", Users);
        _dir.Write("u.occupation", Occupations);
        var data = MovieLens100KLoader.Load(_dir.Path);
        data.UserIds.ShouldBe(["2", "3", "7", "10"]); // user 99 (attributes only) is not a user of the data set
        foreach (var column in data.Labels) column[2].ShouldBe(RecDataset.UnknownLabel);
    }

    [Fact]
    public void Without_u_occupation_the_classes_are_the_sorted_values_of_u_user()
    {
        _dir.Write("u.data", Ratings);
        _dir.Write("u.user", Users);
        var data = MovieLens100KLoader.Load(_dir.Path);
        data.Attributes[2].ClassNames.ShouldBe(["artist", "other", "student", "writer"]);
        data.Labels[2].ShouldBe([2, 3, 1]);
    }

    [Fact]
    public void Windows_line_ends_and_a_missing_final_newline_are_accepted()
    {
        _dir.Write("u.data", Ratings.Replace("\n", "\r\n", StringComparison.Ordinal).TrimEnd());
        _dir.Write("u.user", Users.Replace("\n", "\r\n", StringComparison.Ordinal));
        _dir.Write("u.occupation", Occupations.Replace("\n", "\r\n", StringComparison.Ordinal));
        var data = MovieLens100KLoader.Load(_dir.Path);
        data.Interactions.Count.ShouldBe(5);
        data.Labels[2].ShouldBe([1, 0, 2]);
    }

    [Theory]
    [InlineData("1\t2\t3\t4\n5\t6\t7\n", 2, "expected 4 tab-separated fields (user, item, rating, timestamp); found 3 fields")]
    [InlineData("1\t2\t3\t4\t5\n", 1, "found 5 fields")]
    [InlineData("1 2 3 4\n", 1, "found 1 field")]
    [InlineData("1\t2\t3\t4\nx\t2\t3\t4\n", 2, "user id 'x' is not an integer")]
    [InlineData("1\t2\t3\t4\n\n1\t2.5\t3\t4\n", 3, "item id '2.5' is not an integer")]
    [InlineData("1\t2\tfive\t4\n", 1, "rating 'five' is not a number")]
    [InlineData("1\t2\t3\t88125094x\n", 1, "timestamp '88125094x' is not an integer")]
    [InlineData("1\t2\t3\t99999999999999999999\n", 1, "timestamp")]
    [InlineData("", 1, "empty file")]
    [InlineData("\n\n", 1, "empty file")]
    public void A_malformed_u_data_names_file_and_line(string ratings, int line, string fragment)
    {
        var file = _dir.Write("u.data", ratings);
        _dir.Write("u.user", Users);
        LoaderAssert.FailsAt(() => MovieLens100KLoader.Load(_dir.Path), file, line, fragment);
    }

    [Theory]
    [InlineData("2|17|F|student|1\n3|56|X|writer|2\n", 2, "gender 'X' is not 'F' or 'M'")]
    [InlineData("2|seventeen|F|student|1\n", 1, "age 'seventeen' is not a whole number of years")]
    [InlineData("2|-4|F|student|1\n", 1, "age '-4'")]
    [InlineData("2|17|F|student\n", 1, "expected 5 '|'-separated fields (id|age|gender|occupation|zip); found 4 fields")]
    [InlineData("2|17|F|student|1\n2|18|M|writer|2\n", 2, "user 2 appears again (first on line 1)")]
    [InlineData("2|17|F|astronaut|1\n", 1, "occupation 'astronaut' is not listed in")]
    [InlineData("u2|17|F|student|1\n", 1, "user id 'u2' is not an integer")]
    [InlineData("99|17|F|astronaut|1\n", 1, "occupation 'astronaut'")] // checked even for a user without interactions
    public void A_malformed_u_user_names_file_and_line(string users, int line, string fragment)
    {
        _dir.Write("u.data", Ratings);
        _dir.Write("u.occupation", Occupations);
        var file = _dir.Write("u.user", users);
        LoaderAssert.FailsAt(() => MovieLens100KLoader.Load(_dir.Path), file, line, fragment);
    }

    [Fact]
    public void A_repeated_occupation_in_u_occupation_names_file_and_line()
    {
        _dir.Write("u.data", Ratings);
        _dir.Write("u.user", Users);
        var file = _dir.Write("u.occupation", "writer\nstudent\nwriter\n");
        LoaderAssert.FailsAt(() => MovieLens100KLoader.Load(_dir.Path), file, 3, "listed twice (first on line 1)");
    }

    [Fact]
    public void A_missing_file_names_the_path_and_the_expected_layout()
    {
        _dir.Write("u.data", Ratings);
        var e = Should.Throw<DataFormatException>(() => MovieLens100KLoader.Load(_dir.Path));
        e.Message.ShouldContain(_dir.PathOf("u.user"));
        e.Message.ShouldContain("file not found");
        e.Message.ShouldContain("u.data and u.user");
    }

    [Fact]
    public void A_missing_directory_names_the_path_and_the_expected_files()
    {
        var missing = _dir.PathOf("nope");
        var e = Should.Throw<DataFormatException>(() => MovieLens100KLoader.Load(missing));
        e.Message.ShouldStartWith(missing);
        e.Message.ShouldContain("directory not found");
        e.Message.ShouldContain("u.data and u.user");
    }
}
