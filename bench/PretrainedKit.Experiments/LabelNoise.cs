using System.Globalization;
using System.Text;
using PretrainedKit.Backbones;
using PretrainedKit.Inspection;
using PretrainedKit.Models;
using PretrainedKit.Training;
using SkiaSharp;

namespace PretrainedKit.Experiments;

/// <summary>One label-noise result row.</summary>
internal sealed record NoiseRow(string Dataset, string Scenario, int Draw, int Images, int Flipped, int Flagged, double PrecisionFlagged, double RecallFlagged, int TopN, double PrecisionTopN, double RandomPrecisionTopN, double LossPrecisionTopN, double AccuracyNoisy, double AccuracyCleaned, double AccuracyClean, double Seconds, int Pruned = 0, double PrecisionPruned = 0, double AccuracyPruned = 0);

/// <summary>
/// Issue #15's label evidence: known label noise injected into training sets (random flips, and flips among the
/// confusable Fashion-MNIST classes), found by inspection (confident learning on out-of-fold probabilities from the head
/// automatic lever choice picks), against a random ranking and the plain training-loss ranking (fastai's top losses);
/// then the flagged images removed and the head retrained, accuracy on the held-out images before and after; for comparison,
/// the images cleanlab's default rule (prune by noise rate) would remove, and the accuracy without them.
/// Nothing here was tuned: the folds, the rule and the head choice are the library's defaults.
/// </summary>
internal static class LabelNoise
{
    /// <summary>T-shirt/top, Pullover, Coat, Shirt: the classes Fashion-MNIST models confuse.</summary>
    public static readonly int[] Confusable = [0, 2, 4, 6];

