using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace PretrainedKit.Imaging;

/// <summary>
/// Separable bilinear resampling of opaque RGBA pixels into interleaved RGB, with the mapping Skia's canvas uses for
/// <c>DrawImage</c> under a scale-and-translate matrix: target pixel centres map back to source coordinates, and
/// coordinates past an edge take the edge pixel. Matches the canvas to within one level per channel.
/// </summary>
/// <threadsafety>Stateless; safe to call from many threads at once.</threadsafety>
internal static class BilinearResampler
{
    /// <summary>
    /// Resamples <paramref name="rgba"/> (<paramref name="sourceWidth"/> x <paramref name="sourceHeight"/>, rows
    /// <paramref name="rowBytes"/> apart, alpha ignored) so that target pixel x covers source x' = (x + 0.5 - offsetX) / scaleX - 0.5,
    /// and writes <paramref name="width"/> x <paramref name="height"/> RGB pixels to <paramref name="rgb"/>.
    /// </summary>
    public static void Resample(ReadOnlySpan<byte> rgba, int rowBytes, int sourceWidth, int sourceHeight, float scaleX, float scaleY, float offsetX, float offsetY, int width, int height, Span<byte> rgb)
    {
        if (sourceWidth <= 0 || sourceHeight <= 0 || rowBytes < 4 * sourceWidth || rgba.Length < (rowBytes * (sourceHeight - 1)) + (4 * sourceWidth))
        {
            throw new ArgumentException("The source pixels do not match the given size.", nameof(rgba));
        }

        if (width <= 0 || height <= 0 || rgb.Length < 3 * width * height)
        {
            throw new ArgumentException("The output buffer is too small.", nameof(rgb));
        }

        var (x0, x1, wx) = Taps(width, sourceWidth, scaleX, offsetX);
        var (y0, y1, wy) = Taps(height, sourceHeight, scaleY, offsetY);

        // Vertical first (whole rows, vectorised), then horizontal on the blended row: each target row costs one pass
        // over two source rows and one over its own pixels.
        var line = new float[4 * sourceWidth];
        var row = new float[3 * width];
        for (var y = 0; y < height; y++)
        {
            Vertical(rgba.Slice(y0[y] * rowBytes, 4 * sourceWidth), rgba.Slice(y1[y] * rowBytes, 4 * sourceWidth), wy[y], line);
            Horizontal(line, x0, x1, wx, row);
            Round(row, rgb.Slice(3 * width * y, 3 * width));
        }
    }

    /// <summary>For each target pixel along one axis: the two source pixels it blends and the weight of the second.</summary>
    private static (int[] First, int[] Second, float[] Weight) Taps(int target, int source, float scale, float offset)
    {
        var first = new int[target];
        var second = new int[target];
        var weight = new float[target];
        for (var t = 0; t < target; t++)
        {
            var u = Math.Clamp(((t + 0.5f - offset) / scale) - 0.5f, 0f, source - 1);
            var i = (int)u;
            first[t] = i;
            second[t] = Math.Min(i + 1, source - 1);
            weight[t] = u - i;
        }

        return (first, second, weight);
    }

    /// <summary>line = a + (b - a) * weight, per byte of two source rows of equal length.</summary>
    private static void Vertical(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, float weight, float[] line)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var w = Vector256.Create(weight);
            ref var first = ref MemoryMarshal.GetReference(a);
            ref var second = ref MemoryMarshal.GetReference(b);
            ref var output = ref MemoryMarshal.GetArrayDataReference(line);
            for (; i <= a.Length - 32; i += 32)
            {
                var (a0, a1, a2, a3) = Widen(Vector256.LoadUnsafe(ref first, (nuint)i));
                var (b0, b1, b2, b3) = Widen(Vector256.LoadUnsafe(ref second, (nuint)i));
                (a0 + ((b0 - a0) * w)).StoreUnsafe(ref output, (nuint)i);
                (a1 + ((b1 - a1) * w)).StoreUnsafe(ref output, (nuint)(i + 8));
                (a2 + ((b2 - a2) * w)).StoreUnsafe(ref output, (nuint)(i + 16));
                (a3 + ((b3 - a3) * w)).StoreUnsafe(ref output, (nuint)(i + 24));
            }
        }

        for (; i < a.Length; i++)
        {
            line[i] = a[i] + ((b[i] - a[i]) * weight);
        }
    }

    /// <summary>32 bytes to 4 x 8 floats, in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>) Widen(Vector256<byte> bytes)
    {
        var (low, high) = Vector256.Widen(bytes);
        var (l0, l1) = Vector256.Widen(low);
        var (h0, h1) = Vector256.Widen(high);
        return (Vector256.ConvertToSingle(l0.AsInt32()), Vector256.ConvertToSingle(l1.AsInt32()), Vector256.ConvertToSingle(h0.AsInt32()), Vector256.ConvertToSingle(h1.AsInt32()));
    }

    private static void Horizontal(float[] line, int[] first, int[] second, float[] weight, float[] output)
    {
        ref var pixels = ref MemoryMarshal.GetArrayDataReference(line);
        ref var target = ref MemoryMarshal.GetArrayDataReference(output);
        for (var t = 0; t < first.Length; t++)
        {
            // first and second are within [0, source width) by construction (Taps clamps them), so 4 * index + 2 is in the
            // line, and output holds 3 values per target pixel.
            ref var a = ref Unsafe.Add(ref pixels, 4 * first[t]);
            ref var b = ref Unsafe.Add(ref pixels, 4 * second[t]);
            var w = weight[t];
            ref var o = ref Unsafe.Add(ref target, 3 * t);
            o = a + ((b - a) * w);
            Unsafe.Add(ref o, 1) = Unsafe.Add(ref a, 1) + ((Unsafe.Add(ref b, 1) - Unsafe.Add(ref a, 1)) * w);
            Unsafe.Add(ref o, 2) = Unsafe.Add(ref a, 2) + ((Unsafe.Add(ref b, 2) - Unsafe.Add(ref a, 2)) * w);
        }
    }

    /// <summary>Rounds values within 0-255 to bytes.</summary>
    private static void Round(float[] values, Span<byte> output)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var half = Vector256.Create(0.5f);
            ref var v = ref MemoryMarshal.GetArrayDataReference(values);
            for (; i <= values.Length - 32; i += 32)
            {
                var v0 = Vector256.ConvertToInt32(Vector256.LoadUnsafe(ref v, (nuint)i) + half);
                var v1 = Vector256.ConvertToInt32(Vector256.LoadUnsafe(ref v, (nuint)(i + 8)) + half);
                var v2 = Vector256.ConvertToInt32(Vector256.LoadUnsafe(ref v, (nuint)(i + 16)) + half);
                var v3 = Vector256.ConvertToInt32(Vector256.LoadUnsafe(ref v, (nuint)(i + 24)) + half);
                Vector256.Narrow(Vector256.Narrow(v0, v1), Vector256.Narrow(v2, v3)).AsByte().CopyTo(output.Slice(i, 32));
            }
        }

        for (; i < values.Length; i++)
        {
            output[i] = (byte)(values[i] + 0.5f);
        }
    }
}
