using System.Globalization;
using System.Text;
using SkiaSharp;

namespace PretrainedKit.Experiments;

/// <summary>Prints the table and writes the CSV and the PNG plot.</summary>
internal static class Report
{
    private static readonly (string Method, string Label, SKColor Color)[] Series =
    [
        (Methods.WithLeversKernel, "Pretrained ResNet18, the same levers with the kernel head (HeadKind.Kernel)", new SKColor(0x8c, 0x56, 0x4b)),
        (Methods.WithLevers, "Pretrained ResNet18, levers: multi-stage grid features, mirror at training and prediction", new SKColor(0x94, 0x67, 0xbd)),
        (Methods.MultiStage, "Pretrained ResNet18, multi-stage features + retrained final layer", new SKColor(0x1f, 0x77, 0xb4)),
        (Methods.Pooled, "Pretrained ResNet18, pooled features + retrained final layer", new SKColor(0x2c, 0xa0, 0x2c)),
        (Methods.Naive, "Naive ML.NET: same pooled features, LbfgsMaximumEntropy defaults", new SKColor(0xff, 0x7f, 0x0e)),
        (Methods.FromScratch, "From scratch: same head on raw pixels (no pretraining)", new SKColor(0xd6, 0x27, 0x28)),
    ];

    public static void Write(List<ResultRow> rows, string outDir, double featureImagesPerSecond, int testCount, List<ResultRow> clipArt)
    {
        var csv = new StringBuilder("method,perClass,draw,accuracy,headSeconds,featureImages,chosenL2\n");
        foreach (var r in rows.Concat(clipArt.Select(r => r with { Method = "clipart-" + r.Method })))
        {
            csv.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{r.Method},{r.PerClass},{r.Draw},{r.Accuracy:F4},{r.HeadSeconds:F3},{r.FeatureImages},{r.ChosenL2}"));
        }

        File.WriteAllText(Path.Combine(outDir, "pretraining-evidence.csv"), csv.ToString());

        var sizes = rows.Select(r => r.PerClass).Distinct().Order().ToArray();
        var table = new StringBuilder();
        table.AppendLine(string.Create(CultureInfo.InvariantCulture, $"Accuracy on {testCount} Fashion-MNIST test images, mean ± sd over {rows.Max(r => r.Draw) + 1} seeded draws; time = head training (mean, s){(featureImagesPerSecond > 0 ? $" + featurising the training images at the measured {featureImagesPerSecond:F1} images/s" : string.Empty)}"));
        table.AppendLine();
        table.AppendLine("| Method | " + string.Join(" | ", sizes.Select(n => $"{n}/class accuracy | {n}/class time (s)")) + " |");
        table.AppendLine("|---|" + string.Concat(sizes.Select(_ => "---|---|")));
        foreach (var (method, label, _) in Series.Where(s => rows.Any(r => r.Method == s.Method)))
        {
            var cells = sizes.Select(n =>
            {
                var group = rows.Where(r => r.Method == method && r.PerClass == n).ToList();
                if (group.Count == 0)
                {
                    return "not run | -";
                }

                var mean = group.Average(r => r.Accuracy);
                var sd = Math.Sqrt(group.Sum(r => (r.Accuracy - mean) * (r.Accuracy - mean)) / Math.Max(1, group.Count - 1));
                var head = group.Average(r => r.HeadSeconds);
                var features = featureImagesPerSecond > 0 ? group[0].FeatureImages / featureImagesPerSecond : 0;
                return string.Create(CultureInfo.InvariantCulture, $"{mean:F3} ± {sd:F3} | {head + features:F1}");
            });
            table.AppendLine($"| {label} | {string.Join(" | ", cells)} |");
        }

        var auto = rows.Where(r => r.Method == Methods.WithLeversAuto).ToList();
        if (auto.Count > 0)
        {
            table.AppendLine();
            table.AppendLine("Automatic regularisation (cross-validation, one-standard-error rule) against the fixed L2 = 10, same levers and draws:");
            table.AppendLine();
            table.AppendLine("| Per class | Fixed L2 = 10 | Automatic L2 | L2 chosen per draw | Head time fixed / automatic (s) |");
            table.AppendLine("|---|---|---|---|---|");
            foreach (var n in auto.Select(r => r.PerClass).Distinct().Order())
            {
                var fixedRows = rows.Where(r => r.Method == Methods.WithLevers && r.PerClass == n).ToList();
                var autoRows = auto.Where(r => r.PerClass == n).ToList();
                table.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {n} | {MeanSd(fixedRows)} | {MeanSd(autoRows)} | {string.Join(", ", autoRows.Select(r => r.ChosenL2))} | {fixedRows.Average(r => r.HeadSeconds):F1} / {autoRows.Average(r => r.HeadSeconds):F1} |"));
            }
        }

        if (clipArt.Count > 0)
        {
            table.AppendLine();
            table.AppendLine(string.Create(CultureInfo.InvariantCulture, $"Colour check: {ClipArt.Describe()}; accuracy mean ± sd over {clipArt.Max(r => r.Draw) + 1} seeded draws"));
            table.AppendLine();
            table.AppendLine("| Method | Accuracy |");
            table.AppendLine("|---|---|");
            foreach (var (method, label, _) in Series.Where(s => clipArt.Any(r => r.Method == s.Method)))
            {
                table.AppendLine($"| {label} | {MeanSd(clipArt.Where(r => r.Method == method).ToList())} |");
            }

            var autoClipArt = clipArt.Where(r => r.Method == Methods.WithLeversAuto).ToList();
            if (autoClipArt.Count > 0)
            {
                table.AppendLine($"| The same levers with automatic L2 (chosen: {string.Join(", ", autoClipArt.Select(r => r.ChosenL2))}) | {MeanSd(autoClipArt)} |");
            }
        }

        File.WriteAllText(Path.Combine(outDir, "pretraining-evidence.md"), table.ToString());
        Console.WriteLine();
        Console.WriteLine(table);
        Plot(rows, sizes, Path.Combine(outDir, "pretraining-evidence.png"));
        Console.WriteLine($"Wrote {Path.Combine(outDir, "pretraining-evidence.csv")}, .md and .png");
    }

