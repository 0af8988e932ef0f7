using PretrainedKit.Imaging;
using SkiaSharp;

namespace PretrainedKit.Tests.Imaging;

public class ImageDecoderTests
{
    private const int Size = 224;

    private static byte[] Normalize(byte[] bytes, ImagePreprocessingOptions? options = null, int size = Size)
    {
        var rgb = new byte[size * size * 3];
        ImageDecoder.DecodeNormalized(bytes, "test-image", options ?? ImagePreprocessingOptions.Default, size, size, rgb);
        return rgb;
    }

    private static double MeanAbsDifference(byte[] a, byte[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();

    private static (double R, double G, double B) MeanColor(byte[] rgb)
    {
        double r = 0, g = 0, b = 0;
        for (var i = 0; i < rgb.Length; i += 3)
        {
            r += rgb[i];
            g += rgb[i + 1];
            b += rgb[i + 2];
        }

        var n = rgb.Length / 3;
        return (r / n, g / n, b / n);
    }

    [Test]
    public void DecodeNormalized_EveryFormat_GivesTheSameImage()
    {
        using var pattern = TestImages.Pattern(64, 48);
        var reference = Normalize(TestImages.Png(pattern));
        Assert.Multiple(() =>
        {
            Assert.That(MeanAbsDifference(Normalize(TestImages.Bmp(pattern)), reference), Is.LessThan(0.5), "BMP");
            Assert.That(MeanAbsDifference(Normalize(TestImages.WebP(pattern)), reference), Is.LessThan(3), "WebP (lossless quality 100)");
            Assert.That(MeanAbsDifference(Normalize(TestImages.Jpeg(pattern)), reference), Is.LessThan(6), "JPEG");
        });
    }

    [Test]
    public void DecodeNormalized_BmpNamedJpg_IsRecognisedByContent()
    {
        using var pattern = TestImages.Pattern(20, 20);
        var bytes = TestImages.Bmp(pattern);
        Assert.That(ImageFormatSniffer.Sniff(bytes), Is.EqualTo(SniffedFormat.Bmp));
        Assert.That(() => Normalize(bytes), Throws.Nothing);
    }

    [Test]
    public void DecodeNormalized_AnimatedGif_UsesFirstFrame()
    {
        var gif = TestImages.Gif(16, 16, SKColors.Red, SKColors.Blue);
        var (r, g, b) = MeanColor(Normalize(gif));
        Assert.That((r, g, b), Is.EqualTo((255.0, 0.0, 0.0)));
    }

    [Test]
    public void DecodeNormalized_TransparentPixels_AreCompositedOntoTheBackground()
    {
        using var transparent = TestImages.Bitmap(8, 8, (_, _) => new SKColor(255, 0, 0, 0));
        using var half = TestImages.Bitmap(8, 8, (_, _) => new SKColor(0, 0, 0, 128));
        var png = TestImages.Png(transparent);
        Assert.Multiple(() =>
        {
            Assert.That(MeanColor(Normalize(png)), Is.EqualTo((255.0, 255.0, 255.0)), "default background is white");
            Assert.That(MeanColor(Normalize(png, new ImagePreprocessingOptions { Background = RgbColor.Black })), Is.EqualTo((0.0, 0.0, 0.0)));
            var (r, _, _) = MeanColor(Normalize(TestImages.Png(half)));
            Assert.That(r, Is.EqualTo(127).Within(2), "50% black over white");
        });
    }

    [Test]
    public void DecodeNormalized_Gray16Png_IsConvertedTo8BitRgb()
    {
        var png = TestImages.Gray16Png(8, 8, (_, _) => 0x8080);
        var (r, g, b) = MeanColor(Normalize(png));
        Assert.That((r, g, b), Is.EqualTo((128.0, 128.0, 128.0)));
    }

    [Test]
    public void DecodeNormalized_GrayAlphaPng_IsComposited()
    {
        // Colour type 4 (grey + alpha), 8 bits: grey 0, alpha 0 everywhere -> background.
        var raw = new byte[4 * (1 + (4 * 2))];
        var png = TestImages.RawPng(4, 4, 8, 4, raw);
        Assert.That(MeanColor(Normalize(png)), Is.EqualTo((255.0, 255.0, 255.0)));
    }

    [Test]
    public void DecodeNormalized_CmykJpeg_IsConvertedToRgb()
    {
        var (r, g, b) = MeanColor(Normalize(Convert.FromBase64String(TestImages.CmykRedJpegBase64)));
        Assert.Multiple(() =>
        {
            Assert.That(r, Is.GreaterThan(200), "red");
            Assert.That(g, Is.LessThan(60), "green");
            Assert.That(b, Is.LessThan(60), "blue");
        });
    }

    [TestCase((ushort)6, false)]
    [TestCase((ushort)8, true)]
    [TestCase((ushort)3, false)]
    public void DecodeNormalized_ExifOrientation_IsApplied(ushort orientation, bool clockwise)
    {
        using var upright = TestImages.Pattern(64, 48);
        // Store the pixels so that applying the EXIF orientation gives the upright image back.
        using var stored = orientation == 3
            ? TestImages.Rotate90(TestImages.Rotate90(upright, true), true)
            : TestImages.Rotate90(upright, clockwise);
        var expected = Normalize(TestImages.Jpeg(upright));
        var tagged = Normalize(TestImages.WithExifOrientation(TestImages.Jpeg(stored), orientation));
        var untagged = Normalize(TestImages.Jpeg(stored));
        Assert.Multiple(() =>
        {
            Assert.That(MeanAbsDifference(tagged, expected), Is.LessThan(6), "oriented image equals the upright one");
            Assert.That(MeanAbsDifference(untagged, expected), Is.GreaterThan(20), "the test pattern is orientation-sensitive");
        });
    }

    [TestCase(256, 256, ResizeMode.Stretch)]
    [TestCase(300, 240, ResizeMode.Stretch)]
    [TestCase(250, 400, ResizeMode.CenterCrop)]
    [TestCase(440, 300, ResizeMode.CenterCrop)]
    [TestCase(447, 447, ResizeMode.Stretch)]
    public void DecodeNormalized_MildShrinking_MatchesSkiaCanvasWithinOneLevel(int width, int height, ResizeMode mode)
    {
        // Opaque, upright images shrunk by less than half take the library's own bilinear resampler; Skia's canvas, which
        // every other case goes through, is the reference. JPEG is always opaque.
        using var pattern = TestImages.Pattern(width, height);
        var jpeg = TestImages.Jpeg(pattern);
        using var decoded = SKBitmap.Decode(jpeg, new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));

        float scaleX = (float)Size / width, scaleY = (float)Size / height, offsetX = 0, offsetY = 0;
        if (mode == ResizeMode.CenterCrop)
        {
            scaleX = scaleY = Math.Max(scaleX, scaleY);
            offsetX = (Size - (width * scaleX)) / 2;
            offsetY = (Size - (height * scaleY)) / 2;
        }

        using var target = new SKBitmap(new SKImageInfo(Size, Size, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(target))
        using (var image = SKImage.FromBitmap(decoded))
        {
            canvas.Clear(SKColors.White);
            canvas.SetMatrix(new SKMatrix(scaleX, 0, offsetX, 0, scaleY, offsetY, 0, 0, 1));
            canvas.DrawImage(image, 0, 0, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None));
        }

        var resampled = new byte[Size * Size * 3];
        BilinearResampler.Resample(decoded.GetPixelSpan(), decoded.RowBytes, width, height, scaleX, scaleY, offsetX, offsetY, Size, Size, resampled);
        var rgba = target.GetPixelSpan().ToArray();
        int WorstDifference(byte[] rgb)
        {
            var worst = 0;
            for (var p = 0; p < Size * Size; p++)
            {
                for (var c = 0; c < 3; c++)
                {
                    worst = Math.Max(worst, Math.Abs(rgb[(3 * p) + c] - rgba[(4 * p) + c]));
                }
            }

            return worst;
        }

        Assert.Multiple(() =>
        {
            Assert.That(WorstDifference(resampled), Is.LessThanOrEqualTo(1), "the resampler against the canvas");
            Assert.That(Normalize(jpeg, new ImagePreprocessingOptions { ResizeMode = mode }), Is.EqualTo(resampled), "the decoder takes the resampler");
        });
    }

    [Test]
    public void DecodeNormalized_ResizeModes_FitDifferently()
    {
        // A 2:1 image, left half red, right half blue.
        using var wide = TestImages.Bitmap(64, 32, (x, _) => x < 32 ? SKColors.Red : SKColors.Blue);
        var png = TestImages.Png(wide);
        var stretch = Normalize(png, new ImagePreprocessingOptions { ResizeMode = ResizeMode.Stretch }, 16);
        var pad = Normalize(png, new ImagePreprocessingOptions { ResizeMode = ResizeMode.Pad }, 16);
        var crop = Normalize(png, new ImagePreprocessingOptions { ResizeMode = ResizeMode.CenterCrop }, 16);
        Assert.Multiple(() =>
        {
            Assert.That(stretch[0], Is.EqualTo(255), "stretch: top-left is red");
            Assert.That(pad[1], Is.EqualTo(255), "pad: top row is white background");
            Assert.That(pad[2], Is.EqualTo(255), "pad: top row is white background");
            Assert.That(crop[0], Is.GreaterThan(200), "crop: left edge is still red");
            Assert.That(crop[2], Is.LessThan(60), "crop: left edge is not blue");
        });
    }

    [Test]
    public void DecodeNormalized_EmptyBytes_ThrowsEmpty()
    {
        Assert.That(() => Normalize([]), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.Empty).And.Message.Contains("test-image"));
    }