    public static List<NoiseRow> Run(EvidenceSet set, int perClass, int draws, bool confusable, int? topN)
    {
        var rows = new List<NoiseRow>();
        var stages = KnownBackbones.ResNet18.Stages;
        foreach (var (n, draw, train, test) in set.Draws.Where(d => d.PerClass == perClass && d.Draw < draws))
        {
            var scenarios = new List<(string Name, double Rate, int[]? Among)> { ("random 5%", 0.05, null), ("random 10%", 0.10, null) };
            if (confusable)
            {
                scenarios.Add(("confusable 10%", 0.10, Confusable));
            }

            var clean = train.Select(set.LabelOf).ToArray();
            var testLabels = test.Select(set.LabelOf).ToArray();
            foreach (var (name, rate, among) in scenarios)
            {
                var random = new Random(15_000 + draw);
                var candidates = Enumerable.Range(0, train.Length).Where(i => among is null || among.Contains(clean[i])).ToArray();
                random.Shuffle(candidates);
                var flipCount = (int)Math.Round(rate * train.Length);
                var flipped = candidates.Take(flipCount).ToHashSet();
                var noisy = clean.ToArray();
                foreach (var i in flipped)
                {
                    var pool = (among ?? Enumerable.Range(0, set.Classes.Count).ToArray()).Where(c => c != clean[i]).ToArray();
                    noisy[i] = pool[random.Next(pool.Length)];
                }

                var sw = System.Diagnostics.Stopwatch.StartNew();
                // As the library does it: choose the levers on the (noisy) training features, then out-of-fold probabilities.
                var options = ImageClassifierOptions.Default with { Seed = draw };
                var search = LeverSearch.Run(train.Select(i => set.FeaturesOf(i).Grid).ToList(), noisy, set.Classes.Count, LeverSearch.SpaceFor(options, true), stages, options.ClassWeighting, options.Seed, null, CancellationToken.None);
                var c = search.Chosen!;
                options = options with { FeatureLayout = c.FeatureLayout, Augmentation = c.Augmentation, TestTimeAugmentation = c.TestTimeAugmentation, Head = c.Head, Normalization = c.Normalization };
                var length = c.FeatureLayout == FeatureLayout.Pooled ? 512 : MultiStagePooling.FeatureSize(stages, c.FeatureLayout);
                float[] Vector(int i) => c.FeatureLayout == FeatureLayout.Pooled ? set.FeaturesOf(train[i]).Pooled[0] : set.FeaturesOf(train[i]).Grid[0][..length];
                var features = Enumerable.Range(0, train.Length).Select(Vector).ToList();
                var (probabilities, _, _) = DataInspection.OutOfFold(features, noisy, set.Classes, options, CancellationToken.None);
                var issues = DataInspector.FindLabelIssues(probabilities, noisy, set.Classes, Enumerable.Range(0, train.Length).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList());
                var seconds = sw.Elapsed.TotalSeconds;
                var flaggedIdx = issues.Select(i => int.Parse(i.Path, CultureInfo.InvariantCulture)).ToList();
                var hits = flaggedIdx.Count(flipped.Contains);
                var top = Math.Min(topN ?? flipped.Count, train.Length); // Without N: as many as were flipped (R-precision).
                double PrecisionAt(IEnumerable<int> ranking) => (double)ranking.Take(top).Count(flipped.Contains) / top;

                // Ranked by confident learning: the flagged ones first (by score), then the rest by self-confidence.
                var clRanking = flaggedIdx.Concat(Enumerable.Range(0, train.Length).Where(i => !flaggedIdx.Contains(i)).OrderBy(i => probabilities[i]?[noisy[i]] ?? 1)).ToList();
                var shuffled = Enumerable.Range(0, train.Length).ToArray();
                new Random(99 + draw).Shuffle(shuffled);

                // Training loss (fastai's top losses): the head fitted on all noisy labels, its loss on its own training images.
                var fitted = HeadTrainer.Train(features, noisy, set.Classes.Count, options, CancellationToken.None);
                var lossRanking = Enumerable.Range(0, train.Length).OrderBy(i => ModelDefinition.Softmax(fitted.Head.Logits(features[i]), 1)[noisy[i]]).ToList();

                // Retrain: all noisy labels, flagged images removed, and the clean labels (the ceiling), same chosen levers.
                var chosen = new FixedCombination("chosen", c.FeatureLayout, c.Augmentation, c.TestTimeAugmentation, c.Head);
                var noisySet = set with { LabelOf = k => { var at = Array.IndexOf(train, k); return at >= 0 ? noisy[at] : set.LabelOf(k); } };
                var kept = train.Where((_, i) => !flaggedIdx.Contains(i)).ToArray();

                // Cleanlab's default cleaning (prune by noise rate), for comparison: as many per (given, likely) class pair as the calibrated confident joint estimates.
                var pruned = PruneByNoiseRate(probabilities, noisy, set.Classes.Count);
                var keptPruned = train.Where((_, i) => !pruned.Contains(i)).ToArray();
                double Accuracy(int[] trainPart, EvidenceSet labelsFrom) =>
                    AutoLevers.Evaluate(labelsFrom, n, draw, trainPart, test, trainPart.Select(labelsFrom.LabelOf).ToList(), testLabels, chosen, options).MacroAccuracy;
                var row = new NoiseRow(
                    set.Name, name, draw, train.Length, flipped.Count, flaggedIdx.Count,
                    flaggedIdx.Count > 0 ? (double)hits / flaggedIdx.Count : 0, flipped.Count > 0 ? (double)hits / flipped.Count : 0,
                    top, PrecisionAt(clRanking), PrecisionAt(shuffled), PrecisionAt(lossRanking),
                    Accuracy(train, noisySet), Accuracy(kept, noisySet), Accuracy(train, set), seconds,
                    pruned.Count, pruned.Count > 0 ? (double)pruned.Count(flipped.Contains) / pruned.Count : 0, Accuracy(keptPruned, noisySet));
                rows.Add(row);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{set.Name} {name} #{draw}: {flipped.Count} flipped, {flaggedIdx.Count} flagged (precision {row.PrecisionFlagged:F2}, recall {row.RecallFlagged:F2}); precision@{top} CL {row.PrecisionTopN:F2} / random {row.RandomPrecisionTopN:F2} / training loss {row.LossPrecisionTopN:F2}; accuracy noisy {row.AccuracyNoisy:F3} -> cleaned {row.AccuracyCleaned:F3} (clean {row.AccuracyClean:F3}); pruned by noise rate {row.Pruned} (precision {row.PrecisionPruned:F2}) -> {row.AccuracyPruned:F3}; {seconds:F1} s"));
            }
        }

        return rows;
    }

