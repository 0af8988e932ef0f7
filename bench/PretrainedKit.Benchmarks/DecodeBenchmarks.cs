using BenchmarkDotNet.Attributes;
using PretrainedKit.Models;
using PretrainedKit.Imaging;
using SkiaSharp;

namespace PretrainedKit.Benchmarks;

/// <summary>Micro-benchmarks of the decode-and-normalise path (the work hidden behind inference). Run with --bdn.</summary>
[MemoryDiagnoser]
#pragma warning disable CA1515 // BenchmarkDotNet needs public types.
public class DecodeBenchmarks
{
    private readonly byte[] _rgb = new byte[224 * 224 * 3];
    private byte[] _smallPng = [];
    private byte[] _photoJpeg = [];

    [GlobalSetup]
    public void Setup()
    {
        using var small = new SKBitmap(28, 28, SKColorType.Gray8, SKAlphaType.Opaque);
        _smallPng = small.Encode(SKEncodedImageFormat.Png, 100).ToArray();
        using var photo = new SKBitmap(1600, 1200, SKColorType.Rgba8888, SKAlphaType.Premul);
        using (var canvas = new SKCanvas(photo))
        {
            using var paint = new SKPaint { Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(1600, 1200), [SKColors.Red, SKColors.Blue], SKShaderTileMode.Clamp) };
            canvas.DrawRect(0, 0, 1600, 1200, paint);
        }

        _photoJpeg = photo.Encode(SKEncodedImageFormat.Jpeg, 90).ToArray();
    }

    /// <summary>A 28x28 greyscale PNG, as in the bundled assets.</summary>
    [Benchmark]
    public void SmallPng() => ImageDecoder.DecodeNormalized(_smallPng, null, ImagePreprocessingOptions.Default, 224, 224, _rgb);

    /// <summary>A 1600x1200 JPEG, like a phone photo (decoded at reduced scale).</summary>
    [Benchmark]
    public void PhotoJpeg() => ImageDecoder.DecodeNormalized(_photoJpeg, null, ImagePreprocessingOptions.Default, 224, 224, _rgb);
}
