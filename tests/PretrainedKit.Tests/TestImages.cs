using System.Buffers.Binary;
using System.IO.Compression;
using SkiaSharp;

namespace PretrainedKit.Tests;

/// <summary>Generates small images of every supported kind, plus broken ones, in memory.</summary>
internal static class TestImages
{
    /// <summary>A 16x16 CMYK JPEG (pure red, Adobe APP14), made with Pillow; 363 bytes.</summary>
    public const string CmykRedJpegBase64 = "/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwACAQEBAQECAQEBAgICAgIEAwICAgIFBAQDBAYFBgYGBQYGBgcJCAYHCQcGBggLCAkKCgoKCgYICwwLCgwJCgoK/8AAFAgAEAAQBEMRAE0RAFkRAEsRAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+v/aAA4EQwBNAFkASwAAPwD9/K/n/r+f+v38oooooooooooor//Z";

    /// <summary>An RGBA bitmap where every pixel comes from <paramref name="color"/>(x, y).</summary>
    public static SKBitmap Bitmap(int width, int height, Func<int, int, SKColor> color)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                bitmap.SetPixel(x, y, color(x, y));
            }
        }

        return bitmap;
    }

    /// <summary>An asymmetric pattern: orientation mistakes change it.</summary>
    public static SKBitmap Pattern(int width, int height) =>
        Bitmap(width, height, (x, y) => new SKColor((byte)(x * 255 / width), (byte)(y * 255 / height), (byte)(x < width / 3 && y < height / 4 ? 255 : 0)));

    public static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality = 95)
    {
        using var data = bitmap.Encode(format, quality) ?? throw new InvalidOperationException($"Skia cannot encode {format}.");
        return data.ToArray();
    }

    public static byte[] Png(SKBitmap bitmap) => Encode(bitmap, SKEncodedImageFormat.Png);

    public static byte[] Jpeg(SKBitmap bitmap) => Encode(bitmap, SKEncodedImageFormat.Jpeg);

    public static byte[] WebP(SKBitmap bitmap) => Encode(bitmap, SKEncodedImageFormat.Webp, 100);

    /// <summary>A 24-bit bottom-up BMP (Skia cannot encode BMP).</summary>
    public static byte[] Bmp(SKBitmap bitmap)
    {
        int w = bitmap.Width, h = bitmap.Height, stride = ((w * 3) + 3) & ~3;
        var bytes = new byte[54 + (stride * h)];
        bytes[0] = (byte)'B';
        bytes[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(2), bytes.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(18), w);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(22), h);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(28), 24);
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                var c = bitmap.GetPixel(x, h - 1 - y);
                var o = 54 + (y * stride) + (x * 3);
                bytes[o] = c.Blue;
                bytes[o + 1] = c.Green;
                bytes[o + 2] = c.Red;
            }
        }

        return bytes;
    }

    /// <summary>A GIF with one frame per colour, each frame filling the whole image (LZW with a clear code every 254 pixels).</summary>
    public static byte[] Gif(int width, int height, params SKColor[] frames)
    {
        using var s = new MemoryStream();
        s.Write("GIF89a"u8);
        Span<byte> le = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(le, (ushort)width);
        s.Write(le);
        BinaryPrimitives.WriteUInt16LittleEndian(le, (ushort)height);
        s.Write(le);
        s.WriteByte(0xF7); // global colour table, 256 entries
        s.WriteByte(0);
        s.WriteByte(0);
        for (var i = 0; i < 256; i++)
        {
            var c = i < frames.Length ? frames[i] : SKColors.Black;
            s.WriteByte(c.Red);
            s.WriteByte(c.Green);
            s.WriteByte(c.Blue);
        }

        if (frames.Length > 1)
        {
            s.Write([0x21, 0xFF, 0x0B, .. "NETSCAPE2.0"u8, 0x03, 0x01, 0x00, 0x00, 0x00]);
        }

        for (var f = 0; f < frames.Length; f++)
        {
            s.Write([0x21, 0xF9, 0x04, 0x00, 0x0A, 0x00, 0x00, 0x00]); // graphic control: 100 ms
            s.WriteByte(0x2C);
            s.Write([0, 0, 0, 0]);
            BinaryPrimitives.WriteUInt16LittleEndian(le, (ushort)width);
            s.Write(le);
            BinaryPrimitives.WriteUInt16LittleEndian(le, (ushort)height);
            s.Write(le);
            s.WriteByte(0);
            s.WriteByte(8); // LZW minimum code size
            var codes = new List<int> { 256 };
            var run = 0;
            for (var p = 0; p < width * height; p++)
            {
                if (run == 254)
                {
                    codes.Add(256);
                    run = 0;
                }

                codes.Add(f);
                run++;
            }

            codes.Add(257);
            var packed = new List<byte>();
            int acc = 0, bits = 0;
            foreach (var code in codes)
            {
                acc |= code << bits;
                bits += 9;
                while (bits >= 8)
                {
                    packed.Add((byte)(acc & 0xFF));
                    acc >>= 8;
                    bits -= 8;
                }
            }

            if (bits > 0)
            {
                packed.Add((byte)acc);
            }

            for (var i = 0; i < packed.Count; i += 255)
            {
                var n = Math.Min(255, packed.Count - i);
                s.WriteByte((byte)n);
                s.Write(packed.GetRange(i, n).ToArray());
            }

            s.WriteByte(0);
        }

        s.WriteByte(0x3B);
        return s.ToArray();
    }

    /// <summary>A PNG with an arbitrary header: 16-bit grey, gray+alpha, or a huge declared size.</summary>
    public static byte[] RawPng(int width, int height, byte bitDepth, byte colorType, byte[] rawScanlines, bool includeData = true)
    {
        using var s = new MemoryStream();
        s.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = bitDepth;
        header[9] = colorType;
        Chunk(s, "IHDR", header);
        if (includeData)
        {
            using var z = new MemoryStream();
            using (var zlib = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true))
            {
                zlib.Write(rawScanlines);
            }

            Chunk(s, "IDAT", z.ToArray());
        }

        Chunk(s, "IEND", []);
        return s.ToArray();
    }

    /// <summary>A 16-bit greyscale PNG whose value at (x, y) is <paramref name="value"/>(x, y) (0-65535).</summary>
    public static byte[] Gray16Png(int width, int height, Func<int, int, ushort> value)
    {
        var raw = new byte[height * (1 + (width * 2))];
        for (var y = 0; y < height; y++)
        {
            var o = y * (1 + (width * 2));
            for (var x = 0; x < width; x++)
            {
                BinaryPrimitives.WriteUInt16BigEndian(raw.AsSpan(o + 1 + (x * 2)), value(x, y));
            }
        }

        return RawPng(width, height, 16, 0, raw);
    }

    /// <summary>Inserts an EXIF APP1 segment with the given orientation right after a JPEG's SOI marker.</summary>
    public static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        var tiff = new byte[] { (byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, (byte)(orientation >> 8), (byte)orientation, 0, 0, 0, 0, 0, 0 };
        var payload = "Exif\0\0"u8.ToArray().Concat(tiff).ToArray();
        var segment = new byte[4 + payload.Length];
        segment[0] = 0xFF;
        segment[1] = 0xE1;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)(payload.Length + 2));
        payload.CopyTo(segment, 4);
        return jpeg.Take(2).Concat(segment).Concat(jpeg.Skip(2)).ToArray();
    }

    /// <summary>Rotates a bitmap by 90 degrees (clockwise or counter-clockwise).</summary>
    public static SKBitmap Rotate90(SKBitmap source, bool clockwise)
    {
        int w = source.Width, h = source.Height;
        return Bitmap(h, w, (x, y) => clockwise ? source.GetPixel(y, h - 1 - x) : source.GetPixel(w - 1 - y, x));
    }

    /// <summary>Writes a small, valid class folder of generated images (distinct colour per class, some noise per image).</summary>
    public static void WriteClass(string root, string label, int count, SKColor color, int seed)
    {
        var dir = Path.Combine(root, label);
        Directory.CreateDirectory(dir);
        var random = new Random(seed);
        for (var i = 0; i < count; i++)
        {
            using var bmp = Bitmap(32, 32, (x, y) =>
            {
                var n = random.Next(-40, 40);
                return new SKColor(Clamp(color.Red + n), Clamp(color.Green + n), Clamp(color.Blue + n));
            });
            File.WriteAllBytes(Path.Combine(dir, $"{label}-{i:D2}.png"), Png(bmp));
        }
    }

    /// <summary>The CRC-32 (IEEE) that PNG chunks and zip entries carry.</summary>
    public static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
            }
        }

        return ~crc;
    }

    private static byte Clamp(int v) => (byte)Math.Clamp(v, 0, 255);

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> buffer = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(buffer, data.Length);
        s.Write(buffer);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        s.Write(typeBytes);
        s.Write(data);
        var crc = Crc32(typeBytes.Concat(data).ToArray());
        BinaryPrimitives.WriteUInt32BigEndian(buffer, crc);
        s.Write(buffer);
    }
}