    /// <summary>
    /// Northcutt et al.'s "prune by noise rate" (cleanlab's default filter): the confident joint calibrated to the label
    /// counts estimates, per given class i and likely class j, how many images labelled i belong to j; that many images
    /// labelled i with the largest margin p_j - p_i are pruned (keeping at least one image per class).
    /// </summary>
    public static HashSet<int> PruneByNoiseRate(IReadOnlyList<double[]?> probabilities, IReadOnlyList<int> labels, int k)
    {
        var destinations = DataInspector.ConfidentClasses(probabilities, labels, k);
        var counts = new int[k];
        var joint = new double[k, k];
        for (var n = 0; n < labels.Count; n++)
        {
            if (probabilities[n] is not null)
            {
                counts[labels[n]]++;
            }

            if (destinations[n] >= 0)
            {
                joint[labels[n], destinations[n]]++;
            }
        }

        var pruned = new HashSet<int>();
        for (var i = 0; i < k; i++)
        {
            double row = 0;
            for (var j = 0; j < k; j++)
            {
                row += joint[i, j];
            }

            if (row == 0)
            {
                continue;
            }

            var members = Enumerable.Range(0, labels.Count).Where(n => labels[n] == i && probabilities[n] is not null).ToArray();
            var budget = members.Length - 1;
            for (var j = 0; j < k; j++)
            {
                if (j == i)
                {
                    continue;
                }

                var count = (int)Math.Round(joint[i, j] / row * counts[i]);
                foreach (var n in members.OrderByDescending(n => probabilities[n]![j] - probabilities[n]![i]).Take(Math.Min(count, budget)))
                {
                    pruned.Add(n);
                }
            }
        }

        return pruned;
    }

    public static void Write(List<NoiseRow> rows, string outDir, string machine)
    {
        var csv = new StringBuilder("dataset,scenario,draw,images,flipped,flagged,precisionFlagged,recallFlagged,topN,precisionTopN,randomPrecisionTopN,lossPrecisionTopN,accuracyNoisy,accuracyCleaned,accuracyClean,seconds,pruned,precisionPruned,accuracyPruned\n");
        foreach (var r in rows)
        {
            csv.AppendLine(CultureInfo.InvariantCulture, $"{r.Dataset},{r.Scenario},{r.Draw},{r.Images},{r.Flipped},{r.Flagged},{r.PrecisionFlagged:F4},{r.RecallFlagged:F4},{r.TopN},{r.PrecisionTopN:F4},{r.RandomPrecisionTopN:F4},{r.LossPrecisionTopN:F4},{r.AccuracyNoisy:F4},{r.AccuracyCleaned:F4},{r.AccuracyClean:F4},{r.Seconds:F2},{r.Pruned},{r.PrecisionPruned:F4},{r.AccuracyPruned:F4}");
        }

        File.WriteAllText(Path.Combine(outDir, "label-noise.csv"), csv.ToString());
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# Finding injected label errors ({DateTime.UtcNow:yyyy-MM-dd}, {machine})");
        md.AppendLine();
        md.AppendLine("`bench/PretrainedKit.Experiments -- --label-noise`. Means over draws. Precision@N: share of injected errors among the N highest-ranked images (N = 100 on Fashion-MNIST; on the colour sets N = the number flipped, so 1.0 means every flip ranked first). Accuracy: macro accuracy on the held-out images (Fashion-MNIST: the official 10k test) of the head trained with the chosen levers. Pruned by noise rate: cleanlab's default cleaning rule on the same out-of-fold probabilities, for comparison (not what the library flags).");
        md.AppendLine();
        md.AppendLine("| Dataset | Noise | Draws | Images | Flipped | Flagged | Precision of flagged | Recall of flagged | N | Precision@N: inspection | random | training loss | Accuracy: noisy | flagged removed | clean labels | Pruned by noise rate | its precision | accuracy, pruned removed | Seconds |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var g in rows.GroupBy(r => (r.Dataset, r.Scenario)))
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {g.Key.Dataset} | {g.Key.Scenario} | {g.Count()} | {g.Average(r => r.Images):F0} | {g.Average(r => r.Flipped):F1} | {g.Average(r => r.Flagged):F1} | {g.Average(r => r.PrecisionFlagged):F3} | {g.Average(r => r.RecallFlagged):F3} | {g.First().TopN} | **{g.Average(r => r.PrecisionTopN):F3}** | {g.Average(r => r.RandomPrecisionTopN):F3} | {g.Average(r => r.LossPrecisionTopN):F3} | {g.Average(r => r.AccuracyNoisy):F3} | {g.Average(r => r.AccuracyCleaned):F3} | {g.Average(r => r.AccuracyClean):F3} | {g.Average(r => r.Pruned):F1} | {g.Average(r => r.PrecisionPruned):F3} | {g.Average(r => r.AccuracyPruned):F3} | {g.Average(r => r.Seconds):F1} |");
        }

        File.WriteAllText(Path.Combine(outDir, "label-noise.md"), md.ToString());
        Plot(rows, Path.Combine(outDir, "label-noise.png"));
        Console.WriteLine(md.ToString());
    }

