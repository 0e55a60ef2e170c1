using System.Globalization;

namespace AttrCloak.Core.Data.Loaders;

/// <summary>
/// The ratings files of both MovieLens layouts (user, item, rating, timestamp with a layout-specific
/// separator). Every rating is an implicit positive, but the rating is still checked to be a number so a
/// shifted column is caught here rather than silently producing wrong timestamps.
/// </summary>
internal static class MovieLensRatings
{
    public static RawInteractions Parse(string path, string separator, string separatorName)
    {
        var text = LoaderSupport.ReadText(path);
        // ~20 characters per line in both layouts; over-estimating once beats resizing a million-row table.
        var rows = new RawInteractions(text.Length / 16);
        var cursor = new LineCursor(text);
        Span<Range> fields = stackalloc Range[5];
        while (cursor.Next(out var line))
        {
            if (line.IsWhiteSpace()) continue;
            if (!LoaderSupport.TrySplit(line, separator, fields, out var problem))
                throw Error(path, cursor.Number, $"expected 4 {separatorName}-separated fields (user, item, rating, timestamp); {problem}");
            var userText = line[fields[0]];
            var itemText = line[fields[1]];
            var ratingText = line[fields[2]];
            var timeText = line[fields[3]];
            if (!LoaderSupport.TryParseInteger(userText, out var user))
                throw Error(path, cursor.Number, $"user id {LoaderSupport.Show(userText)} is not an integer");
            if (!LoaderSupport.TryParseInteger(itemText, out var item))
                throw Error(path, cursor.Number, $"item id {LoaderSupport.Show(itemText)} is not an integer");
            if (!double.TryParse(ratingText.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                throw Error(path, cursor.Number, $"rating {LoaderSupport.Show(ratingText)} is not a number");
            if (!LoaderSupport.TryParseInteger(timeText, out var timestamp))
                throw Error(path, cursor.Number, $"timestamp {LoaderSupport.Show(timeText)} is not an integer (seconds since 1970)");
            rows.Add(user, item, timestamp);
        }
        if (rows.Count == 0)
            throw Error(path, 1, "empty file; expected one interaction per line (user, item, rating, timestamp)");
        return rows;
    }

    private static DataFormatException Error(string path, int line, string problem) => DataFormatException.At(path, line, problem);
}
