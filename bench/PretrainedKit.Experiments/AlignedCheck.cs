using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using PretrainedKit.Imaging;
using PretrainedKit.Inspection;
using SkiaSharp;

namespace PretrainedKit.Experiments;

/// <summary>
/// Issue #15: the aligned pixel check of near-duplicate candidates (the library's <see cref="AlignedThumbnail"/>, the
/// rule of <see cref="DataInspector.IsNearDuplicate"/>) on the injected copies and the same-class pairs of distinct
/// images of duplicates-calibration.md. Images are split in two halves by a seeded hash of their path: the rule's
/// thresholds were read on half A (the exploration is in commit f14e8a4: thumbnail sizes 16/24/32, with and without the
/// outer ring, sub-pixel refinement and smoothing); half B is reported beside it. Every copy, and every candidate pair that reaches the lower aligned threshold, goes to a CSV.
/// Run: <c>-- --duplicates --aligned</c>. Results: bench/results/duplicates-aligned.md.
/// </summary>
internal static class AlignedCheck
{
    /// <summary>Half A or B of the seeded split, by the image's path.</summary>
    public static bool InA(string path) => (BitConverter.ToUInt32(SHA256.HashData(Encoding.UTF8.GetBytes("aligned-split:" + path)), 0) & 1) == 0;

