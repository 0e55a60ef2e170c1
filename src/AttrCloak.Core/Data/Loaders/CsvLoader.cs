namespace AttrCloak.Core.Data.Loaders;

/// <summary>
/// Reads the generic layout for other data sets: <c>interactions.csv</c> with a header naming columns
/// <c>user</c>, <c>item</c> and optionally <c>timestamp</c> (other columns are ignored, e.g. a rating), and
/// <c>users.csv</c> with a <c>user</c> column and one categorical column per private attribute. Column names
/// are matched case-insensitively. Ids are opaque strings; an attribute's classes are its distinct non-empty
/// values among the users that have interactions, in numeric order when all are integers (ordinal
/// otherwise); an empty cell means unknown. Without a timestamp column the file order is the time order.
/// Duplicate (user, item) rows are kept as they are: the split and the trainers decide what a repeat means.
/// </summary>
public static class CsvLoader
{
    public const string InteractionsFile = "interactions.csv";
    public const string UsersFile = "users.csv";

    private const string Layout = "csv";
    private const string Expected = "interactions.csv (header user,item[,timestamp]) and users.csv (header user,<attribute>,...)";

    /// <summary>Loads the layout; the data set is named after the directory.</summary>
    /// <exception cref="DataFormatException">A file is missing or malformed; the message names file and line.</exception>
    public static RecDataset Load(string directory)
    {
        LoaderSupport.RequireDirectory(directory, Layout, Expected);
        var interactionsPath = LoaderSupport.RequireFile(directory, InteractionsFile, Layout, Expected);
        var usersPath = LoaderSupport.RequireFile(directory, UsersFile, Layout, Expected);

        var (rawUsers, rawItems, timestamps) = ReadInteractions(interactionsPath);
        var userIds = LoaderSupport.NaturalOrder(rawUsers.Distinct(StringComparer.Ordinal));
        var itemIds = LoaderSupport.NaturalOrder(rawItems.Distinct(StringComparer.Ordinal));
        var userIndex = IndexOf(userIds);
        var itemIndex = IndexOf(itemIds);
        var interactions = new Interaction[rawUsers.Count];
        for (var k = 0; k < interactions.Length; k++)
            interactions[k] = new Interaction(userIndex[rawUsers[k]], itemIndex[rawItems[k]], timestamps[k]);

        var (attributeNames, rows) = ReadUsers(usersPath);
        var specs = new AttributeSpec[attributeNames.Length];
        var labels = new int[attributeNames.Length][];
        for (var a = 0; a < attributeNames.Length; a++)
        {
            // Classes come from the users we keep, so no class exists that has no member to train or score on.
            var values = rows.Where(r => userIndex.ContainsKey(r.Key)).Select(r => r.Value.Values[a])
                .Where(v => v.Length > 0).Distinct(StringComparer.Ordinal);
            var classes = LoaderSupport.NaturalOrder(values);
            if (classes.Length == 0)
                throw DataFormatException.At(usersPath, 1,
                    $"column '{attributeNames[a]}' has no value for any user that appears in {interactionsPath}");
            specs[a] = new AttributeSpec(attributeNames[a], classes);
            var classIndex = IndexOf(classes);
            var column = LoaderSupport.Unknowns(userIds.Length);
            foreach (var (user, row) in rows)
            {
                if (!userIndex.TryGetValue(user, out var u)) continue; // attribute rows of users without interactions are ignored
                var v = row.Values[a];
                if (v.Length > 0) column[u] = classIndex[v];
            }
            labels[a] = column;
        }
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
        return new RecDataset(string.IsNullOrEmpty(name) ? "csv" : name, userIds, itemIds, interactions, specs, labels);
    }

