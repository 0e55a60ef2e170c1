using System.Globalization;

namespace AttrCloak.Core.Data.Loaders;

/// <summary>
/// Walks a text line by line over spans, so a million-line file costs no per-line string. Line numbers are
/// 1-based as editors show them; a trailing '\r' (Windows line ends) is dropped.
/// </summary>
internal ref struct LineCursor(ReadOnlySpan<char> text)
{
    private ReadOnlySpan<char> _rest = text;
    private bool _done = text.IsEmpty;

    public int Number { get; private set; }

    public bool Next(out ReadOnlySpan<char> line)
    {
        if (_done)
        {
            line = default;
            return false;
        }
        var nl = _rest.IndexOf('\n');
        if (nl < 0)
        {
            line = _rest;
            _done = true;
        }
        else
        {
            line = _rest[..nl];
            _rest = _rest[(nl + 1)..];
            _done = _rest.IsEmpty; // a final '\n' ends the file; it does not open an empty last line
        }
        if (!line.IsEmpty && line[^1] == '\r') line = line[..^1];
        Number++;
        return true;
    }
}

/// <summary>File access and field parsing shared by the loaders; every failure becomes a <see cref="DataFormatException"/>.</summary>
internal static class LoaderSupport
{
    /// <summary>Fails with a message that names the directory and the files the layout expects.</summary>
    public static void RequireDirectory(string directory, string layout, string expectedFiles)
    {
        if (string.IsNullOrWhiteSpace(directory))
            throw new DataFormatException($"no directory given; the {layout} layout expects a directory with {expectedFiles}");
        if (!Directory.Exists(directory))
            throw new DataFormatException($"{directory}: directory not found; the {layout} layout expects a directory with {expectedFiles}");
    }

    /// <summary>The full path of a required file, or a message that names it and the files the layout expects.</summary>
    public static string RequireFile(string directory, string fileName, string layout, string expectedFiles)
    {
        var path = Path.Combine(directory, fileName);
        if (!File.Exists(path))
            throw new DataFormatException($"{path}: file not found; the {layout} layout expects {expectedFiles} in {directory}");
        return path;
    }

    public static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{path}: cannot read the file: {e.Message}");
        }
    }

    /// <summary>
    /// Splits <paramref name="line"/> into exactly <paramref name="ranges"/>.Length - 1 fields, or describes
    /// the mismatch. The spare slot lets us notice extra fields without counting them on the happy path.
    /// </summary>
    public static bool TrySplit(ReadOnlySpan<char> line, ReadOnlySpan<char> separator, Span<Range> ranges, out string problem)
    {
        var expected = ranges.Length - 1;
        var count = line.Split(ranges, separator);
        if (count == expected)
        {
            problem = "";
            return true;
        }
        var found = line.IsEmpty ? 0 : MemoryExtensions.Count(line, separator) + 1;
        problem = $"found {found} field{(found == 1 ? "" : "s")}";
        return false;
    }

    /// <summary>An integer with an optional sign and surrounding blanks; nothing else (no decimals, no thousands separators).</summary>
    public static bool TryParseInteger(ReadOnlySpan<char> text, out long value) =>
        long.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);

    /// <summary>A label column with every user unknown until an attribute row says otherwise.</summary>
    public static int[] Unknowns(int n)
    {
        var labels = new int[n];
        Array.Fill(labels, RecDataset.UnknownLabel);
        return labels;
    }

    /// <summary>A field as it should appear in an error message: quoted, and shortened if it is long.</summary>
    public static string Show(ReadOnlySpan<char> field)
    {
        const int max = 40;
        var text = field.Length <= max ? field.ToString() : string.Concat(field[..max], "...");
        return $"'{text}'";
    }

    /// <summary>
    /// Dense indices for integer raw ids, in numeric order, and the ids as invariant strings. Sorting the
    /// distinct ids (not first appearance) makes index i the same user whatever order the file lists them.
    /// </summary>
    public static Dictionary<long, int> DenseIntegerIds(ReadOnlySpan<long> rawIds, out string[] ids)
    {
        var distinct = new HashSet<long>();
        foreach (var id in rawIds) distinct.Add(id);
        var sorted = distinct.ToArray();
        Array.Sort(sorted);
        var index = new Dictionary<long, int>(sorted.Length);
        ids = new string[sorted.Length];
        for (var i = 0; i < sorted.Length; i++)
        {
            index[sorted[i]] = i;
            ids[i] = sorted[i].ToString(CultureInfo.InvariantCulture);
        }
        return index;
    }

    /// <summary>
    /// Orders distinct string values numerically when every one of them is an integer ("2" before "10"),
    /// ordinally otherwise; equal numbers written differently ("7", "007") stay distinct and sort ordinally.
    /// </summary>
    public static string[] NaturalOrder(IEnumerable<string> distinctValues)
    {
        var values = distinctValues.ToArray();
        var numbers = new long[values.Length];
        var allIntegers = true;
        for (var i = 0; i < values.Length && allIntegers; i++)
            allIntegers = TryParseInteger(values[i], out numbers[i]);
        if (allIntegers)
        {
            var keyed = values.Select((v, i) => (Number: numbers[i], Text: v)).ToArray();
            Array.Sort(keyed, (a, b) =>
            {
                var c = a.Number.CompareTo(b.Number);
                return c != 0 ? c : string.CompareOrdinal(a.Text, b.Text);
            });
            return keyed.Select(k => k.Text).ToArray();
        }
        Array.Sort(values, StringComparer.Ordinal);
        return values;
    }
}

/// <summary>Growable columns of raw (user, item, timestamp) triples, cheaper than a list of tuples for ML-1M's million rows.</summary>
internal sealed class RawInteractions(int capacity)
{
    private long[] _users = new long[Math.Max(16, capacity)];
    private long[] _items = new long[Math.Max(16, capacity)];
    private long[] _timestamps = new long[Math.Max(16, capacity)];

    public int Count { get; private set; }
    public ReadOnlySpan<long> Users => _users.AsSpan(0, Count);
    public ReadOnlySpan<long> Items => _items.AsSpan(0, Count);
    public ReadOnlySpan<long> Timestamps => _timestamps.AsSpan(0, Count);

    public void Add(long user, long item, long timestamp)
    {
        if (Count == _users.Length)
        {
            var size = _users.Length * 2;
            Array.Resize(ref _users, size);
            Array.Resize(ref _items, size);
            Array.Resize(ref _timestamps, size);
        }
        _users[Count] = user;
        _items[Count] = item;
        _timestamps[Count] = timestamp;
        Count++;
    }

    /// <summary>Re-indexes users and items densely by numeric id; interactions keep file order.</summary>
    public (Interaction[] Interactions, string[] UserIds, string[] ItemIds, Dictionary<long, int> UserIndex) ToDense()
    {
        var userIndex = LoaderSupport.DenseIntegerIds(Users, out var userIds);
        var itemIndex = LoaderSupport.DenseIntegerIds(Items, out var itemIds);
        var interactions = new Interaction[Count];
        for (var k = 0; k < Count; k++)
            interactions[k] = new Interaction(userIndex[_users[k]], itemIndex[_items[k]], _timestamps[k]);
        return (interactions, userIds, itemIds, userIndex);
    }
}
