namespace AttrCloak.Core.Data.Loaders;

/// <summary>
/// Reads the MovieLens-100K layout: <c>u.data</c> (tab-separated user, item, rating, timestamp) and
/// <c>u.user</c> (id|age|gender|occupation|zip). Attributes follow the evaluation protocol (docs/evaluation.md):
/// gender F/M, raw ages bucketed into ML-1M's seven groups, and the 21 occupations of <c>u.occupation</c> in file order (the
/// sorted distinct values of <c>u.user</c> when that file is absent).
/// </summary>
public static class MovieLens100KLoader
{
    public const string RatingsFile = "u.data";
    public const string UsersFile = "u.user";
    public const string OccupationsFile = "u.occupation";
    public const string DatasetName = "ml-100k";

    private const string Layout = "ml-100k";
    private const string Expected = "u.data and u.user (u.occupation optional)";

    /// <exception cref="DataFormatException">A file is missing or malformed; the message names file and line.</exception>
    public static RecDataset Load(string directory)
    {
        LoaderSupport.RequireDirectory(directory, Layout, Expected);
        var ratingsPath = LoaderSupport.RequireFile(directory, RatingsFile, Layout, Expected);
        var usersPath = LoaderSupport.RequireFile(directory, UsersFile, Layout, Expected);
        var occupationsPath = Path.Combine(directory, OccupationsFile);

        var raw = MovieLensRatings.Parse(ratingsPath, "\t", "tab");
        var users = ParseUsers(usersPath);
        var occupationNames = File.Exists(occupationsPath)
            ? ParseOccupations(occupationsPath)
            : users.Values.Select(u => u.Occupation).Distinct().Order(StringComparer.Ordinal).ToArray();
        var occupationIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < occupationNames.Length; i++) occupationIndex[occupationNames[i]] = i;

        var (interactions, userIds, itemIds, userIndex) = raw.ToDense();
        var gender = LoaderSupport.Unknowns(userIds.Length);
        var age = LoaderSupport.Unknowns(userIds.Length);
        var occupation = LoaderSupport.Unknowns(userIds.Length);
        foreach (var (id, row) in users)
        {
            // Checked for every row: a malformed file is malformed even where the user has no interactions.
            if (!occupationIndex.TryGetValue(row.Occupation, out var o))
                throw DataFormatException.At(usersPath, row.Line,
                    $"occupation {LoaderSupport.Show(row.Occupation)} is not listed in {occupationsPath}");
            if (!userIndex.TryGetValue(id, out var u)) continue; // a user without interactions has nothing to recommend or cloak
            gender[u] = row.Gender;
            age[u] = MovieLensAttributes.AgeGroup(row.Age);
            occupation[u] = o;
        }
        var occupationSpec = new AttributeSpec("occupation", occupationNames);
        return new RecDataset(DatasetName, userIds, itemIds, interactions,
            [MovieLensAttributes.Gender, MovieLensAttributes.Age, occupationSpec], [gender, age, occupation]);
    }

    private readonly record struct UserRow(int Line, int Gender, int Age, string Occupation);

    private static Dictionary<long, UserRow> ParseUsers(string path)
    {
        var text = LoaderSupport.ReadText(path);
        var rows = new Dictionary<long, UserRow>();
        var cursor = new LineCursor(text);
        Span<Range> fields = stackalloc Range[6];
        while (cursor.Next(out var line))
        {
            if (line.IsWhiteSpace()) continue;
            var n = cursor.Number;
            if (!LoaderSupport.TrySplit(line, "|", fields, out var problem))
                throw DataFormatException.At(path, n, $"expected 5 '|'-separated fields (id|age|gender|occupation|zip); {problem}");
            var idText = line[fields[0]];
            var ageText = line[fields[1]];
            var genderText = line[fields[2]].Trim();
            var occupationText = line[fields[3]].Trim();
            if (!LoaderSupport.TryParseInteger(idText, out var id))
                throw DataFormatException.At(path, n, $"user id {LoaderSupport.Show(idText)} is not an integer");
            if (!LoaderSupport.TryParseInteger(ageText, out var years) || years is < 0 or > 150)
                throw DataFormatException.At(path, n, $"age {LoaderSupport.Show(ageText)} is not a whole number of years between 0 and 150");
            var gender = genderText switch
            {
                "F" => 0,
                "M" => 1,
                _ => throw DataFormatException.At(path, n, $"gender {LoaderSupport.Show(genderText)} is not 'F' or 'M'"),
            };
            if (occupationText.IsEmpty)
                throw DataFormatException.At(path, n, "empty occupation");
            if (rows.TryGetValue(id, out var first))
                throw DataFormatException.At(path, n, $"user {id} appears again (first on line {first.Line})");
            rows[id] = new UserRow(n, gender, (int)years, occupationText.ToString());
        }
        if (rows.Count == 0)
            throw DataFormatException.At(path, 1, "empty file; expected one user per line (id|age|gender|occupation|zip)");
        return rows;
    }

    private static string[] ParseOccupations(string path)
    {
        var text = LoaderSupport.ReadText(path);
        var names = new List<string>();
        var lines = new Dictionary<string, int>(StringComparer.Ordinal);
        var cursor = new LineCursor(text);
        while (cursor.Next(out var line))
        {
            var name = line.Trim();
            if (name.IsEmpty) continue;
            var s = name.ToString();
            if (lines.TryGetValue(s, out var first))
                throw DataFormatException.At(path, cursor.Number, $"occupation {LoaderSupport.Show(s)} is listed twice (first on line {first})");
            lines[s] = cursor.Number;
            names.Add(s);
        }
        if (names.Count == 0)
            throw DataFormatException.At(path, 1, "empty file; expected one occupation name per line");
        return names.ToArray();
    }
}