    private static (List<string> Users, List<string> Items, List<long> Timestamps) ReadInteractions(string path)
    {
        var reader = new CsvRecordReader(LoaderSupport.ReadText(path), path);
        if (!reader.TryRead(out var header))
            throw DataFormatException.At(path, 1, "empty file; expected a header line user,item[,timestamp]");
        var columns = Columns(path, header);
        var userColumn = Required(path, header, columns, "user", "user,item[,timestamp]");
        var itemColumn = Required(path, header, columns, "item", "user,item[,timestamp]");
        var timeColumn = columns.GetValueOrDefault("timestamp", -1);

        var users = new List<string>();
        var items = new List<string>();
        var times = new List<long>();
        while (reader.TryRead(out var record))
        {
            CheckWidth(path, header, record);
            var user = record.Fields[userColumn];
            var item = record.Fields[itemColumn];
            if (user.Length == 0) throw DataFormatException.At(path, record.Line, "empty user id");
            if (item.Length == 0) throw DataFormatException.At(path, record.Line, "empty item id");
            long time = users.Count; // file order stands in for time when there is no timestamp column
            if (timeColumn >= 0 && !LoaderSupport.TryParseInteger(record.Fields[timeColumn], out time))
                throw DataFormatException.At(path, record.Line,
                    $"timestamp {LoaderSupport.Show(record.Fields[timeColumn])} is not an integer");
            users.Add(user);
            items.Add(item);
            times.Add(time);
        }
        if (users.Count == 0)
            throw DataFormatException.At(path, header.Line, "no interactions after the header");
        return (users, items, times);
    }

    private readonly record struct UserRow(int Line, string[] Values);

    private static (string[] AttributeNames, Dictionary<string, UserRow> Rows) ReadUsers(string path)
    {
        var reader = new CsvRecordReader(LoaderSupport.ReadText(path), path);
        if (!reader.TryRead(out var header))
            throw DataFormatException.At(path, 1, "empty file; expected a header line user,<attribute>,...");
        var columns = Columns(path, header);
        var userColumn = Required(path, header, columns, "user", "user,<attribute>,...");
        var attributeColumns = Enumerable.Range(0, header.Fields.Length).Where(c => c != userColumn).ToArray();
        if (attributeColumns.Length == 0)
            throw DataFormatException.At(path, header.Line, "no attribute column; expected a header line user,<attribute>,...");
        var names = attributeColumns.Select(c => header.Fields[c]).ToArray();

        var rows = new Dictionary<string, UserRow>(StringComparer.Ordinal);
        while (reader.TryRead(out var record))
        {
            CheckWidth(path, header, record);
            var user = record.Fields[userColumn];
            if (user.Length == 0) throw DataFormatException.At(path, record.Line, "empty user id");
            if (rows.TryGetValue(user, out var first))
                throw DataFormatException.At(path, record.Line, $"user {LoaderSupport.Show(user)} appears again (first on line {first.Line})");
            rows[user] = new UserRow(record.Line, attributeColumns.Select(c => record.Fields[c]).ToArray());
        }
        return (names, rows);
    }

    private static Dictionary<string, int> Columns(string path, CsvRecord header)
    {
        var columns = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var c = 0; c < header.Fields.Length; c++)
        {
            var name = header.Fields[c];
            if (name.Length == 0)
                throw DataFormatException.At(path, header.Line, $"header column {c + 1} has no name");
            if (!columns.TryAdd(name, c))
                throw DataFormatException.At(path, header.Line, $"header names column '{name}' twice");
        }
        return columns;
    }

    private static int Required(string path, CsvRecord header, Dictionary<string, int> columns, string name, string expected) =>
        columns.TryGetValue(name, out var c)
            ? c
            : throw DataFormatException.At(path, header.Line,
                $"missing header column '{name}'; expected {expected}, found {string.Join(",", header.Fields)}");

    private static void CheckWidth(string path, CsvRecord header, CsvRecord record)
    {
        if (record.Fields.Length != header.Fields.Length)
            throw DataFormatException.At(path, record.Line,
                $"expected {header.Fields.Length} fields as in the header ({string.Join(",", header.Fields)}), found {record.Fields.Length}");
    }

    private static Dictionary<string, int> IndexOf(string[] values)
    {
        var index = new Dictionary<string, int>(values.Length, StringComparer.Ordinal);
        for (var i = 0; i < values.Length; i++) index[values[i]] = i;
        return index;
    }
}
