using System.Buffers.Binary;

namespace PretrainedKit.Imaging;

/// <summary>
/// Reads the declared width and height straight from an image header, without any decoder, so that an image that
/// claims too many pixels is refused before a decoder allocates anything.
/// </summary>
internal static class ImageHeader
{
    /// <summary>Returns the declared size, or <see langword="null"/> when the header is too short or malformed to say.</summary>
    public static (long Width, long Height)? TryReadSize(ReadOnlySpan<byte> data, SniffedFormat format) => format switch
    {
        SniffedFormat.Png when data.Length >= 24 && data[12..16].SequenceEqual("IHDR"u8) =>
            (BinaryPrimitives.ReadUInt32BigEndian(data[16..]), BinaryPrimitives.ReadUInt32BigEndian(data[20..])),
        SniffedFormat.Gif when data.Length >= 10 =>
            (BinaryPrimitives.ReadUInt16LittleEndian(data[6..]), BinaryPrimitives.ReadUInt16LittleEndian(data[8..])),
        SniffedFormat.Bmp when data.Length >= 26 => ReadBmp(data),
        SniffedFormat.WebP => ReadWebP(data),
        SniffedFormat.Jpeg => ReadJpeg(data),
        _ => null,
    };

    /// <summary>Whether a PNG holds its whole closing IEND chunk (type and checksum); a PNG without one was cut short.</summary>
    public static bool PngHasEnd(ReadOnlySpan<byte> data)
    {
        var end = data.LastIndexOf("IEND"u8);
        return end > 8 && end + 8 <= data.Length;
    }

    /// <summary>A PNG's pixel layout from its IHDR chunk: bytes per pixel as stored (at least 1) and whether it is Adam7-interlaced.</summary>
    public static (int BytesPerPixel, bool Interlaced)? TryReadPngLayout(ReadOnlySpan<byte> data)
    {
        if (data.Length < 29 || !data[12..16].SequenceEqual("IHDR"u8))
        {
            return null;
        }

        int bitDepth = data[24];
        var channels = data[25] switch
        {
            0 or 3 => 1, // Grey, palette.
            4 => 2, // Grey and alpha.
            2 => 3, // RGB.
            _ => 4, // RGBA (and anything unknown, counted as the largest).
        };
        return (Math.Max(1, channels * Math.Max(8, bitDepth) / 8), data[28] != 0);
    }

    /// <summary>Whether a JPEG's frame is progressive (SOF2, SOF6, SOF10 or SOF14): its decoder then holds every coefficient at once.</summary>
    public static bool IsProgressiveJpeg(ReadOnlySpan<byte> data) => FindJpegFrame(data) is { } frame && data[frame + 1] is 0xC2 or 0xC6 or 0xCA or 0xCE;

    private static (long, long)? ReadBmp(ReadOnlySpan<byte> data)
    {
        var headerSize = BinaryPrimitives.ReadInt32LittleEndian(data[14..]);
        if (headerSize == 12)
        {
            return (BinaryPrimitives.ReadUInt16LittleEndian(data[18..]), BinaryPrimitives.ReadUInt16LittleEndian(data[20..]));
        }

        return (Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(data[18..])), Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(data[22..])));
    }

    private static (long, long)? ReadWebP(ReadOnlySpan<byte> data)
    {
        if (data.Length < 30)
        {
            return null;
        }

        var chunk = data[12..16];
        if (chunk.SequenceEqual("VP8X"u8))
        {
            long w = 1 + (data[24] | (data[25] << 8) | (data[26] << 16));
            long h = 1 + (data[27] | (data[28] << 8) | (data[29] << 16));
            return (w, h);
        }

        if (chunk.SequenceEqual("VP8L"u8) && data[20] == 0x2F)
        {
            var bits = BinaryPrimitives.ReadUInt32LittleEndian(data[21..]);
            return (1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF));
        }

        if (chunk.SequenceEqual("VP8 "u8))
        {
            return (BinaryPrimitives.ReadUInt16LittleEndian(data[26..]) & 0x3FFF, BinaryPrimitives.ReadUInt16LittleEndian(data[28..]) & 0x3FFF);
        }

        return null;
    }

    private static (long, long)? ReadJpeg(ReadOnlySpan<byte> data) =>
        FindJpegFrame(data) is { } i ? (BinaryPrimitives.ReadUInt16BigEndian(data[(i + 7)..]), BinaryPrimitives.ReadUInt16BigEndian(data[(i + 5)..])) : null;

    /// <summary>The offset of the JPEG's start-of-frame marker, or <see langword="null"/> when the header does not reach it.</summary>
    private static int? FindJpegFrame(ReadOnlySpan<byte> data)
    {
        var i = 2;
        while (i + 9 < data.Length)
        {
            if (data[i] != 0xFF)
            {
                return null;
            }

            var marker = data[i + 1];
            if (marker == 0xFF)
            {
                i++;
                continue;
            }

            if (marker is 0xD8 or 0x01 || (marker >= 0xD0 && marker <= 0xD7))
            {
                i += 2;
                continue;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(data[(i + 2)..]);
            var isStartOfFrame = marker >= 0xC0 && marker <= 0xCF && marker is not (0xC4 or 0xC8 or 0xCC);
            if (isStartOfFrame)
            {
                return i;
            }

            if (marker == 0xDA || length < 2)
            {
                return null;
            }

            i += 2 + length;
        }

        return null;
    }
}
