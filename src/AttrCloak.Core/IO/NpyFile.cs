using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using AttrCloak.Core.Data;

namespace AttrCloak.Core.IO;

/// <summary>
/// Reads and writes 2-D matrices in NumPy's .npy format (version 1.0), so anyone can load our
/// embeddings with <c>numpy.load</c>. Writes little-endian float32 in C order; reads float32 or float64.
/// </summary>
public static partial class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static void Write(string path, EmbeddingMatrix matrix)
    {
        var header = Header(matrix.Rows, matrix.Cols);
        var tmp = path + ".tmp";
        using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            stream.Write(Magic);
            stream.Write([1, 0]);
            Span<byte> len = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
            stream.Write(len);
            stream.Write(Encoding.ASCII.GetBytes(header));
            var bytes = new byte[matrix.Values.Length * 4];
            for (var i = 0; i < matrix.Values.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), matrix.Values[i]);
            stream.Write(bytes);
        }
        File.Move(tmp, path, overwrite: true); // never leave a half-written file under the real name
    }

    /// <summary>
    /// The header exactly as NumPy >= 1.24 writes it (<c>np.save</c>), so our files are byte-identical to
    /// numpy's: the dict, spare spaces that let the row count grow in place (numpy's GROWTH_AXIS_MAX_DIGITS =
    /// 21), then spaces and '\n' so that magic(6) + version(2) + length(2) + header ends on a multiple of 64.
    /// Like numpy, the padding is never empty (a header that would already align gets 64 more spaces).
    /// </summary>
    internal static string Header(int rows, int cols)
    {
        var rowsText = rows.ToString(CultureInfo.InvariantCulture);
        var dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rowsText}, {cols.ToString(CultureInfo.InvariantCulture)}), }}";
        dict += new string(' ', 21 - rowsText.Length);
        var padding = 64 - (10 + dict.Length + 1) % 64;
        return dict + new string(' ', padding) + "\n";
    }

    public static EmbeddingMatrix Read(string path)
    {
        if (!File.Exists(path)) throw new DataFormatException($"{path}: file not found");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
            throw new DataFormatException($"{path}: not a NumPy .npy file (bad magic bytes)");
        long headerLength;
        int offset;
        if (bytes[6] == 1) { headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)); offset = 10; }
        else if (bytes[6] is 2 or 3 && bytes.Length >= 12)
        { headerLength = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)); offset = 12; }
        else throw new DataFormatException($"{path}: unsupported .npy version {bytes[6]}");
        if (offset + headerLength > bytes.Length) throw new DataFormatException($"{path}: truncated header");
        var header = Encoding.ASCII.GetString(bytes, offset, (int)headerLength);
        var descr = DescrPattern().Match(header);
        var shape = ShapePattern().Match(header);
        if (!descr.Success || !shape.Success)
            throw new DataFormatException($"{path}: cannot parse the .npy header '{header.Trim()}'");
        if (header.Contains("'fortran_order': True"))
            throw new DataFormatException($"{path}: Fortran-ordered arrays are not supported; save with C order");
        var parts = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length != 2)
            throw new DataFormatException($"{path}: expected a 2-D array (rows x dimensions), got shape ({shape.Groups[1].Value})");
        if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var rows)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var cols) || cols == 0)
            throw new DataFormatException($"{path}: shape ({shape.Groups[1].Value}) is not two non-negative integers with at least one column");
        var data = (int)(offset + headerLength);
        var width = descr.Groups[1].Value switch
        {
            "<f4" => 4,
            "<f8" => 8,
            var other => throw new DataFormatException($"{path}: dtype '{other}' is not supported; expected float32 '<f4' or float64 '<f8'"),
        };
        if (bytes.Length - data != (long)rows * cols * width)
            throw new DataFormatException($"{path}: expected {(long)rows * cols * width} data bytes for shape ({rows}, {cols}), found {bytes.Length - data}");
        var values = new float[rows * cols];
        for (var i = 0; i < values.Length; i++)
            values[i] = width == 4
                ? BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(data + i * 4))
                : (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(data + i * 8));
        return new EmbeddingMatrix(rows, cols, values);
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
