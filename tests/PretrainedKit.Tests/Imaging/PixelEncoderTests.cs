using Microsoft.ML.Data;
using PretrainedKit.Imaging;
using SkiaSharp;

namespace PretrainedKit.Tests.Imaging;

/// <summary>Pixels held in memory (an ML.NET MLImage's) to a PNG that the one decode path reads.</summary>
public class PixelEncoderTests
{
    private const int Size = 224;

    private static byte[] Normalize(byte[] bytes, RgbColor background)
    {
        var rgb = new byte[Size * Size * 3];
        ImageDecoder.DecodeNormalized(bytes, "test-image", ImagePreprocessingOptions.Default with { Background = background }, Size, Size, rgb);
        return rgb;
    }

    private static int MaxAbsDifference(byte[] a, byte[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    private static MLImage FromPng(byte[] png)
    {
        using var stream = new MemoryStream(png);
        return MLImage.CreateFromStream(stream);
    }

    private static byte[] Encode(MLImage image) =>
        PixelEncoder.EncodePng(image.Pixels, image.Width, image.Height, image.PixelFormat == MLPixelFormat.Bgra32 ? PixelOrder.Bgra : PixelOrder.Rgba, "the test image", ImagePreprocessingOptions.DefaultMaxPixels);

    [Test]
    public void EncodePng_OpaqueMLImage_DecodesToThePixelsOfTheOriginalPng()
    {
        using var bitmap = TestImages.Pattern(300, 260); // shrunk by less than half: the decoder's own resampler
        var png = TestImages.Png(bitmap);
        using var image = FromPng(png);
        var encoded = Encode(image);
        using var codec = SKCodec.Create(new SKMemoryStream(encoded));
        Assert.Multiple(() =>
        {
            Assert.That(codec.Info.AlphaType, Is.EqualTo(SKAlphaType.Opaque), "an opaque image is written without alpha");
            Assert.That(MaxAbsDifference(Normalize(encoded, RgbColor.White), Normalize(png, RgbColor.White)), Is.LessThanOrEqualTo(1));
        });
    }

    [Test]
    public void EncodePng_TranslucentMLImage_IsCompositedOnTheBackgroundWithinOneLevel()
    {
        using var pattern = TestImages.Pattern(40, 30);
        using var translucent = TestImages.Bitmap(40, 30, (x, y) => pattern.GetPixel(x, y).WithAlpha((byte)(x * 255 / 39)));
        var png = TestImages.Png(translucent);
        using var image = FromPng(png); // premultiplied, as LoadImages gives it
        var encoded = Encode(image);
        Assert.Multiple(() =>
        {
            Assert.That(MaxAbsDifference(Normalize(encoded, RgbColor.White), Normalize(png, RgbColor.White)), Is.LessThanOrEqualTo(1), "on white");
            Assert.That(MaxAbsDifference(Normalize(encoded, RgbColor.Black), Normalize(png, RgbColor.Black)), Is.LessThanOrEqualTo(1), "on black");
            Assert.That(Normalize(encoded, RgbColor.White)[..3], Is.EqualTo(new byte[] { 255, 255, 255 }), "a transparent corner shows the background");
            Assert.That(Normalize(encoded, RgbColor.Black)[..3], Is.EqualTo(new byte[] { 0, 0, 0 }), "a transparent corner shows the background");
        });
    }

    [Test]
    public void EncodePng_RgbaAndBgraOrders_GiveTheSameImage()
    {
        using var bitmap = TestImages.Pattern(20, 10);
        var rgba = bitmap.Bytes;
        var bgra = rgba.ToArray();
        for (var i = 0; i < bgra.Length; i += 4)
        {
            (bgra[i], bgra[i + 2]) = (bgra[i + 2], bgra[i]);
        }

        Assert.That(
            Normalize(PixelEncoder.EncodePng(bgra, 20, 10, PixelOrder.Bgra, "bgra", 1000), RgbColor.White),
            Is.EqualTo(Normalize(PixelEncoder.EncodePng(rgba, 20, 10, PixelOrder.Rgba, "rgba", 1000), RgbColor.White)));
    }

    [Test]
    public void EncodePng_MorePixelsThanTheLimit_IsRefusedBeforeEncoding()
    {
        var pixels = new byte[20 * 10 * 4];
        Assert.Multiple(() =>
        {
            Assert.That(
                () => PixelEncoder.EncodePng(pixels, 20, 10, PixelOrder.Rgba, "the MLImage in column 'Picture'", 199),
                Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.TooLarge)
                    .And.Message.Contains("the MLImage in column 'Picture' is 20x10 = 200 pixels"));
            Assert.That(
                () => PixelEncoder.EncodePng(pixels.AsSpan(4).ToArray(), 20, 10, PixelOrder.Rgba, "the image", 1000),
                Throws.TypeOf<InvalidImageException>().With.Message.Contains("holds 796 bytes"));
        });
    }
}
