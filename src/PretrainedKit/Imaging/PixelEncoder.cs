using SkiaSharp;

namespace PretrainedKit.Imaging;

/// <summary>How the four bytes of a pixel held in memory are ordered.</summary>
internal enum PixelOrder
{
    /// <summary>Red, green, blue, alpha.</summary>
    Rgba,

    /// <summary>Blue, green, red, alpha.</summary>
    Bgra,
}

/// <summary>
/// Turns decoded pixels held in memory (such as an ML.NET <c>MLImage</c>'s) into a lossless PNG, so that they take the one
/// decode path every other image takes (<see cref="ImageDecoder.DecodeNormalized"/>: pixel limit, alpha onto the background,
/// resize) instead of a second one.
/// </summary>
/// <threadsafety>Stateless; safe to call from many threads at once.</threadsafety>
internal static class PixelEncoder
{
    /// <summary>Encodes 32-bit pixels as a PNG.</summary>
    /// <remarks>
    /// The pixels are premultiplied by alpha, as SkiaSharp (and so <c>MLImage</c>) holds them; the PNG stores them
    /// unpremultiplied, as PNG requires, and an image whose every pixel is opaque becomes an RGB PNG without alpha. PNG
    /// is lossless: an opaque image decodes back to exactly these pixels; a translucent pixel comes back within the
    /// rounding of premultiplying (at most one level per channel after compositing).
    /// </remarks>
    /// <param name="pixels">The pixels, row after row, four bytes each, no padding.</param>
    /// <param name="width">The width in pixels.</param>
    /// <param name="height">The height in pixels.</param>
    /// <param name="order">The byte order of a pixel.</param>
    /// <param name="name">What the pixels are, for messages, as the subject of a sentence (for example "the MLImage in column 'Picture'").</param>
    /// <param name="maxPixels">The largest image accepted, as <see cref="ImagePreprocessingOptions.MaxPixels"/>.</param>
    /// <returns>The encoded PNG.</returns>
    /// <exception cref="InvalidImageException">The size is empty, does not match the pixels, or exceeds <paramref name="maxPixels"/>.</exception>
    public static byte[] EncodePng(ReadOnlySpan<byte> pixels, int width, int height, PixelOrder order, string name, long maxPixels)
    {
        if (width <= 0 || height <= 0)
        {
            throw new InvalidImageException(null, BadImageReason.Empty, $"{name} is {width}x{height} pixels: an image needs at least one pixel each way.");
        }

        var count = (long)width * height;
        if (count > maxPixels)
        {
            throw new InvalidImageException(
                null,
                BadImageReason.TooLarge,
                $"{name} is {width}x{height} = {count:N0} pixels, more than the limit of {maxPixels:N0}. Downscale it (ResizeImages) first, or raise MaxPixels if you trust it.");
        }

        if (pixels.Length != count * 4)
        {
            throw new InvalidImageException(null, BadImageReason.Undecodable, $"{name} declares {width}x{height} pixels of 4 bytes but holds {pixels.Length:N0} bytes.");
        }

        var opaque = true;
        for (var i = 3; i < pixels.Length; i += 4)
        {
            if (pixels[i] != 255)
            {
                opaque = false;
                break;
            }
        }

        var colorType = order == PixelOrder.Bgra ? SKColorType.Bgra8888 : SKColorType.Rgba8888;
        var info = new SKImageInfo(width, height, colorType, opaque ? SKAlphaType.Opaque : SKAlphaType.Premul);
        using var bitmap = new SKBitmap();
        if (!bitmap.TryAllocPixels(info))
        {
            throw new InvalidImageException(null, BadImageReason.TooLarge, $"there is not enough memory to copy the {width}x{height} pixels of {name}.");
        }

        pixels.CopyTo(bitmap.GetPixelSpan());
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidImageException(null, BadImageReason.Undecodable, $"the {width}x{height} pixels of {name} could not be encoded as PNG.");
        return data.ToArray();
    }
}
