using System.Buffers.Binary;
using System.Text;
using AttrCloak.Core.Data;
using AttrCloak.Core.IO;

namespace AttrCloak.Core.Tests;

public sealed class NpyFileTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Written_bytes_are_those_numpy_saves()
    {
        // np.save("m.npy", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)) with numpy >= 1.24 writes this:
        // magic, version 1.0, header length 118 (0x76), the 59-character dict, 58 spaces (20 = 21 - len("2")
        // spare digits so the row count can grow in place, 38 to align), '\n', then the data, little-endian, C order.
        var expected = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 0x01, 0x00, 0x76, 0x00 };
        expected.AddRange(Encoding.ASCII.GetBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + new string(' ', 58) + "\n"));
        expected.AddRange(Convert.FromHexString("0000803F" + "00000040" + "00004040" + "00008040" + "0000A040" + "0000C040"));

        var path = _dir.PathOf("m.npy");
        NpyFile.Write(path, new EmbeddingMatrix(2, 3, [1, 2, 3, 4, 5, 6]));

        File.ReadAllBytes(path).ShouldBe(expected.ToArray());
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    [InlineData(2, 3)]
    [InlineData(943, 64)]
    [InlineData(6040, 128)]
    [InlineData(123_456_789, 1)]
    [InlineData(int.MaxValue, 4096)]
    public void The_header_ends_on_a_64_byte_boundary(int rows, int cols)
    {
        var header = NpyFile.Header(rows, cols);
        ((10 + header.Length) % 64).ShouldBe(0);
        header.ShouldEndWith(" \n"); // numpy always pads with at least one space
        header.ShouldStartWith($"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    }

    [Fact]
    public void A_matrix_survives_a_round_trip_bit_for_bit()
    {
        float[] values = [0f, -0f, 1.5f, -3.25e-8f, float.Epsilon, float.MaxValue, float.NaN, float.NegativeInfinity];
        var path = _dir.PathOf("r.npy");
        NpyFile.Write(path, new EmbeddingMatrix(4, 2, values));

        var read = NpyFile.Read(path);
        read.Rows.ShouldBe(4);
        read.Cols.ShouldBe(2);
        read.Values.Select(BitConverter.SingleToInt32Bits).ShouldBe(values.Select(BitConverter.SingleToInt32Bits));
        File.Exists(path + ".tmp").ShouldBeFalse();
    }

    [Fact]
    public void An_empty_matrix_survives_a_round_trip()
    {
        var path = _dir.PathOf("e.npy");
        NpyFile.Write(path, new EmbeddingMatrix(0, 8, []));
        var read = NpyFile.Read(path);
        (read.Rows, read.Cols).ShouldBe((0, 8));
    }

    [Fact]
    public void Float64_files_are_read_and_narrowed()
    {
        // The older numpy header layout (no growth padding, version 1.0) with float64 data.
        var path = _dir.PathOf("f8.npy");
        File.WriteAllBytes(path, Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }", Doubles(0.5, -2.0)));
        NpyFile.Read(path).Values.ShouldBe([0.5f, -2f]);
    }

    [Fact]
    public void Version_2_headers_are_read()
    {
        var path = _dir.PathOf("v2.npy");
        File.WriteAllBytes(path, Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }", Floats(7), version: 2));
        NpyFile.Read(path).Values.ShouldBe([7f]);
    }

    [Fact]
    public void Bad_magic_is_rejected()
    {
        var path = _dir.PathOf("bad.npy");
        var bytes = Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }", Floats(1));
        bytes[1] = (byte)'X';
        File.WriteAllBytes(path, bytes);
        Should.Throw<DataFormatException>(() => NpyFile.Read(path)).Message.ShouldContain("bad magic bytes");
    }

    [Theory]
    [InlineData("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1), }", "dtype '<i4' is not supported")]
    [InlineData("{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1), }", "dtype '>f4' is not supported")]
    [InlineData("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1), }", "Fortran-ordered")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", "expected a 2-D array")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (1, x), }", "is not two non-negative integers")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 1), }", "is not two non-negative integers")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 99999999999), }", "is not two non-negative integers")]
    [InlineData("{'fortran_order': False}", "cannot parse the .npy header")]
    public void Unsupported_or_garbled_headers_are_rejected_with_a_reason(string header, string fragment)
    {
        var path = _dir.PathOf("h.npy");
        File.WriteAllBytes(path, Npy(header, Floats(1)));
        var e = Should.Throw<DataFormatException>(() => NpyFile.Read(path));
        e.Message.ShouldStartWith(path);
        e.Message.ShouldContain(fragment);
    }

    [Fact]
    public void Truncated_data_is_rejected()
    {
        var path = _dir.PathOf("t.npy");
        NpyFile.Write(path, new EmbeddingMatrix(2, 3, [1, 2, 3, 4, 5, 6]));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^4]);
        Should.Throw<DataFormatException>(() => NpyFile.Read(path)).Message.ShouldContain("expected 24 data bytes for shape (2, 3), found 20");
    }

    [Fact]
    public void A_truncated_header_is_rejected()
    {
        var path = _dir.PathOf("th.npy");
        NpyFile.Write(path, new EmbeddingMatrix(2, 3, [1, 2, 3, 4, 5, 6]));
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..40]);
        Should.Throw<DataFormatException>(() => NpyFile.Read(path)).Message.ShouldContain("truncated header");
    }

    [Fact]
    public void A_missing_file_is_a_data_format_error()
    {
        var path = _dir.PathOf("missing.npy");
        Should.Throw<DataFormatException>(() => NpyFile.Read(path)).Message.ShouldBe($"{path}: file not found");
    }

    private static byte[] Npy(string dict, byte[] data, int version = 1)
    {
        var prefix = version == 1 ? 10 : 12;
        var header = dict + new string(' ', 64 - (prefix + dict.Length + 1) % 64) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)version, 0 };
        var length = new byte[version == 1 ? 2 : 4];
        if (version == 1) BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)header.Length);
        else BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)header.Length);
        bytes.AddRange(length);
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        bytes.AddRange(data);
        return bytes.ToArray();
    }

    private static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    private static byte[] Doubles(params double[] values)
    {
        var bytes = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(i * 8), values[i]);
        return bytes;
    }
}
