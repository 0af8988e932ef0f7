using System.Collections.Concurrent;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using SkiaSharp;

namespace PretrainedKit.Experiments;

/// <summary>
/// Issue #15 probe: an aligned pixel check for near-duplicate candidates. Each image is drawn as a small grey
/// thumbnail (transparency on white, edges clamped, an outer ring left out); the second image of a pair is also drawn
/// mirrored, scaled about its centre and shifted by a pixel, then the best variant is refined by half pixels and finer
/// scales, and the pair's score is the best correlation found. A copy that was re-encoded, resized, cropped a little or
/// mirrored lines up with its original almost exactly; two different pictures of the same kind of thing do not.
/// Images are split in two halves by a seeded hash: thresholds are read on half A, half B is written to its own file.
/// Run: <c>-- --duplicates --aligned [--thumbs 24] [--border 0.1] [--refine] [--blur]</c>.
/// </summary>
internal static class AlignedCheck
{
    public static readonly float[] Scales = [0.90f, 0.93f, 0.965f, 1f, 1.035f, 1.07f, 1.10f];

    public static readonly int[] Shifts = [-1, 0, 1];

    /// <summary>Gets or sets the share of each side left out of the correlation (a crop or a zoom changes the border most).</summary>
    public static double Border { get; set; } = 0.1;

    /// <summary>Gets or sets the thumbnail sizes measured.</summary>
    public static int[] Sizes { get; set; } = [24];

    /// <summary>Gets or sets a value indicating whether the best coarse variant is refined (half pixels, finer scales).</summary>
    public static bool Refine { get; set; }

    /// <summary>Gets or sets a value indicating whether thumbnails are smoothed (1-2-1 in each direction) before correlating.</summary>
    public static bool Blur { get; set; }

    /// <summary>Gets or sets how many refinement rounds run (each halves the steps).</summary>
    public static int RefineRounds { get; set; } = 1;

    /// <summary>Gets or sets a CSV file that receives every scored row (set, kind, transform, half, feature, aligned), or null.</summary>
    public static string? Dump { get; set; }

    /// <summary>One image ready for comparison: its base drawing and its coarse variants (identity first; null where blank).</summary>
    public sealed class Prepared(SKImage source, int size, float[]?[] variants, (bool Mirror, float Scale, int Dx, int Dy)[] settings)
    {
        public SKImage Source { get; } = source;

        public int Size { get; } = size;

        public float[]?[] Variants { get; } = variants;

        public (bool Mirror, float Scale, int Dx, int Dy)[] Settings { get; } = settings;
    }

    /// <summary>The image composited on white and stretched to twice the thumbnail size (drawn from once per variant).</summary>
    public static SKImage Base(string path, int size)
    {
        using var original = SKBitmap.Decode(path) ?? throw new InvalidDataException(path);
        var info = new SKImageInfo(2 * size, 2 * size, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info);
        surface.Canvas.Clear(SKColors.White);
        using (var image = SKImage.FromBitmap(original))
        {
            surface.Canvas.DrawImage(image, new SKRect(0, 0, 2 * size, 2 * size), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        }

        return surface.Snapshot();
    }

    /// <summary>One variant: mirrored or not, scaled about the centre, shifted in thumbnail pixels; the inner part, zero mean, unit length (null when flat).</summary>
    public static float[]? Render(SKImage source, int size, bool mirror, float scale, float dx, float dy)
    {
        var info = new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info);
        var centre = size / 2f;
        var m = SKMatrix.CreateScale(size / (float)source.Width, size / (float)source.Height);
        if (mirror)
        {
            m = m.PostConcat(SKMatrix.CreateScale(-1, 1, centre, centre));
        }

        m = m.PostConcat(SKMatrix.CreateScale(scale, scale, centre, centre));
        m = m.PostConcat(SKMatrix.CreateTranslation(dx, dy));
        using (var shader = source.ToShader(SKShaderTileMode.Clamp, SKShaderTileMode.Clamp, new SKSamplingOptions(SKCubicResampler.Mitchell), m))
        using (var paint = new SKPaint { Shader = shader })
        {
            surface.Canvas.DrawRect(0, 0, size, size, paint);
        }

        using var pixmap = surface.PeekPixels();
        var bytes = pixmap.GetPixelSpan();
        var grey = new float[size * size];
        for (var i = 0; i < grey.Length; i++)
        {
            grey[i] = (0.299f * bytes[4 * i]) + (0.587f * bytes[(4 * i) + 1]) + (0.114f * bytes[(4 * i) + 2]);
        }

        if (Blur)
        {
            grey = Smooth(grey, size);
        }

        var b = (int)Math.Round(size * Border);
        var inner = size - (2 * b);
        var cut = new float[inner * inner];
        for (var y = 0; y < inner; y++)
        {
            Array.Copy(grey, ((y + b) * size) + b, cut, y * inner, inner);
        }

        var mean = TensorPrimitives.Sum<float>(cut) / cut.Length;
        TensorPrimitives.Subtract(cut, mean, cut);
        var norm = TensorPrimitives.Norm<float>(cut);
        if (!(norm > 1e-3f * cut.Length))
        {
            return null;
        }

        TensorPrimitives.Divide(cut, norm, cut);
        return cut;
    }

