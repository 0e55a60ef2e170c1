namespace AttrCloak.Core.Data.Loaders;

/// <summary>
/// Reads the MovieLens-1M layout: <c>ratings.dat</c> (UserID::MovieID::Rating::Timestamp) and
/// <c>users.dat</c> (UserID::Gender::Age::Occupation::Zip-code). ML-1M already codes age as one of seven
/// groups (1, 18, 25, 35, 45, 50, 56 become 0..6) and occupation as 0-20; both are checked, not trusted.
/// </summary>
public static class MovieLens1MLoader
{
    public const string RatingsFile = "ratings.dat";
    public const string UsersFile = "users.dat";
    public const string DatasetName = "ml-1m";

    private const string Layout = "ml-1m";
    private const string Expected = "ratings.dat and users.dat";
    private static readonly int[] AgeCodes = [1, 18, 25, 35, 45, 50, 56];

    /// <exception cref="DataFormatException">A file is missing or malformed; the message names file and line.</exception>
    public static RecDataset Load(string directory)
    {
        LoaderSupport.RequireDirectory(directory, Layout, Expected);
        var ratingsPath = LoaderSupport.RequireFile(directory, RatingsFile, Layout, Expected);
        var usersPath = LoaderSupport.RequireFile(directory, UsersFile, Layout, Expected);

        var raw = MovieLensRatings.Parse(ratingsPath, "::", "'::'");
        var (interactions, userIds, itemIds, userIndex) = raw.ToDense();
        var gender = LoaderSupport.Unknowns(userIds.Length);
        var age = LoaderSupport.Unknowns(userIds.Length);
        var occupation = LoaderSupport.Unknowns(userIds.Length);

        var text = LoaderSupport.ReadText(usersPath);
        var seen = new Dictionary<long, int>();
        var cursor = new LineCursor(text);
        Span<Range> fields = stackalloc Range[6];
        while (cursor.Next(out var line))
        {
            if (line.IsWhiteSpace()) continue;
            var n = cursor.Number;
            if (!LoaderSupport.TrySplit(line, "::", fields, out var problem))
                throw DataFormatException.At(usersPath, n, $"expected 5 '::'-separated fields (UserID::Gender::Age::Occupation::Zip-code); {problem}");
            var idText = line[fields[0]];
            var genderText = line[fields[1]].Trim();
            var ageText = line[fields[2]];
            var occupationText = line[fields[3]];
            if (!LoaderSupport.TryParseInteger(idText, out var id))
                throw DataFormatException.At(usersPath, n, $"user id {LoaderSupport.Show(idText)} is not an integer");
            var g = genderText switch
            {
                "F" => 0,
                "M" => 1,
                _ => throw DataFormatException.At(usersPath, n, $"gender {LoaderSupport.Show(genderText)} is not 'F' or 'M'"),
            };
            var a = LoaderSupport.TryParseInteger(ageText, out var ageCode) && ageCode is >= 0 and <= 200
                ? Array.IndexOf(AgeCodes, (int)ageCode)
                : -1;
            if (a < 0)
                throw DataFormatException.At(usersPath, n, $"age code {LoaderSupport.Show(ageText)} is not one of {string.Join(", ", AgeCodes)}");
            if (!LoaderSupport.TryParseInteger(occupationText, out var o) || o is < 0 or > 20)
                throw DataFormatException.At(usersPath, n, $"occupation code {LoaderSupport.Show(occupationText)} is not an integer in 0-20");
            if (!seen.TryAdd(id, n))
                throw DataFormatException.At(usersPath, n, $"user {id} appears again (first on line {seen[id]})");
            if (!userIndex.TryGetValue(id, out var u)) continue; // no interactions: nothing to recommend or cloak
            gender[u] = g;
            age[u] = a;
            occupation[u] = (int)o;
        }
        if (seen.Count == 0)
            throw DataFormatException.At(usersPath, 1, "empty file; expected one user per line (UserID::Gender::Age::Occupation::Zip-code)");

        return new RecDataset(DatasetName, userIds, itemIds, interactions,
            [MovieLensAttributes.Gender, MovieLensAttributes.Age, MovieLensAttributes.Occupation1M], [gender, age, occupation]);
    }
}
