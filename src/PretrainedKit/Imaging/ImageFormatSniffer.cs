namespace PretrainedKit.Imaging;

/// <summary>The image formats PretrainedKit decodes.</summary>
internal enum SniffedFormat
{
    Unknown,
    Jpeg,
    Png,
    Bmp,
    Gif,
    WebP,
}

/// <summary>Recognises images by their first bytes, never by their file name.</summary>
internal static class ImageFormatSniffer
{
    /// <summary>The number of leading bytes that <see cref="Sniff"/> needs.</summary>
    public const int HeaderLength = 12;

    /// <summary>File extensions treated as images when scanning folders (case-insensitive). Anything else is ignored and counted.</summary>
    public static readonly IReadOnlySet<string> ImageExtensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".webp",
    };

    private static ReadOnlySpan<byte> PngSignature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    public static bool HasImageExtension(string path) => ImageExtensions.Contains(System.IO.Path.GetExtension(path));

    public static SniffedFormat Sniff(ReadOnlySpan<byte> header)
    {
        if (header.Length >= 3 && header[0] == 0xFF && header[1] == 0xD8 && header[2] == 0xFF)
        {
            return SniffedFormat.Jpeg;
        }

        if (header.Length >= 8 && header[..8].SequenceEqual(PngSignature))
        {
            return SniffedFormat.Png;
        }

        if (header.Length >= 6 && (header[..6].SequenceEqual("GIF87a"u8) || header[..6].SequenceEqual("GIF89a"u8)))
        {
            return SniffedFormat.Gif;
        }

        if (header.Length >= 12 && header[..4].SequenceEqual("RIFF"u8) && header[8..12].SequenceEqual("WEBP"u8))
        {
            return SniffedFormat.WebP;
        }

        if (header.Length >= 2 && header[0] == (byte)'B' && header[1] == (byte)'M')
        {
            return SniffedFormat.Bmp;
        }

        return SniffedFormat.Unknown;
    }

    /// <summary>
    /// Whether a file too short to sniff is the start of a JPEG, PNG, GIF or WebP signature: such a file was cut short,
    /// rather than being something other than an image.
    /// </summary>
    public static bool IsTruncatedSignature(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty || data.Length >= HeaderLength)
        {
            return false;
        }

        static bool PrefixOf(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) =>
            signature[..Math.Min(data.Length, signature.Length)].SequenceEqual(data[..Math.Min(data.Length, signature.Length)]);

        return (data.Length < 3 && PrefixOf(data, [0xFF, 0xD8, 0xFF]))
            || (data.Length < 8 && data.Length >= 2 && PrefixOf(data, PngSignature))
            || (data.Length < 6 && data.Length >= 3 && PrefixOf(data, "GIF89a"u8[..4]))
            || (data.Length >= 4 && PrefixOf(data, "RIFF"u8));
    }

    public static string Describe(ReadOnlySpan<byte> header)
    {
        if (header.IsEmpty)
        {
            return "no bytes";
        }

        var printable = 0;
        foreach (var b in header)
        {
            if (b is 9 or 10 or 13 || (b >= 32 && b < 127))
            {
                printable++;
            }
        }

        if (printable == header.Length)
        {
            return "it looks like text";
        }

        return "its first bytes are " + Convert.ToHexString(header[..Math.Min(8, header.Length)]);
    }
}
