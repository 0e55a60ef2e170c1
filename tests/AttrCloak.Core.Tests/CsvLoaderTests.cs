using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Loaders;

namespace AttrCloak.Core.Tests;

public sealed class CsvLoaderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private RecDataset Load(string interactions, string users)
    {
        _dir.Write("interactions.csv", interactions);
        _dir.Write("users.csv", users);
        return CsvLoader.Load(_dir.Path);
    }

    [Fact]
    public void String_ids_are_ordered_ordinally_and_quoted_fields_are_unquoted()
    {
        var data = Load(
            "user,item,timestamp\nu10,\"The Matrix, 1999\",5\nu2,Alien,3\nu10,Alien,7\n\"u2\",\"Say \"\"Hi\"\"\",1\n",
            "user,gender,age\nu2,F,9\nu10,,10\nu99,M,30\n");

        data.UserIds.ShouldBe(["u10", "u2"]);
        data.ItemIds.ShouldBe(["Alien", "Say \"Hi\"", "The Matrix, 1999"]);
        data.Interactions.ShouldBe(
        [
            new Interaction(0, 2, 5), new Interaction(1, 0, 3), new Interaction(0, 0, 7), new Interaction(1, 1, 1),
        ]);
        data.Attributes.Select(a => a.Name).ShouldBe(["gender", "age"]);
        // Classes come only from users with interactions (u99's "M" and "30" are not classes) and integer
        // values sort numerically ("9" before "10").
        data.Attributes[0].ClassNames.ShouldBe(["F"]);
        data.Attributes[1].ClassNames.ShouldBe(["9", "10"]);
        data.Labels[0].ShouldBe([RecDataset.UnknownLabel, 0]); // u10's empty gender cell is unknown
        data.Labels[1].ShouldBe([1, 0]);
    }

    [Fact]
    public void Integer_ids_are_ordered_numerically()
    {
        var data = Load("user,item\n10,3\n9,20\n100,3\n", "user,group\n9,a\n10,b\n100,a\n");
        data.UserIds.ShouldBe(["9", "10", "100"]);
        data.ItemIds.ShouldBe(["3", "20"]);
        data.Labels[0].ShouldBe([0, 1, 0]);
    }

    [Fact]
    public void Without_a_timestamp_column_file_order_is_time_order()
    {
        var data = Load("user,item\na,x\na,y\nb,x\n", "user,g\na,1\nb,2\n");
        data.Interactions.Select(x => x.Timestamp).ShouldBe([0L, 1L, 2L]);
    }

    [Fact]
    public void Columns_are_found_by_name_in_any_order_and_extra_columns_are_ignored()
    {
        var data = Load("Rating,ITEM,Timestamp,User\n5,x,100,a\n3,y,50,b\n", "gender,USER\nM,a\nF,b\n");
        data.Interactions.ShouldBe([new Interaction(0, 0, 100), new Interaction(1, 1, 50)]);
        data.Attributes.Single().Name.ShouldBe("gender");
        data.Labels[0].ShouldBe([1, 0]);
    }

    [Fact]
    public void Users_without_a_row_are_unknown_and_a_quoted_field_may_span_lines()
    {
        var data = Load("user,item\na,\"two\nlines\"\nc,x\n", "user,g\na,1\n");
        data.ItemIds.ShouldBe(["two\nlines", "x"]);
        data.Labels[0].ShouldBe([0, RecDataset.UnknownLabel]);
    }

    [Theory]
    [InlineData("user,item,timestamp\na,x,1\nb,y\n", 3, "expected 3 fields as in the header (user,item,timestamp), found 2")]
    [InlineData("user,timestamp\na,1\n", 1, "missing header column 'item'; expected user,item[,timestamp], found user,timestamp")]
    [InlineData("item\nx\n", 1, "missing header column 'user'")]
    [InlineData("user,item,timestamp\na,x,noon\n", 2, "timestamp 'noon' is not an integer")]
    [InlineData("user,item\na,\"x\n", 2, "a quoted field is never closed")]
    [InlineData("user,item\na,\"x\"y\n", 2, "unexpected character 'y' after a closing quote")]
    [InlineData("user,item\n,x\n", 2, "empty user id")]
    [InlineData("user,item\na,\n", 2, "empty item id")]
    [InlineData("user,item,user\na,x,b\n", 1, "header names column 'user' twice")]
    [InlineData("user,,item\na,b,x\n", 1, "header column 2 has no name")]
    [InlineData("", 1, "empty file; expected a header line user,item[,timestamp]")]
    [InlineData("user,item\n", 1, "no interactions after the header")]
    [InlineData("user,item\na,\"multi\nline\"\nb,x,extra\n", 4, "expected 2 fields")] // line numbers count lines inside quotes
    public void A_malformed_interactions_csv_names_file_and_line(string interactions, int line, string fragment)
    {
        var file = _dir.Write("interactions.csv", interactions);
        _dir.Write("users.csv", "user,g\na,1\n");
        LoaderAssert.FailsAt(() => CsvLoader.Load(_dir.Path), file, line, fragment);
    }

    [Theory]
    [InlineData("user,g\na,1\na,2\n", 3, "user 'a' appears again (first on line 2)")]
    [InlineData("user\na\n", 1, "no attribute column")]
    [InlineData("id,g\na,1\n", 1, "missing header column 'user'")]
    [InlineData("user,g\na,1,2\n", 2, "expected 2 fields as in the header (user,g), found 3")]
    [InlineData("user,g\na,\n", 1, "column 'g' has no value for any user that appears in")]
    [InlineData("", 1, "empty file; expected a header line user,<attribute>,...")]
    public void A_malformed_users_csv_names_file_and_line(string users, int line, string fragment)
    {
        _dir.Write("interactions.csv", "user,item\na,x\n");
        var file = _dir.Write("users.csv", users);
        LoaderAssert.FailsAt(() => CsvLoader.Load(_dir.Path), file, line, fragment);
    }

    [Fact]
    public void A_missing_users_csv_names_the_path_and_the_expected_layout()
    {
        _dir.Write("interactions.csv", "user,item\na,x\n");
        var e = Should.Throw<DataFormatException>(() => CsvLoader.Load(_dir.Path));
        e.Message.ShouldContain(_dir.PathOf("users.csv"));
        e.Message.ShouldContain("interactions.csv (header user,item[,timestamp]) and users.csv");
    }

    [Fact]
    public void The_data_set_is_named_after_its_directory()
    {
        var sub = Path.Combine(_dir.Path, "my-shop");
        Directory.CreateDirectory(sub);
        File.WriteAllText(Path.Combine(sub, "interactions.csv"), "user,item\na,x\n");
        File.WriteAllText(Path.Combine(sub, "users.csv"), "user,g\na,1\n");
        CsvLoader.Load(sub + Path.DirectorySeparatorChar).Name.ShouldBe("my-shop");
    }
}
