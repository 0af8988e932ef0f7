using System.Numerics.Tensors;

namespace PretrainedKit.Imaging;

/// <summary>
/// A small grey picture of an image that tells a copy from a look-alike, for the near-duplicate check of data
/// inspection. The image is decoded as for featurisation (background, orientation, limits) at
/// <see cref="BaseSize"/> pixels square; a comparison draws the second image <see cref="VariantCount"/> ways (as it is
/// and mirrored; scaled about its centre by <see cref="Scales"/>; shifted by up to one pixel each way) at
/// <see cref="Size"/> pixels, smooths each drawing (1-2-1 in each direction), leaves out an outer ring of
/// <see cref="Border"/> pixels (where a crop or a zoom changes most) and keeps the best correlation with the first image.
/// A re-encoded, resized, slightly cropped or mirrored copy lines up with its original almost exactly (nearly all at 0.995 or above
/// on Fashion-MNIST and clip art, bench/results/duplicates-aligned.md); two different pictures of the same kind of
/// thing rarely do.
/// </summary>
/// <threadsafety>Immutable; every member may be called from many threads at once.</threadsafety>
internal sealed class AlignedThumbnail
{
    /// <summary>The edge of the drawings compared, in pixels.</summary>
    public const int Size = 24;

    /// <summary>The edge the image is decoded at (twice <see cref="Size"/>; each 2 x 2 block is then averaged into the grey base).</summary>
    public const int BaseSize = 2 * Size;

    /// <summary>The pixels of each side left out of the correlation.</summary>
    public const int Border = 2;

    /// <summary>The scales the second image is drawn at, about its centre (a 5 % crop needs about 0.95, a 10 % zoom 0.9 or 1.1).</summary>
    public static readonly float[] Scales = [0.90f, 0.93f, 0.965f, 1f, 1.035f, 1.07f, 1.10f];

    /// <summary>The shifts, in pixels of the drawing, each way.</summary>
    public static readonly int[] Shifts = [-1, 0, 1];

    private const int Inner = Size - (2 * Border);

    private readonly float[] grey;

    private AlignedThumbnail(float[] grey, float[]? identity)
    {
        this.grey = grey;
        Identity = identity;
    }

    /// <summary>Gets the number of drawings of the second image a comparison makes.</summary>
    public static int VariantCount => SamplingPlan.All.Length;

    /// <summary>Gets the image as it is (zero mean, unit length), or <see langword="null"/> when it is flat (one colour).</summary>
    public float[]? Identity { get; }

    /// <summary>Decodes an image into its thumbnail base.</summary>
    /// <param name="bytes">The encoded image.</param>
    /// <param name="path">The file, for messages.</param>
    /// <param name="options">How images are decoded (background, pixel limit).</param>
    /// <param name="cancellationToken">Stops a wait for the decode budget.</param>
    /// <returns>The thumbnail.</returns>
    /// <exception cref="InvalidImageException">The image cannot be decoded.</exception>
    public static AlignedThumbnail Decode(byte[] bytes, string? path, ImagePreprocessingOptions options, CancellationToken cancellationToken)
    {
        var rgb = new byte[BaseSize * BaseSize * 3];
        ImageDecoder.DecodeNormalized(bytes, path, options with { ResizeMode = ResizeMode.Stretch }, BaseSize, BaseSize, rgb, cancellationToken);
        return FromRgb(rgb);
    }

    /// <summary>Makes a thumbnail from a decoded base: interleaved 8-bit RGB, <see cref="BaseSize"/> pixels square.</summary>
    /// <param name="rgb">The pixels.</param>
    /// <returns>The thumbnail.</returns>
    public static AlignedThumbnail FromRgb(ReadOnlySpan<byte> rgb)
    {
        if (rgb.Length != BaseSize * BaseSize * 3)
        {
            throw new ArgumentException($"Expected {BaseSize} x {BaseSize} RGB pixels.", nameof(rgb));
        }

        // Grey (ITU-R BT.601 weights), each 2 x 2 block of the base averaged: 2.3 KB kept per image.
        var grey = new float[Size * Size];
        for (var q = 0; q < BaseSize * BaseSize; q++)
        {
            var (y, x) = Math.DivRem(q, BaseSize);
            grey[((y / 2) * Size) + (x / 2)] += ((0.299f * rgb[3 * q]) + (0.587f * rgb[(3 * q) + 1]) + (0.114f * rgb[(3 * q) + 2])) / 4;
        }

        return new AlignedThumbnail(grey, Draw(grey, SamplingPlan.All[0]));
    }

    /// <summary>
    /// Every drawing of this image a comparison needs (as it is first; <see langword="null"/> where flat): made once per
    /// image that is the second of some pair, then passed to <see cref="Similarity"/> for each of its pairs.
    /// </summary>
    /// <returns>The drawings.</returns>
    public float[]?[] Drawings() => [Identity, .. SamplingPlan.All.Skip(1).Select(plan => Draw(grey, plan))];

