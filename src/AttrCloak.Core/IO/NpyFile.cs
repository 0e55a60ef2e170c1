using System.Buffers.Binary;
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
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({matrix.Rows}, {matrix.Cols}), }}";
        // Magic(6) + version(2) + length(2) + header + '\n' is padded with spaces to a multiple of 64.
        var total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
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

    public static EmbeddingMatrix Read(string path)
    {
        if (!File.Exists(path)) throw new DataFormatException($"{path}: file not found");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
            throw new DataFormatException($"{path}: not a NumPy .npy file (bad magic bytes)");
        int headerLength, offset;
        if (bytes[6] == 1) { headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)); offset = 10; }
        else if (bytes[6] is 2 or 3 && bytes.Length >= 12)
        { headerLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)); offset = 12; }
        else throw new DataFormatException($"{path}: unsupported .npy version {bytes[6]}");
        if (offset + headerLength > bytes.Length) throw new DataFormatException($"{path}: truncated header");
        var header = Encoding.ASCII.GetString(bytes, offset, headerLength);
        var descr = DescrPattern().Match(header);
        var shape = ShapePattern().Match(header);
        if (!descr.Success || !shape.Success)
            throw new DataFormatException($"{path}: cannot parse the .npy header '{header.Trim()}'");
        if (header.Contains("'fortran_order': True"))
            throw new DataFormatException($"{path}: Fortran-ordered arrays are not supported; save with C order");
        var dims = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(int.Parse).ToArray();
        if (dims.Length != 2)
            throw new DataFormatException($"{path}: expected a 2-D array (rows x dimensions), got shape ({shape.Groups[1].Value})");
        var (rows, cols) = (dims[0], dims[1]);
        var data = offset + headerLength;
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
