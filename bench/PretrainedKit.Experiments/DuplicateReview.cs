using System.Globalization;
using SkiaSharp;

namespace PretrainedKit.Experiments;

/// <summary>
/// The by-eye review of issue #15's false pairs: every distinct same-class pair at or above the shipped near-duplicate
/// threshold (grid features, mirror-aware) on the colour sets, and a seeded sample of them on Fashion-MNIST, drawn side
/// by side on numbered contact sheets, with a CSV listing them for the verdicts.
/// </summary>
internal static class DuplicateReview
{
    public static void Write(IReadOnlyList<Duplicates.Source> sources, string outDir, int fashionSample)
    {
        var gridMirror = Duplicates.Representations.First(r => r.Name == "grid-mirror");
        var rows = new List<string> { "set,pair,similarity,a,b" };
        foreach (var source in sources)
        {
            var pairs = Duplicates.SameClassDistinctPairs(source)
                .Select(p => (S: Duplicates.Similarity(gridMirror, source.Distinct[p.I].Features, source.Distinct[p.J].Features), p.I, p.J))
                .Where(p => p.S >= Inspection.DataInspector.GridNearDuplicateThreshold)
                .ToList();
            pairs.Sort((x, y) => y.S.CompareTo(x.S));
            var total = pairs.Count;
            if (source.Name == "fashion-mnist" && pairs.Count > fashionSample)
            {
                var random = new Random(15);
                pairs = pairs.OrderBy(_ => random.Next()).Take(fashionSample).OrderByDescending(p => p.S).ToList();
            }

            Console.WriteLine($"{source.Name}: {total} distinct same-class pairs at or above {Inspection.DataInspector.GridNearDuplicateThreshold}; reviewing {pairs.Count}");
            for (var p = 0; p < pairs.Count; p++)
            {
                rows.Add(string.Create(CultureInfo.InvariantCulture, $"{source.Name},{p + 1},{pairs[p].S:F4},{source.Distinct[pairs[p].I].Path},{source.Distinct[pairs[p].J].Path}"));
            }

            const int PerSheet = 12, Cell = 150;
            for (var sheet = 0; sheet * PerSheet < pairs.Count; sheet++)
            {
                var chunk = pairs.Skip(sheet * PerSheet).Take(PerSheet).ToList();
                var rowsOnSheet = (chunk.Count + 1) / 2;
                using var bitmap = new SKBitmap(4 * Cell + 60, rowsOnSheet * (Cell + 20), SKColorType.Rgba8888, SKAlphaType.Premul);
                using var canvas = new SKCanvas(bitmap);
                canvas.Clear(new SKColor(200, 200, 200));
                using var font = new SKFont(SKTypeface.Default, 16);
                using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
                for (var k = 0; k < chunk.Count; k++)
                {
                    var x0 = (k % 2) * ((2 * Cell) + 60);
                    var y0 = (k / 2) * (Cell + 20);
                    canvas.DrawText(string.Create(CultureInfo.InvariantCulture, $"#{(sheet * PerSheet) + k + 1}  {chunk[k].S:F3}"), x0 + 4, y0 + 15, font, paint);
                    var paths = new[] { source.Distinct[chunk[k].I].Path, source.Distinct[chunk[k].J].Path };
                    for (var m = 0; m < 2; m++)
                    {
                        using var image = SKBitmap.Decode(paths[m]);
                        var scale = Math.Min((Cell - 4f) / image.Width, (Cell - 4f) / image.Height);
                        var w = image.Width * scale;
                        var h = image.Height * scale;
                        var left = x0 + (m * Cell) + ((Cell - w) / 2);
                        var top = y0 + 20 + ((Cell - 4 - h) / 2);
                        using var white = new SKPaint { Color = SKColors.White };
                        canvas.DrawRect(x0 + (m * Cell) + 2, y0 + 18, Cell - 4, Cell - 2, white);
                        using var img = SKImage.FromBitmap(image);
                        canvas.DrawImage(img, new SKRect(left, top, left + w, top + h), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
                    }
                }

                using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(outDir, string.Create(CultureInfo.InvariantCulture, $"duplicates-review-{source.Name}-{sheet + 1}.png")), data.ToArray());
            }
        }

        File.WriteAllLines(Path.Combine(outDir, "duplicates-review-pairs.csv"), rows);
    }
}