    private static float[] Smooth(float[] g, int size)
    {
        var h = new float[g.Length];
        var v = new float[g.Length];
        for (var y = 0; y < size; y++)
        {
            for (var x = 0; x < size; x++)
            {
                var l = g[(y * size) + Math.Max(0, x - 1)];
                var r = g[(y * size) + Math.Min(size - 1, x + 1)];
                h[(y * size) + x] = (l + (2 * g[(y * size) + x]) + r) / 4;
            }
        }

        for (var y = 0; y < size; y++)
        {
            for (var x = 0; x < size; x++)
            {
                var u = h[(Math.Max(0, y - 1) * size) + x];
                var d = h[(Math.Min(size - 1, y + 1) * size) + x];
                v[(y * size) + x] = (u + (2 * h[(y * size) + x]) + d) / 4;
            }
        }

        return v;
    }

    /// <summary>Every coarse variant of an image (identity first).</summary>
    public static Prepared Prepare(string path, int size)
    {
        var source = Base(path, size);
        var settings = new List<(bool, float, int, int)> { (false, 1f, 0, 0) };
        foreach (var mirror in new[] { false, true })
        {
            foreach (var s in Scales)
            {
                foreach (var dx in Shifts)
                {
                    foreach (var dy in Shifts)
                    {
                        if (!(mirror == false && s == 1f && dx == 0 && dy == 0))
                        {
                            settings.Add((mirror, s, dx, dy));
                        }
                    }
                }
            }
        }

        return new Prepared(source, size, settings.Select(t => Render(source, size, t.Item1, t.Item2, t.Item3, t.Item4)).ToArray(), [.. settings]);
    }

    /// <summary>The aligned score: the best correlation of a's thumbnail with any variant of b (1 when both are blank, 0 when one is).</summary>
    public static double Score(Prepared a, Prepared b)
    {
        var x = a.Variants[0];
        if (x is null || b.Variants[0] is null)
        {
            return x is null && b.Variants[0] is null ? 1 : 0;
        }

        var best = double.NegativeInfinity;
        var bestIndex = 0;
        for (var k = 0; k < b.Variants.Length; k++)
        {
            if (b.Variants[k] is { } v)
            {
                var d = TensorPrimitives.Dot(x, v);
                if (d > best)
                {
                    best = d;
                    bestIndex = k;
                }
            }
        }

        if (Refine)
        {
            var (mirror, s, dx, dy) = b.Settings[bestIndex];
            float bs = s, bx = dx, by = dy;
            for (var round = 0; round < RefineRounds; round++)
            {
                var step = MathF.Pow(2, -round);
                float cs = bs, cx = bx, cy = by;
                foreach (var ds in new[] { -0.0125f * step, 0f, 0.0125f * step })
                {
                    foreach (var hx in new[] { -0.5f * step, 0f, 0.5f * step })
                    {
                        foreach (var hy in new[] { -0.5f * step, 0f, 0.5f * step })
                        {
                            if ((ds != 0 || hx != 0 || hy != 0) && Render(b.Source, b.Size, mirror, cs + ds, cx + hx, cy + hy) is { } v)
                            {
                                var d = TensorPrimitives.Dot(x, v);
                                if (d > best)
                                {
                                    best = d;
                                    (bs, bx, by) = (cs + ds, cx + hx, cy + hy);
                                }
                            }
                        }
                    }
                }
            }
        }

        return best;
    }

