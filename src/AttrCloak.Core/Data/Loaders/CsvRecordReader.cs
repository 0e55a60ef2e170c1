using System.Text;

namespace AttrCloak.Core.Data.Loaders;

/// <summary>One CSV record and the 1-based line it starts on (a quoted field may carry it over several lines).</summary>
internal readonly record struct CsvRecord(int Line, string[] Fields);

/// <summary>
/// A minimal RFC 4180 reader: comma-separated fields, optionally enclosed in double quotes, where "" inside
/// quotes is a literal quote and a quoted field may contain commas and line breaks. Unquoted fields are
/// trimmed of surrounding blanks (hand-edited files have them; ids and labels never mean them). Blank lines
/// are skipped. Hand-written because the layout is tiny and the errors must name file and line.
/// </summary>
internal sealed class CsvRecordReader(string text, string path)
{
    private int _position;
    private int _line = 1;
    private readonly List<string> _fields = [];
    private readonly StringBuilder _field = new();

    public bool TryRead(out CsvRecord record)
    {
        while (_position < text.Length)
        {
            // Skip blank lines (whitespace only) between records.
            var lineEnd = text.IndexOf('\n', _position);
            var lineSpan = text.AsSpan(_position, (lineEnd < 0 ? text.Length : lineEnd) - _position);
            if (!lineSpan.IsWhiteSpace()) break;
            _position = lineEnd < 0 ? text.Length : lineEnd + 1;
            _line++;
        }
        if (_position >= text.Length)
        {
            record = default;
            return false;
        }
        var start = _line;
        _fields.Clear();
        while (true)
        {
            _fields.Add(ReadField(start));
            if (_position >= text.Length) break;
            var c = text[_position];
            if (c == ',')
            {
                _position++;
                continue;
            }
            // End of record: '\n' or "\r\n".
            if (c == '\r') _position++;
            if (_position < text.Length && text[_position] == '\n') _position++;
            _line++;
            break;
        }
        record = new CsvRecord(start, _fields.ToArray());
        return true;
    }

    private string ReadField(int recordLine)
    {
        var begin = _position;
        while (begin < text.Length && text[begin] is ' ' or '\t') begin++;
        if (begin < text.Length && text[begin] == '"')
        {
            _position = begin + 1;
            _field.Clear();
            var openedOn = _line;
            while (true)
            {
                if (_position >= text.Length)
                    throw DataFormatException.At(path, openedOn, "a quoted field is never closed (missing '\"')");
                var c = text[_position++];
                if (c == '"')
                {
                    if (_position < text.Length && text[_position] == '"')
                    {
                        _field.Append('"');
                        _position++;
                        continue;
                    }
                    break;
                }
                if (c == '\n') _line++;
                _field.Append(c);
            }
            while (_position < text.Length && text[_position] is ' ' or '\t') _position++;
            if (_position < text.Length && text[_position] is not (',' or '\r' or '\n'))
                throw DataFormatException.At(path, _line,
                    $"unexpected character '{text[_position]}' after a closing quote (record starting on line {recordLine}); write a literal quote as \"\"");
            return _field.ToString();
        }
        var end = _position;
        while (end < text.Length && text[end] is not (',' or '\r' or '\n')) end++;
        var value = text.AsSpan(_position, end - _position).Trim(" \t").ToString();
        _position = end;
        return value;
    }
}