    /// <summary>Reads the rows back from label-noise.csv (to redraw the plot without rerunning).</summary>
    public static List<NoiseRow> ReadCsv(string path) =>
    [
        .. File.ReadLines(path).Skip(1).Select(line => line.Split(',')).Select(f => new NoiseRow(
            f[0], f[1], int.Parse(f[2], CultureInfo.InvariantCulture), int.Parse(f[3], CultureInfo.InvariantCulture), int.Parse(f[4], CultureInfo.InvariantCulture), int.Parse(f[5], CultureInfo.InvariantCulture),
            D(f[6]), D(f[7]), int.Parse(f[8], CultureInfo.InvariantCulture), D(f[9]), D(f[10]), D(f[11]), D(f[12]), D(f[13]), D(f[14]), D(f[15]), f.Length > 16 ? int.Parse(f[16], CultureInfo.InvariantCulture) : 0, f.Length > 17 ? D(f[17]) : 0, f.Length > 18 ? D(f[18]) : 0)),
    ];

    private static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    /// <summary>Precision@N per data set and noise: inspection, training loss and random, as bars (mean over draws, with the range).</summary>
    public static void Plot(List<NoiseRow> rows, string path)
    {
        var groups = rows.GroupBy(r => (r.Dataset, r.Scenario)).ToList();
        const int width = 1100, height = 520, left = 60, right = 260, top = 40, bottom = 110;
        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        float Y(double v) => (float)(top + ((1 - v) * (height - top - bottom)));
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1.5f, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var grid = new SKPaint { Color = new SKColor(0xdd, 0xdd, 0xdd), StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var font = new SKFont(SKTypeface.Default, 13);
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        for (var v = 0.0; v <= 1.0001; v += 0.2)
        {
            canvas.DrawLine(left, Y(v), width - right, Y(v), grid);
            canvas.DrawText(v.ToString("F1", CultureInfo.InvariantCulture), 22, Y(v) + 4, font, text);
        }

        canvas.DrawText("precision among the top N", left, top - 15, font, text);
        canvas.DrawLine(left, top, left, height - bottom, axis);
        canvas.DrawLine(left, height - bottom, width - right, height - bottom, axis);
        (string Name, Func<NoiseRow, double> Of, SKColor Colour)[] series =
        [
            ("inspection (confident learning)", r => r.PrecisionTopN, new SKColor(0x2c, 0xa0, 0x2c)),
            ("training loss (top losses)", r => r.LossPrecisionTopN, new SKColor(0x1f, 0x77, 0xb4)),
            ("random", r => r.RandomPrecisionTopN, new SKColor(0x7f, 0x7f, 0x7f)),
        ];
        var slot = (float)(width - left - right) / groups.Count;
        var bar = slot / (series.Length + 1);
        for (var g = 0; g < groups.Count; g++)
        {
            var x0 = left + (g * slot) + (bar / 2);
            for (var s = 0; s < series.Length; s++)
            {
                var values = groups[g].Select(series[s].Of).ToArray();
                using var fill = new SKPaint { Color = series[s].Colour, IsAntialias = true };
                var x = x0 + (s * bar);
                canvas.DrawRect(x, Y(values.Average()), bar - 2, Y(0) - Y(values.Average()), fill);
                canvas.DrawLine(x + (bar / 2) - 1, Y(values.Min()), x + (bar / 2) - 1, Y(values.Max()), axis);
            }

            canvas.DrawText(groups[g].Key.Dataset, x0, height - bottom + 20, font, text);
            canvas.DrawText(groups[g].Key.Scenario, x0, height - bottom + 38, font, text);
        }

        for (var s = 0; s < series.Length; s++)
        {
            using var fill = new SKPaint { Color = series[s].Colour, IsAntialias = true };
            canvas.DrawRect(width - right + 15, top + 10 + (s * 22), 14, 14, fill);
            canvas.DrawText(series[s].Name, width - right + 35, top + 22 + (s * 22), font, text);
        }

        canvas.DrawText("Bars: mean over draws; lines: lowest to highest draw. N = 100 on Fashion-MNIST (2,000 images), the number flipped on the colour sets.", left, height - 30, font, text);
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, png.ToArray());
    }
}