    public static void Run(BothFeaturizer featurizer, IReadOnlyList<Duplicates.Source> sources, string work, string outDir, string machine)
    {
        var gridMirror = Duplicates.Representations.First(r => r.Name == "grid-mirror");
        var csv = new StringBuilder("set,kind,transform,half,feature,aligned\n");
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# Near duplicates: features, then aligned pixels ({DateTime.UtcNow:yyyy-MM-dd}, {machine})");
        md.AppendLine();
        md.AppendLine("`dotnet run -c Release --project bench/PretrainedKit.Experiments -- --duplicates --aligned`. Copies: each original re-encoded as JPEG quality 70, resized to 90 % and 110 %, cropped by 5 % (2.5 % a side) and mirrored; false pairs: same-class pairs of distinct images (different bytes), as in [duplicates-calibration.md](duplicates-calibration.md). Feature similarity: grid features, the better of as they are and with mirrored cells. Aligned: the library's `AlignedThumbnail` similarity. Half A / B: a seeded hash of each image's path; the rule's thresholds were read on half A only.");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Rule (shipped): a pair is a near duplicate when feature similarity >= {DataInspector.AlignedCandidateThreshold:F2} and (aligned >= {DataInspector.AlignedThreshold:F3}, or feature similarity >= {DataInspector.AlignedHighFeatureThreshold:F2} and aligned >= {DataInspector.AlignedLowThreshold:F2}). Before it: feature similarity >= {DataInspector.GridNearDuplicateThreshold:F2} alone.");
        md.AppendLine();
        md.AppendLine("| Set | Half | Copies | Recall: features alone | Recall: rule | Worst transform (rule) | Same-class distinct pairs | False pairs: features alone | False pairs: rule | of them pixel-identical (aligned >= 0.999) |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        var notIdentical = new StringBuilder();
        var sheetPairs = new List<(string A, string B)>();
        foreach (var source in sources)
        {
            var originals = featurizer.Featurize(Path.Combine(work, source.Name, "originals"), source.Originals);
            var copyRows = new List<(double F, double A, string T, bool Half)>();
            foreach (var t in Duplicates.Transforms)
            {
                var folder = Path.Combine(work, source.Name, t);
                var keys = source.Originals.Keys.ToArray();
                var files = keys.ToDictionary(k => k, k => Path.Combine(folder, k.ToString(CultureInfo.InvariantCulture) + (t == "jpeg70" ? ".jpg" : ".png")));
                var copies = featurizer.Featurize(folder, files);
                var results = new (double F, double A, string T, bool Half)[keys.Length];
                Parallel.For(0, keys.Length, i =>
                {
                    var key = keys[i];
                    var a = Thumbnail(source.Originals[key]);
                    var b = Thumbnail(files[key]);
                    results[i] = (Duplicates.Similarity(gridMirror, originals[key], copies[key]), a.Similarity(b.Drawings()), t, InA(source.Originals[key]));
                });
                copyRows.AddRange(results);
            }

            // Distinct pairs within one half; the aligned score only where the features make a candidate (as in the library).
            var inA = source.Distinct.Select(d => InA(d.Path)).ToArray();
            var pairs = Duplicates.SameClassDistinctPairs(source).Where(p => inA[p.I] == inA[p.J])
                .Select(p => (F: Duplicates.Similarity(gridMirror, source.Distinct[p.I].Features, source.Distinct[p.J].Features), p.I, p.J, Half: inA[p.I])).ToList();
            var thumbnails = new AlignedThumbnail[source.Distinct.Count];
            Parallel.For(0, thumbnails.Length, i => thumbnails[i] = Thumbnail(source.Distinct[i].Path));
            var candidates = Enumerable.Range(0, pairs.Count).Where(k => pairs[k].F >= DataInspector.AlignedCandidateThreshold).ToList();
            var aligned = new Dictionary<int, double>();
            foreach (var group in candidates.GroupBy(k => pairs[k].J).ToList().Chunk(64))
            {
                var scores = group.AsParallel().SelectMany(g =>
                {
                    var drawings = thumbnails[g.Key].Drawings();
                    return g.Select(k => (k, s: thumbnails[pairs[k].I].Similarity(drawings))).ToList();
                }).ToList();
                foreach (var (k, s) in scores)
                {
                    aligned[k] = s;
                }
            }

            foreach (var c in copyRows)
            {
                csv.AppendLine(CultureInfo.InvariantCulture, $"{source.Name},copy,{c.T},{(c.Half ? "A" : "B")},{c.F:F5},{c.A:F5}");
            }

            foreach (var k in candidates.Where(k => aligned[k] >= DataInspector.AlignedLowThreshold))
            {
                csv.AppendLine(CultureInfo.InvariantCulture, $"{source.Name},distinct,,{(pairs[k].Half ? "A" : "B")},{pairs[k].F:F5},{aligned[k]:F5}");
            }

            foreach (var k in candidates.Where(k => DataInspector.IsNearDuplicate(pairs[k].F, aligned[k]) && aligned[k] < 0.999).OrderByDescending(k => aligned[k]))
            {
                sheetPairs.Add((source.Distinct[pairs[k].I].Path, source.Distinct[pairs[k].J].Path));
                notIdentical.AppendLine(CultureInfo.InvariantCulture, $"- {sheetPairs.Count}. {source.Name} ({(pairs[k].Half ? "A" : "B")}): features {pairs[k].F:F3}, aligned {aligned[k]:F4}: `{source.Distinct[pairs[k].I].Path}` and `{source.Distinct[pairs[k].J].Path}`");
            }

            foreach (var half in new[] { true, false })
            {
                var copiesHalf = copyRows.Where(c => c.Half == half).ToList();
                var pairsHalf = Enumerable.Range(0, pairs.Count).Where(k => pairs[k].Half == half).ToList();
                bool Rule(double f, double a) => DataInspector.IsNearDuplicate(f, a);
                var recallOld = copiesHalf.Count(c => c.F >= DataInspector.GridNearDuplicateThreshold) / (double)copiesHalf.Count;
                var recall = copiesHalf.Count(c => Rule(c.F, c.A)) / (double)copiesHalf.Count;
                var worst = Duplicates.Transforms.Select(t => (t, r: copiesHalf.Where(c => c.T == t).Count(c => Rule(c.F, c.A)) / (double)copiesHalf.Count(c => c.T == t))).MinBy(x => x.r);
                var falseOld = pairsHalf.Count(k => pairs[k].F >= DataInspector.GridNearDuplicateThreshold);
                var falseNew = pairsHalf.Where(aligned.ContainsKey).Count(k => Rule(pairs[k].F, aligned[k]));
                var identical = pairsHalf.Where(aligned.ContainsKey).Count(k => Rule(pairs[k].F, aligned[k]) && aligned[k] >= 0.999);
                md.AppendLine(CultureInfo.InvariantCulture, $"| {source.Name} | {(half ? "A" : "B")} | {copiesHalf.Count} | {recallOld:F4} | **{recall:F4}** | {worst.t} {worst.r:F3} | {pairsHalf.Count} | {falseOld / (double)pairsHalf.Count:P3} ({falseOld}) | **{falseNew / (double)pairsHalf.Count:P3}** ({falseNew}) | {identical} |");
            }
        }

        md.AppendLine();
        md.AppendLine("Pairs the rule reports that are not pixel-identical (aligned < 0.999), both halves, to be looked at:");
        md.AppendLine();
        md.Append(notIdentical);
        Sheet(sheetPairs, Path.Combine(outDir, "duplicates-aligned-pairs.png"));
        md.AppendLine();
        md.AppendLine("Drawn side by side, numbered as above: [`duplicates-aligned-pairs.png`](duplicates-aligned-pairs.png).");
        File.WriteAllText(Path.Combine(outDir, "duplicates-aligned.csv"), csv.ToString());
        File.WriteAllText(Path.Combine(outDir, "duplicates-aligned.md"), md.ToString());
        Console.WriteLine(md);
    }

    /// <summary>Times the parts of the pixel step on a folder's images (--aligned-cost DIR).</summary>
    public static void Cost(string folder)
    {
        var files = Directory.GetFiles(folder, "*.png", SearchOption.AllDirectories).Order().ToArray();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var thumbnails = files.AsParallel().AsOrdered().Select(Thumbnail).ToArray();
        var decode = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var drawings = thumbnails.AsParallel().AsOrdered().Select(t => t.Drawings()).ToArray();
        var draw = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var pairs = 0L;
        Parallel.For(0, 200, j =>
        {
            for (var i = 0; i < thumbnails.Length; i++)
            {
                _ = thumbnails[i].Similarity(drawings[j]);
                Interlocked.Increment(ref pairs);
            }
        });
        var dots = sw.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{files.Length} images: decode {decode:F2} s, drawings {draw:F2} s, {pairs} pair scores {dots:F2} s ({dots / pairs * 1e6:F1} us each)"));
    }

    /// <summary>A numbered contact sheet of pairs, four pairs a row, each image 96 pixels on white.</summary>
    private static void Sheet(List<(string A, string B)> pairs, string path)
    {
        const int Cell = 96;
        const int PerRow = 4;
        var rows = Math.Max(1, (pairs.Count + PerRow - 1) / PerRow);
        using var surface = SKSurface.Create(new SKImageInfo(PerRow * ((2 * Cell) + 40), rows * (Cell + 24)));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var font = new SKFont(SKTypeface.Default, 14);
        using var ink = new SKPaint { Color = SKColors.Black };
        using var frame = new SKPaint { Color = SKColors.LightGray, Style = SKPaintStyle.Stroke };
        for (var n = 0; n < pairs.Count; n++)
        {
            var x = (n % PerRow) * ((2 * Cell) + 40);
            var y = (n / PerRow) * (Cell + 24);
            canvas.DrawText((n + 1).ToString(CultureInfo.InvariantCulture), x + 4, y + 16, font, ink);
            foreach (var (file, offset) in new[] { (pairs[n].A, 24), (pairs[n].B, 24 + Cell + 4) })
            {
                using var bitmap = SKBitmap.Decode(file);
                using var image = SKImage.FromBitmap(bitmap);
                var scale = Math.Min(Cell / (float)bitmap.Width, Cell / (float)bitmap.Height);
                var rect = SKRect.Create(x + offset, y + 20, bitmap.Width * scale, bitmap.Height * scale);
                canvas.DrawImage(image, rect, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
                canvas.DrawRect(SKRect.Create(x + offset, y + 20, Cell, Cell), frame);
            }
        }

        using var png = surface.Snapshot().Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, png.ToArray());
    }

    private static AlignedThumbnail Thumbnail(string path) => AlignedThumbnail.Decode(File.ReadAllBytes(path), path, ImagePreprocessingOptions.Default, CancellationToken.None);
}