    private static string MeanSd(List<ResultRow> group)
    {
        var mean = group.Average(r => r.Accuracy);
        var sd = Math.Sqrt(group.Sum(r => (r.Accuracy - mean) * (r.Accuracy - mean)) / Math.Max(1, group.Count - 1));
        return string.Create(CultureInfo.InvariantCulture, $"{mean:F3} ± {sd:F3}");
    }

    private static void Plot(List<ResultRow> rows, int[] sizes, string path)
    {
        const int width = 900, height = 588, left = 70, right = 60, top = 30, bottom = 218;
        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1.5f, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var grid = new SKPaint { Color = new SKColor(0xdd, 0xdd, 0xdd), StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var font = new SKFont(SKTypeface.Default, 14);
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        double yMin = Math.Floor(rows.Min(r => r.Accuracy) * 10) / 10, yMax = 1.0;
        float X(int n) => left + ((width - left - right) * (float)((Math.Log(n) - Math.Log(sizes[0])) / Math.Max(1e-9, Math.Log(sizes[^1]) - Math.Log(sizes[0]))));
        float Y(double a) => top + ((height - top - bottom) * (float)((yMax - a) / (yMax - yMin)));
        for (var a = yMin; a <= yMax + 1e-9; a += 0.05)
        {
            canvas.DrawLine(left, Y(a), width - right, Y(a), grid);
            canvas.DrawText(a.ToString("F2", CultureInfo.InvariantCulture), 10, Y(a) + 5, font, text);
        }

        canvas.DrawLine(left, top, left, height - bottom, axis);
        canvas.DrawLine(left, height - bottom, width - right, height - bottom, axis);
        foreach (var n in sizes)
        {
            canvas.DrawText($"{n}/class", X(n) - 25, height - bottom + 20, font, text);
        }

        canvas.DrawText("Fashion-MNIST test accuracy vs training images per class (mean ± sd)", left, 20, font, text);
        var legendY = height - bottom + 50;
        foreach (var (method, label, color) in Series.Where(s => rows.Any(r => r.Method == s.Method)))
        {
            using var line = new SKPaint { Color = color, StrokeWidth = 2.5f, IsAntialias = true, Style = SKPaintStyle.Stroke };
            using var dot = new SKPaint { Color = color, IsAntialias = true };
            SKPoint? previous = null;
            foreach (var n in sizes)
            {
                var group = rows.Where(r => r.Method == method && r.PerClass == n).Select(r => r.Accuracy).ToList();
                if (group.Count == 0)
                {
                    continue;
                }

                var mean = group.Average();
                var sd = Math.Sqrt(group.Sum(a => (a - mean) * (a - mean)) / Math.Max(1, group.Count - 1));
                var point = new SKPoint(X(n), Y(mean));
                canvas.DrawLine(point.X, Y(mean - sd), point.X, Y(mean + sd), line);
                canvas.DrawCircle(point, 4, dot);
                if (previous is { } p)
                {
                    canvas.DrawLine(p, point, line);
                }

                previous = point;
            }

            canvas.DrawLine(left, legendY - 5, left + 30, legendY - 5, line);
            canvas.DrawText(label, left + 40, legendY, font, text);
            legendY += 24;
        }

        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    /// <summary>One panel: per dataset and size, the mean macro accuracy of every method (auto and the old default drawn larger).</summary>
    public static void PlotAuto(List<AutoRow> rows, string[] methods, string path)
    {
        var groups = rows.GroupBy(r => (r.Dataset, r.PerClass)).ToList();
        const int width = 1100, height = 560, left = 70, right = 330, top = 40, bottom = 90;
        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        var means = groups.SelectMany(g => methods.Select(m => g.Where(r => r.Method == m).Average(r => r.MacroAccuracy))).ToArray();
        var lo = Math.Floor(means.Min() * 20) / 20;
        var hi = Math.Ceiling(means.Max() * 20) / 20;
        float X(int g) => left + ((g + 0.5f) * (width - left - right) / groups.Count);
        float Y(double v) => (float)(top + ((hi - v) / (hi - lo) * (height - top - bottom)));
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1.5f, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var grid = new SKPaint { Color = new SKColor(0xdd, 0xdd, 0xdd), StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var font = new SKFont(SKTypeface.Default, 13);
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        for (var v = lo; v <= hi + 1e-9; v += 0.05)
        {
            canvas.DrawLine(left, Y(v), width - right, Y(v), grid);
            canvas.DrawText(v.ToString("F2", CultureInfo.InvariantCulture), 20, Y(v) + 4, font, text);
        }

        canvas.DrawLine(left, top, left, height - bottom, axis);
        canvas.DrawLine(left, height - bottom, width - right, height - bottom, axis);
        SKColor[] palette = [new(0xd6, 0x27, 0x28), new(0x2c, 0xa0, 0x2c), new(0x1f, 0x77, 0xb4), new(0xff, 0x7f, 0x0e), new(0x94, 0x67, 0xbd), new(0x8c, 0x56, 0x4b), new(0xe3, 0x77, 0xc2), new(0x7f, 0x7f, 0x7f), new(0xbc, 0xbd, 0x22)];
        for (var g = 0; g < groups.Count; g++)
        {
            var label = groups[g].Key.PerClass > 0 ? $"{groups[g].Key.Dataset} {groups[g].Key.PerClass}/class" : groups[g].Key.Dataset;
            canvas.DrawText(label, X(g) - (label.Length * 3.3f), height - bottom + 22, font, text);
            for (var m = 0; m < methods.Length; m++)
            {
                var mean = groups[g].Where(r => r.Method == methods[m]).Average(r => r.MacroAccuracy);
                using var dot = new SKPaint { Color = palette[m % palette.Length], IsAntialias = true };
                canvas.DrawCircle(X(g) + ((m - (methods.Length / 2f)) * 7), Y(mean), m <= 1 ? 7 : 4, dot);
            }
        }

        for (var m = 0; m < methods.Length; m++)
        {
            using var dot = new SKPaint { Color = palette[m % palette.Length], IsAntialias = true };
            canvas.DrawCircle(width - right + 20, top + 10 + (m * 20), m <= 1 ? 7 : 4, dot);
            canvas.DrawText(methods[m], width - right + 32, top + 15 + (m * 20), font, text);
        }

        canvas.DrawText("Mean macro accuracy on held-out images (Fashion-MNIST: official 10k test)", left, 24, font, text);
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }
}