    /// <summary>
    /// The best correlation of this image as it is with any drawing of a second image (its <see cref="Drawings"/>): from
    /// -1 to 1; 1 when both are flat (one colour), 0 when only one is.
    /// </summary>
    /// <param name="otherDrawings">The second image's drawings.</param>
    /// <returns>The aligned similarity.</returns>
    public double Similarity(float[]?[] otherDrawings)
    {
        if (Identity is null || otherDrawings[0] is null)
        {
            return Identity is null && otherDrawings[0] is null ? 1 : 0;
        }

        var best = double.NegativeInfinity;
        foreach (var drawn in otherDrawings)
        {
            if (drawn is not null)
            {
                best = Math.Max(best, TensorPrimitives.Dot(Identity, drawn));
            }
        }

        return best;
    }

    /// <summary>
    /// One drawing: mirrored or not, scaled about the centre, shifted; each pixel a bilinear sample of the grey base
    /// (edges clamped); then smoothed, the outer ring left out, zero mean and unit length (<see langword="null"/> when
    /// flat). Plain arithmetic, so the same on every platform.
    /// </summary>
    private static float[]? Draw(float[] source, SamplingPlan plan)
    {
        var grey = new float[Size * Size];
        for (var p = 0; p < grey.Length; p++)
        {
            var i = plan.Index[p];
            var fx = plan.Fx[p];
            var top = source[i] + ((source[i + 1] - source[i]) * fx);
            var bottom = source[i + Size] + ((source[i + Size + 1] - source[i + Size]) * fx);
            grey[p] = top + ((bottom - top) * plan.Fy[p]);
        }

        // 1-2-1 smoothing in each direction (edges repeated), then the inner part.
        var across = new float[grey.Length];
        for (var y = 0; y < Size; y++)
        {
            for (var x = 0; x < Size; x++)
            {
                var row = y * Size;
                across[row + x] = (grey[row + Math.Max(0, x - 1)] + (2 * grey[row + x]) + grey[row + Math.Min(Size - 1, x + 1)]) / 4;
            }
        }

        var inner = new float[Inner * Inner];
        for (var y = 0; y < Inner; y++)
        {
            var sy = y + Border;
            for (var x = 0; x < Inner; x++)
            {
                var sx = x + Border;
                inner[(y * Inner) + x] = (across[(Math.Max(0, sy - 1) * Size) + sx] + (2 * across[(sy * Size) + sx]) + across[(Math.Min(Size - 1, sy + 1) * Size) + sx]) / 4;
            }
        }

        var mean = TensorPrimitives.Sum<float>(inner) / inner.Length;
        TensorPrimitives.Subtract(inner, mean, inner);
        var norm = TensorPrimitives.Norm<float>(inner);
        if (!(norm > 1e-3f * inner.Length))
        {
            return null;
        }

        TensorPrimitives.Divide(inner, norm, inner);
        return inner;
    }

    /// <summary>
    /// Where each pixel of one drawing comes from (the same for every image, so made once per drawing kind): the base
    /// index of the top-left neighbour and the two bilinear fractions, edges clamped.
    /// </summary>
    private sealed class SamplingPlan
    {
        /// <summary>Every drawing kind: as it is first, then mirrored or not at each scale and shift.</summary>
        public static readonly SamplingPlan[] All = Build();

        private SamplingPlan(bool mirror, float scale, int dx, int dy)
        {
            const float Centre = Size / 2f;
            for (var v = 0; v < Size; v++)
            {
                for (var u = 0; u < Size; u++)
                {
                    // Shift back, scale back about the centre, mirror back; then pixel-centre coordinates.
                    var x = Centre + ((u + 0.5f - dx - Centre) / scale);
                    var y = Centre + ((v + 0.5f - dy - Centre) / scale);
                    if (mirror)
                    {
                        x = Size - x;
                    }

                    x = Math.Clamp(x - 0.5f, 0, Size - 1);
                    y = Math.Clamp(y - 0.5f, 0, Size - 1);
                    var x0 = Math.Min((int)x, Size - 2);
                    var y0 = Math.Min((int)y, Size - 2);
                    var k = (v * Size) + u;
                    Index[k] = (y0 * Size) + x0;
                    Fx[k] = x - x0;
                    Fy[k] = y - y0;
                }
            }
        }

        public int[] Index { get; } = new int[Size * Size];

        public float[] Fx { get; } = new float[Size * Size];

        public float[] Fy { get; } = new float[Size * Size];

        private static SamplingPlan[] Build()
        {
            var plans = new List<SamplingPlan> { new(false, 1f, 0, 0) };
            foreach (var mirror in new[] { false, true })
            {
                foreach (var scale in Scales)
                {
                    foreach (var dx in Shifts)
                    {
                        foreach (var dy in Shifts)
                        {
                            if (mirror || scale != 1f || dx != 0 || dy != 0)
                            {
                                plans.Add(new SamplingPlan(mirror, scale, dx, dy));
                            }
                        }
                    }
                }
            }

            return [.. plans];
        }
    }
}
