namespace PretrainedKit.Imaging;

/// <summary>
/// Estimates, from the header alone, the memory that decoding one image takes: what <see cref="ImageDecoder"/> and the
/// Skia codec really allocate, counted generously so that the shared <see cref="DecodeBudget"/> holds.
/// </summary>
/// <remarks>
/// Where the memory goes (read from <c>ImageDecoder</c> and Skia's codecs, checked by measuring peak RSS):
/// <list type="bullet">
/// <item>the decoded bitmap, 8-bit RGBA at full size (JPEG and WebP decode at a reduced scale when the image is much larger than the backbone's input);</item>
/// <item>its mipmaps, a third more, built when the image shrinks by more than half;</item>
/// <item>an interlaced PNG: Skia's <c>SkPngInterlacedDecoder</c> first inflates every pass into one buffer of the PNG's own
/// rows (<c>png_get_rowbytes * height</c>: 8 bytes a pixel for 16-bit RGBA), then converts it row by row;</item>
/// <item>a progressive JPEG: libjpeg-turbo holds every DCT coefficient (2 bytes a sample, full size, whatever the output scale);</item>
/// <item>GIF (Wuffs) and WebP (lossless transforms) keep a full-size 4-byte-per-pixel work buffer.</item>
/// </list>
/// Non-interlaced PNG, baseline JPEG and BMP decode row by row into the bitmap, with row-sized scratch only.
/// </remarks>
internal static class DecodeCost
{
    /// <summary>Codec state, row buffers and the small output bitmap: a fixed allowance per decode.</summary>
    private const long FixedOverhead = 256 * 1024;

    /// <summary>The bytes a decode of this image needs at once.</summary>
    /// <param name="header">The start of the file (at least the header).</param>
    /// <param name="format">The sniffed format.</param>
    /// <param name="width">The image's width.</param>
    /// <param name="height">The image's height.</param>
    /// <param name="decodeWidth">The width it is decoded at (smaller for a scaled JPEG or WebP decode).</param>
    /// <param name="decodeHeight">The height it is decoded at.</param>
    /// <param name="targetWidth">The backbone's input width.</param>
    /// <param name="targetHeight">The backbone's input height.</param>
    public static long Estimate(ReadOnlySpan<byte> header, SniffedFormat format, long width, long height, long decodeWidth, long decodeHeight, int targetWidth, int targetHeight)
    {
        var full = width * height;
        var bitmap = decodeWidth * decodeHeight * 4;
        var mipmaps = bitmap / 3;
        var codec = format switch
        {
            SniffedFormat.Png when ImageHeader.TryReadPngLayout(header) is { Interlaced: true } png => full * png.BytesPerPixel,
            SniffedFormat.Png => width * 16, // Two rows of up to 8 bytes a pixel.
            SniffedFormat.Jpeg when ImageHeader.IsProgressiveJpeg(header) => full * 6, // Three components, 2 bytes each.
            SniffedFormat.Jpeg => width * 16 * 3 * 2,
            SniffedFormat.Gif or SniffedFormat.WebP => full * 4,
            _ => width * 8,
        };

        return bitmap + mipmaps + codec + ((long)targetWidth * targetHeight * 4) + FixedOverhead;
    }
}
