using System.Text;

namespace AttrCloak.Streaming.Contracts;

/// <summary>
/// The string rules of schemas/v1 ($defs/text and its users), shared by the JSON and binary codecs and the
/// encoders, so that every path accepts exactly the same identifiers.
/// </summary>
internal static class TextRules
{
    public const int MaxIdLength = 128;
    public const int MaxNameLength = 64;
    public const int MaxAttributes = 64;

    /// <summary>
    /// Non-empty, at most <paramref name="maxCodePoints"/> Unicode code points (as JSON Schema's maxLength
    /// counts), no control character (Cc: U+0000-U+001F, U+007F-U+009F), no lone surrogate.
    /// </summary>
    public static bool IsValid(ReadOnlySpan<char> text, int maxCodePoints)
    {
        if (text.IsEmpty)
            return false;
        var codePoints = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c <= '\u001F' || c is >= '\u007F' and <= '\u009F')
                return false;
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1]))
                    return false;
                i++;
            }
            else if (char.IsLowSurrogate(c))
            {
                return false;
            }
            if (++codePoints > maxCodePoints)
                return false;
        }
        return true;
    }

    /// <summary>
    /// A member or attribute name as it may appear in a message: printable ASCII only, cut to 40 characters,
    /// so that an error message never carries arbitrary producer text (which could be personal data).
    /// </summary>
    public static string Sanitize(ReadOnlySpan<char> name)
    {
        const int max = 40;
        var sb = new StringBuilder(Math.Min(name.Length, max) + 1);
        foreach (var c in name)
        {
            if (sb.Length == max)
            {
                sb.Append('…');
                break;
            }
            sb.Append(c is >= ' ' and <= '~' ? c : '?');
        }
        return sb.ToString();
    }
}

/// <summary>
/// Strict RFC 3339 date-time: <c>YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)</c>, T and Z in either case. Stricter
/// than <see cref="DateTimeOffset.TryParse(string?, out DateTimeOffset)"/>, which also takes dates without time or
/// offset. Fractions beyond 100 ns are truncated. A leap second (:60, which RFC 3339 and JSON Schema's date-time
/// allow) becomes the last 100 ns tick of its minute, so that order within the minute holds. Year 0000 is
/// rejected. Offsets of up to ±23:59 are accepted (RFC 3339 allows them; .NET does not), so the result is
/// normalised to UTC.
/// </summary>
internal static class Rfc3339
{
    public static bool TryParse(ReadOnlySpan<char> s, out DateTimeOffset value)
    {
        value = default;
        if (s.Length < 20)
            return false;
        if (!Digits(s, 0, 4, out var year) || s[4] != '-' || !Digits(s, 5, 2, out var month) || s[7] != '-'
            || !Digits(s, 8, 2, out var day) || (s[10] | 0x20) != 't' || !Digits(s, 11, 2, out var hour) || s[13] != ':'
            || !Digits(s, 14, 2, out var minute) || s[16] != ':' || !Digits(s, 17, 2, out var second))
            return false;
        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month)
            || hour > 23 || minute > 59 || second > 60)
            return false;
        var leapSecond = second == 60;
        if (leapSecond)
            second = 59;

        var i = 19;
        long fractionTicks = 0;
        if (s[i] == '.')
        {
            i++;
            var start = i;
            var scale = (long)TimeSpan.TicksPerSecond;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                if (scale > 1)
                {
                    scale /= 10;
                    fractionTicks += (s[i] - '0') * scale;
                }
                i++;
            }
            if (i == start)
                return false;
        }
        if (i >= s.Length)
            return false;

        int offsetMinutes;
        if ((s[i] | 0x20) == 'z')
        {
            offsetMinutes = 0;
            i++;
        }
        else if (s[i] is '+' or '-')
        {
            if (s.Length - i != 6 || !Digits(s, i + 1, 2, out var oh) || s[i + 3] != ':' || !Digits(s, i + 4, 2, out var om)
                || oh > 23 || om > 59)
                return false;
            offsetMinutes = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
            i += 6;
        }
        else
        {
            return false;
        }
        if (i != s.Length)
            return false;

        if (leapSecond)
            fractionTicks = TimeSpan.TicksPerSecond - 1;
        var local = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Unspecified).Ticks + fractionTicks;
        var utc = local - offsetMinutes * TimeSpan.TicksPerMinute;
        if (utc < DateTime.MinValue.Ticks || utc > DateTime.MaxValue.Ticks)
            return false;
        value = new DateTimeOffset(utc, TimeSpan.Zero);
        return true;
    }

    private static bool Digits(ReadOnlySpan<char> s, int start, int count, out int value)
    {
        value = 0;
        for (var k = start; k < start + count; k++)
        {
            var c = s[k];
            if (!char.IsAsciiDigit(c))
                return false;
            value = value * 10 + (c - '0');
        }
        return true;
    }
}
