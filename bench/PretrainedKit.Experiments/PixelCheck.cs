using System.Globalization;
using System.Numerics.Tensors;
using SkiaSharp;

namespace PretrainedKit.Experiments;

/// <summary>
/// Issue #15, tried and not used: a pixel-level second check for near-duplicate candidates (16 x 16 grey thumbnails,
/// correlation, mirror-aware) on top of the feature similarity. It does not separate Fashion-MNIST's copies from
/// distinct garments either (results: bench/results/duplicates-pixel-check.txt). Run: <c>-- --duplicates --pixels</c>.
/// </summary>
internal static class PixelCheck
{
    public static float[] Signature(string path, int size)
    {
        using var original = SKBitmap.Decode(path) ?? throw new InvalidDataException(path);
        using var target = new SKBitmap(size, size, SKColorType.Rgba8888, SKAlphaType.Premul);
        using (var canvas = new SKCanvas(target))
        using (var image = SKImage.FromBitmap(original))
        {
            canvas.Clear(SKColors.White);
            canvas.DrawImage(image, new SKRect(0, 0, size, size), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        }

        var grey = new float[size * size];
        var bytes = target.Bytes;
        for (var i = 0; i < grey.Length; i++)
        {
            grey[i] = (0.299f * bytes[4 * i]) + (0.587f * bytes[(4 * i) + 1]) + (0.114f * bytes[(4 * i) + 2]);
        }

        var mean = TensorPrimitives.Sum<float>(grey) / grey.Length;
        TensorPrimitives.Subtract(grey, mean, grey);
        var norm = TensorPrimitives.Norm<float>(grey);
        if (norm > 0)
        {
            TensorPrimitives.Divide(grey, norm, grey);
        }

        return grey;
    }

    public static float[] Mirror(float[] s, int size)
    {
        var m = new float[s.Length];
        for (var y = 0; y < size; y++)
        {
            for (var x = 0; x < size; x++)
            {
                m[(y * size) + x] = s[(y * size) + (size - 1 - x)];
            }
        }

        return m;
    }

    public static double Similarity(float[] a, float[] b, float[] bMirror) => Math.Max(TensorPrimitives.Dot(a, b), TensorPrimitives.Dot(a, bMirror));

    public static void Run(BothFeaturizer featurizer, IReadOnlyList<Duplicates.Source> sources, string work)
    {
        var gridMirror = Duplicates.Representations.First(r => r.Name == "grid-mirror");
        var sourcePairs = sources.ToDictionary(s => s.Name, Duplicates.SameClassDistinctPairs);
        foreach (var size in new[] { 8, 12, 16, 24 })
        {
            foreach (var source in sources)
            {
                var originals = featurizer.Featurize(Path.Combine(work, source.Name, "originals"), source.Originals);
                var sigO = source.Originals.ToDictionary(k => k.Key, k => Signature(k.Value, size));
                var copyRows = new List<(double F, double P, string T)>();
                foreach (var t in Duplicates.Transforms)
                {
                    var folder = Path.Combine(work, source.Name, t);
                    var files = source.Originals.ToDictionary(k => k.Key, k => Path.Combine(folder, k.Key.ToString(CultureInfo.InvariantCulture) + (t == "jpeg70" ? ".jpg" : ".png")));
                    var copies = featurizer.Featurize(folder, files);
                    foreach (var (key, file) in files)
                    {
                        var s = Signature(file, size);
                        copyRows.Add((Duplicates.Similarity(gridMirror, originals[key], copies[key]), Similarity(sigO[key], s, Mirror(s, size)), t));
                    }
                }

                var sig = source.Distinct.Select(d => Signature(d.Path, size)).ToArray();
                var sigM = sig.Select(s => Mirror(s, size)).ToArray();
                var pairs = sourcePairs[source.Name].Select(p => (F: Duplicates.Similarity(gridMirror, source.Distinct[p.I].Features, source.Distinct[p.J].Features), P: Similarity(sig[p.I], sig[p.J], sigM[p.J]), p.I, p.J)).ToList();

                Console.WriteLine($"{source.Name} pixels{size}: copies {copyRows.Count}, distinct pairs {pairs.Count}");
                foreach (var tf in new[] { 0.90, 0.92, 0.94 })
                {
                    foreach (var tp in new[] { 0.0, 0.80, 0.85, 0.90, 0.93, 0.95, 0.97 })
                    {
                        var recall = copyRows.Count(c => c.F >= tf && c.P >= tp) / (double)copyRows.Count;
                        var worst = Duplicates.Transforms.Select(t => (t, r: copyRows.Where(c => c.T == t).Count(c => c.F >= tf && c.P >= tp) / (double)copyRows.Count(c => c.T == t))).MinBy(x => x.r);
                        var falseCount = pairs.Count(p => p.F >= tf && p.P >= tp);
                        Console.WriteLine($"  feature >= {tf:F2} pixels >= {tp:F2}: recall {recall:F4} (worst {worst.t} {worst.r:F3}), false {falseCount / (double)pairs.Count:P3} ({falseCount})");
                    }
                }

                if (size == 16)
                {
                    foreach (var p in pairs.Where(p => p.F >= 0.92 && p.P >= 0.90).OrderByDescending(p => p.P).Take(40))
                    {
                        Console.WriteLine($"    pair f {p.F:F3} p {p.P:F3}: {source.Distinct[p.I].Path} | {source.Distinct[p.J].Path}");
                    }
                }
            }
        }
    }
}
