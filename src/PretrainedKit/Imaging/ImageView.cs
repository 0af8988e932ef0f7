namespace PretrainedKit.Imaging;

/// <summary>A view of a normalised image: itself, its mirror image, or a crop scaled back to the full size.</summary>
internal enum ImageView
{
    /// <summary>The image as decoded.</summary>
    Original = 0,

    /// <summary>Flipped left to right.</summary>
    Mirror = 1,

    /// <summary>The top-left <see cref="ImageViews.CropFraction"/> of each side, scaled back up.</summary>
    CropTopLeft = 2,

    /// <summary>The top-right crop, scaled back up.</summary>
    CropTopRight = 3,

    /// <summary>The bottom-left crop, scaled back up.</summary>
    CropBottomLeft = 4,

    /// <summary>The bottom-right crop, scaled back up.</summary>
    CropBottomRight = 5,
}

/// <summary>Makes the views of <see cref="ImageView"/> from interleaved RGB bytes (HWC) of the backbone's input size.</summary>
/// <threadsafety>Stateless; safe to call from many threads at once.</threadsafety>
internal static class ImageViews
{
    /// <summary>The fraction of each side a crop keeps: 7/8, so a crop shifts and enlarges the content by about 14 %.</summary>
    public const double CropFraction = 0.875;

    /// <summary>The crops, in a fixed order.</summary>
    public static IReadOnlyList<ImageView> Crops { get; } = [ImageView.CropTopLeft, ImageView.CropTopRight, ImageView.CropBottomLeft, ImageView.CropBottomRight];

    /// <summary>Writes <paramref name="view"/> of <paramref name="source"/> to <paramref name="target"/> (same size, never the same buffer).</summary>
    public static void Apply(ImageView view, ReadOnlySpan<byte> source, Span<byte> target, int width, int height)
    {
        if (source.Length != width * height * 3 || target.Length < source.Length)
        {
            throw new ArgumentException("The buffers do not hold width x height RGB pixels.");
        }

        switch (view)
        {
            case ImageView.Original:
                source.CopyTo(target);
                break;
            case ImageView.Mirror:
                for (var y = 0; y < height; y++)
                {
                    var row = y * width * 3;
                    for (var x = 0; x < width; x++)
                    {
                        var from = row + ((width - 1 - x) * 3);
                        var to = row + (x * 3);
                        target[to] = source[from];
                        target[to + 1] = source[from + 1];
                        target[to + 2] = source[from + 2];
                    }
                }

                break;
            case ImageView.CropTopLeft or ImageView.CropTopRight or ImageView.CropBottomLeft or ImageView.CropBottomRight:
                var cropWidth = (int)Math.Round(width * CropFraction);
                var cropHeight = (int)Math.Round(height * CropFraction);
                var left = view is ImageView.CropTopRight or ImageView.CropBottomRight ? width - cropWidth : 0;
                var top = view is ImageView.CropBottomLeft or ImageView.CropBottomRight ? height - cropHeight : 0;
                ScaleBilinear(source, width, height, left, top, cropWidth, cropHeight, target);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(view), view, "Unknown view.");
        }
    }

    /// <summary>Scales the rectangle (left, top, cropWidth, cropHeight) of the source to the full size, bilinear, pixel centres aligned.</summary>
    private static void ScaleBilinear(ReadOnlySpan<byte> source, int width, int height, int left, int top, int cropWidth, int cropHeight, Span<byte> target)
    {
        Span<int> x0 = width <= 1024 ? stackalloc int[width] : new int[width];
        Span<int> x1 = width <= 1024 ? stackalloc int[width] : new int[width];
        Span<float> fx = width <= 1024 ? stackalloc float[width] : new float[width];
        for (var x = 0; x < width; x++)
        {
            var sx = left + (((x + 0.5) * cropWidth / width) - 0.5);
            var floor = Math.Floor(sx);
            x0[x] = Math.Clamp((int)floor, 0, width - 1);
            x1[x] = Math.Min(x0[x] + 1, width - 1);
            fx[x] = (float)(sx - floor);
        }

        for (var y = 0; y < height; y++)
        {
            var sy = top + (((y + 0.5) * cropHeight / height) - 0.5);
            var floor = Math.Floor(sy);
            var y0 = Math.Clamp((int)floor, 0, height - 1);
            var y1 = Math.Min(y0 + 1, height - 1);
            var fy = (float)(sy - floor);
            var row0 = y0 * width * 3;
            var row1 = y1 * width * 3;
            var outRow = y * width * 3;
            for (var x = 0; x < width; x++)
            {
                for (var k = 0; k < 3; k++)
                {
                    var a = source[row0 + (x0[x] * 3) + k] + (fx[x] * (source[row0 + (x1[x] * 3) + k] - source[row0 + (x0[x] * 3) + k]));
                    var b = source[row1 + (x0[x] * 3) + k] + (fx[x] * (source[row1 + (x1[x] * 3) + k] - source[row1 + (x0[x] * 3) + k]));
                    target[outRow + (x * 3) + k] = (byte)Math.Clamp(MathF.Round(a + (fy * (b - a))), 0, 255);
                }
            }
        }
    }
}