    [Test]
    public void DecodeNormalized_Text_ThrowsNotAnImage()
    {
        Assert.That(() => Normalize("hello, I am not a PNG"u8.ToArray()), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.NotAnImage).And.Message.Contains("looks like text"));
    }

    [TestCase(0.5)]
    [TestCase(0.8)]
    [TestCase(0.95)]
    public void DecodeNormalized_TruncatedPng_ThrowsTruncatedOrUndecodable(double keep)
    {
        using var pattern = TestImages.Pattern(64, 64);
        var png = TestImages.Png(pattern);
        var cut = png.AsSpan(0, (int)(png.Length * keep)).ToArray();
        Assert.That(() => Normalize(cut), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).AnyOf(BadImageReason.Truncated, BadImageReason.Undecodable));
    }

    [TestCase(0.3)]
    [TestCase(0.7)]
    public void DecodeNormalized_TruncatedJpeg_ThrowsTruncated(double keep)
    {
        using var pattern = TestImages.Pattern(64, 64);
        var jpeg = TestImages.Jpeg(pattern);
        var cut = jpeg.AsSpan(0, (int)(jpeg.Length * keep)).ToArray();
        Assert.That(() => Normalize(cut), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).AnyOf(BadImageReason.Truncated, BadImageReason.Undecodable));
    }

    [Test]
    public void DecodeNormalized_HugeDeclaredSize_IsRefusedFromTheHeader()
    {
        var png = TestImages.RawPng(60000, 60000, 8, 2, [], includeData: false);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        Assert.That(() => Normalize(png), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.TooLarge).And.Message.Contains("60000x60000"));
        Assert.That(GC.GetTotalAllocatedBytes(precise: true) - before, Is.LessThan(50_000_000), "no pixel buffer was allocated");
    }

    [Test]
    public void DecodeNormalized_MaxPixels_IsConfigurable()
    {
        using var pattern = TestImages.Pattern(100, 100);
        var png = TestImages.Png(pattern);
        Assert.That(() => Normalize(png, new ImagePreprocessingOptions { MaxPixels = 9_999 }), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.TooLarge));
        Assert.That(() => Normalize(png, new ImagePreprocessingOptions { MaxPixels = 10_000 }), Throws.Nothing);
    }

    [TestCase(SKEncodedImageFormat.Jpeg)]
    [TestCase(SKEncodedImageFormat.Webp)]
    [TestCase(SKEncodedImageFormat.Bmp)]
    [TestCase(SKEncodedImageFormat.Gif)]
    public void DecodeNormalized_MaxPixels_AppliesToEveryFormat(SKEncodedImageFormat format)
    {
        using var pattern = TestImages.Pattern(100, 100);
        var bytes = format switch
        {
            SKEncodedImageFormat.Bmp => TestImages.Bmp(pattern),
            SKEncodedImageFormat.Gif => TestImages.Gif(100, 100, SKColors.Green),
            _ => TestImages.Encode(pattern, format),
        };
        Assert.That(ImageHeader.TryReadSize(bytes, ImageFormatSniffer.Sniff(bytes)), Is.EqualTo(((long)100, (long)100)));
        Assert.That(() => Normalize(bytes, new ImagePreprocessingOptions { MaxPixels = 9_999 }), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.TooLarge));
    }

    [Test]
    public void ReadFile_MissingFolderOrLink_ThrowsUnreadableNamingThePath()
    {
        var dir = TestPaths.NewTempFolder();
        var link = Path.Combine(dir, "dangling.png");
        File.CreateSymbolicLink(link, Path.Combine(dir, "nowhere.png"));
        var folder = Path.Combine(dir, "folder.jpg");
        Directory.CreateDirectory(folder);
        Assert.Multiple(() =>
        {
            Assert.That(() => ImageDecoder.ReadFile(link), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.Unreadable).And.Message.Contains(link));
            Assert.That(() => ImageDecoder.ReadFile(folder), Throws.TypeOf<InvalidImageException>().With.Message.Contains("folder"));
        });
    }

    [Test]
    public void RgbColor_ParseAndFormat_RoundTrip()
    {
        Assert.That(RgbColor.Parse("#12ABef"), Is.EqualTo(new RgbColor(0x12, 0xAB, 0xEF)));
        Assert.That(RgbColor.Parse(new RgbColor(1, 2, 3).ToString()), Is.EqualTo(new RgbColor(1, 2, 3)));
        Assert.That(() => RgbColor.Parse("white"), Throws.TypeOf<FormatException>());
    }
}
