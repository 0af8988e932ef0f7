using PretrainedKit.Imaging;
using SkiaSharp;

namespace PretrainedKit.Reporting;

/// <summary>Makes small JPEG thumbnails as data URIs, through the same safe decoder as training (format by content, pixel limit).</summary>
/// <threadsafety>Stateless; safe to call from many threads at once.</threadsafety>
internal static class Thumbnail
{
    private const int JpegQuality = 85;

    /// <summary>Reads and shrinks an image to a <paramref name="size"/> x <paramref name="size"/> JPEG (padded, aspect kept, on white).</summary>
    /// <returns>A <c>data:image/jpeg;base64,...</c> URI.</returns>
    /// <exception cref="InvalidImageException">The file cannot be read or is not a usable image.</exception>
    public static string DataUri(string path, int size)
    {
        var bytes = ImageDecoder.ReadFile(path);
        var rgb = new byte[size * size * 3];
        var options = ImagePreprocessingOptions.Default with { ResizeMode = ResizeMode.Pad };
        ImageDecoder.DecodeNormalized(bytes, path, options, size, size, rgb);
        var rgba = new byte[size * size * 4];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgba[j] = rgb[i];
            rgba[j + 1] = rgb[i + 1];
            rgba[j + 2] = rgb[i + 2];
            rgba[j + 3] = 255;
        }

        using var image = SKImage.FromPixelCopy(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque), rgba)
            ?? throw new InvalidOperationException("SkiaSharp could not wrap the thumbnail pixels.");
        using var jpeg = image.Encode(SKEncodedImageFormat.Jpeg, JpegQuality)
            ?? throw new InvalidOperationException("SkiaSharp could not encode a JPEG thumbnail.");
        return "data:image/jpeg;base64," + Convert.ToBase64String(jpeg.AsSpan());
    }
}