    /// <summary>Half A or B of a seeded split, by the image's path.</summary>
    private static bool InA(string path) => (BitConverter.ToUInt32(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes("aligned-split:" + path)), 0) & 1) == 0;

    public static void Run(BothFeaturizer featurizer, IReadOnlyList<Duplicates.Source> sources, string work, string heldOutFile)
    {
        var gridMirror = Duplicates.Representations.First(r => r.Name == "grid-mirror");
        var prefilters = new[] { 0.90, 0.92, 0.94 };
        var thresholds = new[] { 0.96, 0.97, 0.975, 0.98, 0.985, 0.99, 0.9925, 0.995, 0.9965, 0.998 };
        var heldOut = new StringBuilder();
        foreach (var size in Sizes)
        {
            foreach (var source in sources)
            {
                var copyRows = new List<(double F, double P, string T, bool A)>();
                var originals = featurizer.Featurize(Path.Combine(work, source.Name, "originals"), source.Originals);
                foreach (var t in Duplicates.Transforms)
                {
                    var folder = Path.Combine(work, source.Name, t);
                    var keys = source.Originals.Keys.ToArray();
                    var files = keys.ToDictionary(k => k, k => Path.Combine(folder, k.ToString(CultureInfo.InvariantCulture) + (t == "jpeg70" ? ".jpg" : ".png")));
                    var copies = featurizer.Featurize(folder, files);
                    var results = new (double F, double P, string T, bool A)[keys.Length];
                    Parallel.For(0, keys.Length, i =>
                    {
                        var key = keys[i];
                        var a = Prepare(source.Originals[key], size);
                        var b = Prepare(files[key], size);
                        results[i] = (Duplicates.Similarity(gridMirror, originals[key], copies[key]), Score(a, b), t, InA(source.Originals[key]));
                        a.Source.Dispose();
                        b.Source.Dispose();
                    });
                    copyRows.AddRange(results);
                }

                var pairs = Duplicates.SameClassDistinctPairs(source);
                var inA = source.Distinct.Select(d => InA(d.Path)).ToArray();
                var scored = pairs.Where(p => inA[p.I] == inA[p.J]).Select(p => (F: Duplicates.Similarity(gridMirror, source.Distinct[p.I].Features, source.Distinct[p.J].Features), p.I, p.J, A: inA[p.I])).ToList();
                var pairCountA = scored.Count(p => p.A);
                var pairCountB = scored.Count - pairCountA;
                scored = scored.Where(p => p.F >= prefilters.Min()).ToList();
                var prepared = new ConcurrentDictionary<int, Prepared>();
                var aligned = new double[scored.Count];
                Parallel.For(0, scored.Count, k =>
                {
                    var (_, i, j, _) = scored[k];
                    aligned[k] = Score(prepared.GetOrAdd(i, x => Prepare(source.Distinct[x].Path, size)), prepared.GetOrAdd(j, x => Prepare(source.Distinct[x].Path, size)));
                });
                foreach (var p in prepared.Values)
                {
                    p.Source.Dispose();
                }

                if (Dump is { } dump)
                {
                    var lines = copyRows.Select(c => string.Create(CultureInfo.InvariantCulture, $"{source.Name},copy,{c.T},{(c.A ? "A" : "B")},{c.F:F5},{c.P:F5}"))
                        .Concat(Enumerable.Range(0, scored.Count).Select(k => string.Create(CultureInfo.InvariantCulture, $"{source.Name},distinct,,{(scored[k].A ? "A" : "B")},{scored[k].F:F5},{aligned[k]:F5}")))
                        .Append(string.Create(CultureInfo.InvariantCulture, $"{source.Name},pair-counts,,A,{pairCountA},0")).Append(string.Create(CultureInfo.InvariantCulture, $"{source.Name},pair-counts,,B,{pairCountB},0"));
                    File.AppendAllLines(dump, lines);
                }

                foreach (var half in new[] { true, false })
                {
                    var o = new StringBuilder();
                    var copiesHalf = copyRows.Where(c => c.A == half).ToList();
                    var pairCount = half ? pairCountA : pairCountB;
                    o.AppendLine(CultureInfo.InvariantCulture, $"{source.Name} half {(half ? "A" : "B")} thumbs {size} border {Border} refine {Refine} blur {Blur}: copies {copiesHalf.Count}, same-class distinct pairs {pairCount}");
                    foreach (var t in Duplicates.Transforms)
                    {
                        var s = copiesHalf.Where(c => c.T == t).Select(c => c.P).Order().ToArray();
                        o.AppendLine(CultureInfo.InvariantCulture, $"  copies {t}: aligned min {s[0]:F4}, 1% {s[s.Length / 100]:F4}, 2% {s[s.Length / 50]:F4}, median {s[s.Length / 2]:F4}");
                    }

                    foreach (var tf in prefilters)
                    {
                        foreach (var tp in thresholds)
                        {
                            var recall = copiesHalf.Count(c => c.F >= tf && c.P >= tp) / (double)copiesHalf.Count;
                            var worst = Duplicates.Transforms.Select(t => (t, r: copiesHalf.Where(c => c.T == t).Count(c => c.F >= tf && c.P >= tp) / (double)copiesHalf.Count(c => c.T == t))).MinBy(x => x.r);
                            var falseCount = Enumerable.Range(0, scored.Count).Count(k => scored[k].A == half && scored[k].F >= tf && aligned[k] >= tp);
                            o.AppendLine(CultureInfo.InvariantCulture, $"  feature >= {tf:F2} aligned >= {tp:F4}: recall {recall:F4} (worst {worst.t} {worst.r:F3}), false {falseCount / (double)pairCount:P3} ({falseCount})");
                        }
                    }

                    if (half)
                    {
                        Console.Write(o);
                    }
                    else
                    {
                        heldOut.Append(o);
                    }
                }
            }
        }

        File.WriteAllText(heldOutFile, heldOut.ToString());
        Console.WriteLine($"Half B written to {heldOutFile} (not printed).");
    }
}
