using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace AttrCloak.Streaming.Redis;

/// <summary>Little-endian float32 / float64 / int16 encodings of the values stored in Redis.</summary>
internal static class Codec
{
    public static byte[] FloatsToBytes(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * sizeof(float)];
        if (BitConverter.IsLittleEndian)
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
        else
            for (var i = 0; i < values.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
        return bytes;
    }

    public static float[] BytesToFloats(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length % sizeof(float) != 0)
            throw new FormatException($"a float32 vector cannot be {bytes.Length} bytes long");
        var values = new float[bytes.Length / sizeof(float)];
        if (BitConverter.IsLittleEndian)
            bytes.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        else
            for (var i = 0; i < values.Length; i++)
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * sizeof(float))..]);
        return values;
    }

    public static byte[] DoublesToBytes(ReadOnlySpan<double> values)
    {
        var bytes = new byte[values.Length * sizeof(double)];
        if (BitConverter.IsLittleEndian)
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
        else
            for (var i = 0; i < values.Length; i++)
                BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(i * sizeof(double)), values[i]);
        return bytes;
    }

    /// <summary>Writes <paramref name="values"/> into <paramref name="bytes"/> (exactly 8 bytes per value).</summary>
    public static void DoublesToBytes(ReadOnlySpan<double> values, Span<byte> bytes)
    {
        if (bytes.Length != values.Length * sizeof(double))
            throw new ArgumentException($"expected {values.Length * sizeof(double)} bytes, got {bytes.Length}", nameof(bytes));
        if (BitConverter.IsLittleEndian)
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
        else
            for (var i = 0; i < values.Length; i++)
                BinaryPrimitives.WriteDoubleLittleEndian(bytes[(i * sizeof(double))..], values[i]);
    }

    public static void BytesToDoubles(ReadOnlySpan<byte> bytes, Span<double> values)
    {
        if (bytes.Length != values.Length * sizeof(double))
            throw new FormatException($"expected {values.Length * sizeof(double)} bytes of float64, got {bytes.Length}");
        if (BitConverter.IsLittleEndian)
            bytes.CopyTo(MemoryMarshal.AsBytes(values));
        else
            for (var i = 0; i < values.Length; i++)
                values[i] = BinaryPrimitives.ReadDoubleLittleEndian(bytes[(i * sizeof(double))..]);
    }

    public static byte[] ClassesToBytes(ReadOnlySpan<int> classes)
    {
        var bytes = new byte[classes.Length * sizeof(short)];
        for (var i = 0; i < classes.Length; i++)
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(i * sizeof(short)), checked((short)classes[i]));
        return bytes;
    }

    public static int[] BytesToClasses(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length % sizeof(short) != 0)
            throw new FormatException($"a class vector cannot be {bytes.Length} bytes long");
        var classes = new int[bytes.Length / sizeof(short)];
        for (var i = 0; i < classes.Length; i++)
            classes[i] = BinaryPrimitives.ReadInt16LittleEndian(bytes[(i * sizeof(short))..]);
        return classes;
    }
}
