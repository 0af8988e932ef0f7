using System.Globalization;
using System.Numerics.Tensors;
using System.Security.Cryptography;
using System.Text;
using PretrainedKit.Backbones;
using SkiaSharp;

namespace PretrainedKit.Experiments;

/// <summary>
/// Issue #15's duplicate evidence: copies of known images (JPEG quality 70, resized by -10 % and +10 %, cropped by 5 %,
/// mirrored) against the same-class pairs of distinct images, as cosine similarity of several feature representations;
/// the near-duplicate threshold is chosen from this measurement.
/// </summary>
internal static class Duplicates
{
    public static readonly string[] Transforms = ["jpeg70", "resize90", "resize110", "crop5", "mirror"];

    /// <summary>Representations compared (name, vector of an image's original view, and of its quadrant-mirrored grid where one exists).</summary>
    public static readonly (string Name, Func<Features, float[]> Of, Func<Features, float[]>? Mirrored)[] Representations =
    [
        ("pooled", f => f.Pooled[0], null),
        ("multistage", f => f.MultiStage(0), null),
        ("grid", f => f.Grid[0], null),
        ("grid-cells", f => f.Grid[0][Features.MultiStageSize..], f => Training.DataInspection.MirrorCells(f.Grid[0], KnownBackbones.ResNet18.Stages)[Features.MultiStageSize..]),
        ("grid-mirror", f => f.Grid[0], f => Training.DataInspection.MirrorCells(f.Grid[0], KnownBackbones.ResNet18.Stages)),
    ];

    /// <summary>A representation's similarity: the better of the pair as is and with the second image's grid cells mirrored.</summary>
    public static double Similarity((string Name, Func<Features, float[]> Of, Func<Features, float[]>? Mirrored) r, Features a, Features b) =>
        r.Mirrored is null ? Cosine(r.Of(a), r.Of(b)) : Math.Max(Cosine(r.Of(a), r.Of(b)), Cosine(r.Of(a), r.Mirrored(b)));

    /// <summary>Writes one transformed copy of an image file.</summary>
    public static void WriteCopy(string source, string transform, string target)
    {
        using var original = SKBitmap.Decode(source) ?? throw new InvalidDataException(source);
        using var canvasBitmap = new SKBitmap(original.Width, original.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        SKBitmap result;
        switch (transform)
        {
            case "jpeg70":
            {
                // A conversion tool flattens transparency onto white before JPEG (which has no alpha).
                using (var canvas = new SKCanvas(canvasBitmap))
                {
                    canvas.Clear(SKColors.White);
                    canvas.DrawBitmap(original, 0, 0);
                }

                using var data = canvasBitmap.Encode(SKEncodedImageFormat.Jpeg, 70);
                File.WriteAllBytes(target, data.ToArray());
                return;
            }

            case "resize90":
            case "resize110":
            {
                var scale = transform == "resize90" ? 0.9 : 1.1;
                result = original.Resize(new SKImageInfo(Math.Max(1, (int)Math.Round(original.Width * scale)), Math.Max(1, (int)Math.Round(original.Height * scale)), SKColorType.Rgba8888, SKAlphaType.Premul), new SKSamplingOptions(SKCubicResampler.Mitchell));
                break;
            }

            case "crop5":
            {
                // 5 % of each side's length cut away, half on each side.
                var dx = (int)Math.Round(original.Width * 0.025);
                var dy = (int)Math.Round(original.Height * 0.025);
                result = new SKBitmap(original.Width - (2 * dx), original.Height - (2 * dy), SKColorType.Rgba8888, SKAlphaType.Premul);
                if (!original.ExtractSubset(result, new SKRectI(dx, dy, original.Width - dx, original.Height - dy)))
                {
                    throw new InvalidOperationException("crop");
                }

                result = result.Copy();
                break;
            }

            case "mirror":
            {
                result = new SKBitmap(original.Width, original.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
                using var canvas = new SKCanvas(result);
                canvas.Clear(SKColors.Transparent);
                canvas.Scale(-1, 1, original.Width / 2f, 0);
                canvas.DrawBitmap(original, 0, 0);
                break;
            }

            default:
                throw new ArgumentException(transform);
        }

        using (result)
        using (var data = result.Encode(SKEncodedImageFormat.Png, 100))
        {
            File.WriteAllBytes(target, data.ToArray());
        }
    }

    /// <summary>One source set: originals (key to file and label) and distinct images for false pairs (key to features and label).</summary>
    public sealed record Source(string Name, Dictionary<int, string> Originals, Dictionary<int, int> OriginalLabels, IReadOnlyList<(Features Features, int Label, string Path)> Distinct);

    public static void Run(BothFeaturizer featurizer, IReadOnlyList<Source> sources, string work, string outDir, string machine)
    {
        var rows = new List<string> { "set,representation,kind,transform,similarity" };
        var summary = new StringBuilder();
        foreach (var source in sources)
        {
            var originals = featurizer.Featurize(Path.Combine(work, source.Name, "originals"), source.Originals);
            var copies = new Dictionary<string, Dictionary<int, Features>>();
            foreach (var t in Transforms)
            {
                var folder = Path.Combine(work, source.Name, t);
                Directory.CreateDirectory(folder);
                var files = new Dictionary<int, string>();
                foreach (var (key, path) in source.Originals)
                {
                    var target = Path.Combine(folder, key.ToString(CultureInfo.InvariantCulture) + (t == "jpeg70" ? ".jpg" : ".png"));
                    if (!File.Exists(target))
                    {
                        WriteCopy(path, t, target);
                    }

                    files[key] = target;
                }

                copies[t] = featurizer.Featurize(folder, files);
            }

            var pairs = SameClassDistinctPairs(source);
            foreach (var representation in Representations)
            {
                var (name, of, _) = representation;
                foreach (var t in Transforms)
                {
                    foreach (var key in source.Originals.Keys)
                    {
                        rows.Add($"{source.Name},{name},copy,{t},{Similarity(representation, originals[key], copies[t][key]).ToString("F5", CultureInfo.InvariantCulture)}");
                    }
                }

                var same = pairs.Select(p => Similarity(representation, source.Distinct[p.I].Features, source.Distinct[p.J].Features)).ToList();

                same.Sort();
                // Keep the CSV small: the 500 highest same-class similarities (the rates in the summary use all of them).
                for (var i = 0; i < same.Count; i++)
                {
                    if (i >= same.Count - 500)
                    {
                        rows.Add($"{source.Name},{name},distinct-same-class,,{same[i].ToString("F5", CultureInfo.InvariantCulture)}");
                    }
                }

                summary.AppendLine(CultureInfo.InvariantCulture, $"{source.Name} {name}: {source.Originals.Count} originals x {Transforms.Length} copies, {same.Count} distinct same-class pairs");
                foreach (var threshold in new[] { 0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98 })
                {
                    var recalls = Transforms.Select(t => source.Originals.Keys.Count(k => Similarity(representation, originals[k], copies[t][k]) >= threshold) / (double)source.Originals.Count).ToArray();
                    var recall = recalls.Average();
                    var falseRate = same.Count(s => s >= threshold) / (double)same.Count;
                    summary.AppendLine(CultureInfo.InvariantCulture, $"  threshold {threshold:F2}: recall {recall:F4} ({string.Join(" ", Transforms.Select((t, i) => $"{t} {recalls[i]:F3}"))}), false pairs {falseRate:P3} ({same.Count(s => s >= threshold)})");
                }
            }
        }

        File.WriteAllLines(Path.Combine(outDir, "duplicates.csv"), rows);
        var text = $"# Near-duplicate calibration ({DateTime.UtcNow:yyyy-MM-dd}, {machine})\n\n```\n{summary}```\n";
        File.WriteAllText(Path.Combine(outDir, "duplicates-calibration.md"), text);
        Console.WriteLine(text);
    }

    public static double Cosine(float[] a, float[] b) => TensorPrimitives.CosineSimilarity(a, b);

    /// <summary>The same-class pairs of distinct images of a source (byte-identical files are not distinct), as indices into <see cref="Source.Distinct"/>.</summary>
    public static List<(int I, int J)> SameClassDistinctPairs(Source source)
    {
        var hashes = source.Distinct.Select(d => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(d.Path)))).ToArray();
        var pairs = new List<(int I, int J)>();
        for (var i = 0; i < source.Distinct.Count; i++)
        {
            for (var j = i + 1; j < source.Distinct.Count; j++)
            {
                if (source.Distinct[i].Label == source.Distinct[j].Label && hashes[i] != hashes[j])
                {
                    pairs.Add((i, j));
                }
            }
        }

        return pairs;
    }
}
