using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using PretrainedKit.ActiveLearning;
using PretrainedKit.Backbones;
using PretrainedKit.Data;
using PretrainedKit.Imaging;
using PretrainedKit.Models;
using PretrainedKit.Search;
using PretrainedKit.Training;
using SkiaSharp;

namespace PretrainedKit.Experiments;

/// <summary>One active-learning result row: a strategy's test accuracy after a round.</summary>
internal sealed record ActiveRow(string Dataset, string Strategy, int Seed, int Round, int Labels, double Accuracy, double MacroAccuracy, double Seconds);

/// <summary>One active-learning task: the keys of the start set, the unlabelled pool and the test images.</summary>
internal sealed record ActiveTask(string Dataset, int Seed, int[] Start, int[] Pool, int[] Test);

/// <summary>
/// Issue #16's evidence: which images to label next. From a small labelled start, rounds of labels chosen by the
/// library's ranking (<see cref="LabelingRanker.Rank"/> with its defaults: margin uncertainty, diversity on, the labelled
/// images as references), at random, and by uncertainty alone (margin, no diversity, no references); after each round the
/// head is trained as the library trains it (the default linear head on pooled features, <see cref="HeadTrainer"/>, 20%
/// of each class held out to fit the temperature with <see cref="Calibration.FitTemperature"/>) and measured on held-out
/// images. Nothing here was tuned: the ranking's settings are the library's defaults, fixed before this ran.
/// </summary>
internal static class ActiveLearningExperiment
{
    public const string Suggest = "suggest";
    public const string Random = "random";
    public const string Uncertainty = "uncertainty only";
    public const string Typical = "suggest + typicality";
    public const string Badge = "badge";
    public static string[] Strategies { get; set; } = [Suggest, Random, Uncertainty];

    /// <summary>
    /// When set, every round trains the model as the library's default does today (automatic lever choice on the
    /// multi-stage grid features of both views, then the chosen head), and the ranking reads that model's probabilities
    /// (over its prediction views) and embeddings; otherwise the old default (pooled features, linear head) as in the
    /// first runs.
    /// </summary>
    public static Func<int, Features>? AutoFeatures { get; set; }

    public static List<ActiveRow> Run(ActiveTask task, IReadOnlyList<string> classes, Func<int, float[]> pooled, Func<int, int> labelOf, int rounds, int batch) =>
        AutoFeatures is { } features
            ? Run(task, classes, labelled => TrainAuto(labelled, classes, features, labelOf, task.Seed), labelOf, rounds, batch, " (auto)")
            : Run(task, classes, labelled => TrainPooled(labelled, classes, pooled, labelOf, task.Seed), labelOf, rounds, batch, string.Empty);

    /// <summary>One round's model as the measurement and the ranking read it: logits, calibrated probabilities and the embedded features of an image.</summary>
    private sealed record RoundModel(ModelDefinition Definition, Func<int, double[]> Logits, Func<int, float[]> Probabilities, Func<int, float[]> Embedding);

    private static List<ActiveRow> Run(ActiveTask task, IReadOnlyList<string> classes, Func<List<int>, RoundModel> train, Func<int, int> labelOf, int rounds, int batch, string note)
    {
        var rows = new List<ActiveRow>();
        foreach (var strategy in Strategies)
        {
            var labelled = task.Start.ToList();
            var pool = task.Pool.ToHashSet();
            var random = new Random(16_000 + task.Seed);
            for (var round = 0; ; round++)
            {
                var sw = Stopwatch.StartNew();
                var model = train(labelled);
                var predicted = new int[task.Test.Length];
                Parallel.For(0, task.Test.Length, i =>
                {
                    var logits = model.Logits(task.Test[i]);
                    predicted[i] = Array.IndexOf(logits, logits.Max());
                });
                var (accuracy, macro) = Score(predicted, task.Test.Select(labelOf).ToArray(), classes.Count);
                rows.Add(new ActiveRow(task.Dataset, strategy, task.Seed, round, labelled.Count, accuracy, macro, sw.Elapsed.TotalSeconds));
                if (round == rounds)
                {
                    break;
                }

                var candidates = pool.Order().ToArray();
                List<int> chosen;
                if (strategy == Badge)
                {
                    var probabilities = new float[candidates.Length][];
                    Parallel.For(0, candidates.Length, i => probabilities[i] = model.Probabilities(candidates[i]));
                    var picks = GradientKMeansPlusPlus(probabilities, candidates.Select(model.Embedding).ToList(), batch, 17_000 + task.Seed + round);
                    chosen = picks.Select(i => candidates[i]).ToList();
                }
                else if (strategy == Random)
                {
                    random.Shuffle(candidates);
                    chosen = candidates.Take(batch).ToList();
                }
                else
                {
                    // As model.SuggestLabelsAsync: probabilities over the model's prediction views, embeddings of the original view.
                    // Variants of the library's ranking are named "suggest" plus settings, e.g. "suggest cf=3 entropy".
                    var diverse = strategy.StartsWith(Suggest, StringComparison.Ordinal);
                    var options = LabelingSuggestionOptions.Default with { Top = batch, Diversity = diverse, Typicality = strategy == Typical };
                    foreach (var setting in diverse ? strategy.Split(' ').Skip(1) : [])
                    {
                        options = setting.StartsWith("cf=", StringComparison.Ordinal) ? options with { CandidateFactor = int.Parse(setting[3..], CultureInfo.InvariantCulture) }
                            : setting == "entropy" ? options with { Uncertainty = UncertaintyMeasure.Entropy }
                            : setting == "+" || setting == "typicality" ? options
                            : throw new ArgumentException($"unknown strategy setting '{setting}' in '{strategy}'");
                    }

                    var references = diverse ? labelled.Select(model.Embedding).ToList() : [];
                    var probabilities = new float[candidates.Length][];
                    Parallel.For(0, candidates.Length, i => probabilities[i] = model.Probabilities(candidates[i]));
                    var (suggestions, _, _) = LabelingRanker.Rank(
                        candidates.Select(k => k.ToString(CultureInfo.InvariantCulture)).ToList(),
                        probabilities,
                        candidates.Select(model.Embedding).ToList(),
                        references,
                        classes,
                        options);
                    chosen = suggestions.Select(s => int.Parse(s.Path, CultureInfo.InvariantCulture)).ToList();
                }

                labelled.AddRange(chosen);
                pool.ExceptWith(chosen);
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{task.Dataset} seed {task.Seed} {strategy}{note}: {string.Join(" -> ", rows.Where(r => r.Strategy == strategy).Select(r => $"{r.Labels}:{r.Accuracy:F3}"))}"));
        }

        return rows;
    }

    /// <summary>
    /// Tried as a ranking variant and not adopted (bench/results/active-learning-variants.md): BADGE (Ash et al., ICLR 2020): k-means++ seeding over the gradient embeddings of the final layer,
    /// g_i = (p_i - e_{best class}) (x) x_i, whose inner products are &lt;r_i, r_j&gt; &lt;x_i, x_j&gt; with r = p - e.
    /// The first pick has the largest gradient; each next is drawn with probability proportional to its squared distance
    /// to the nearest pick (seeded, so the same input gives the same picks).
    /// </summary>
    /// <param name="probabilities">Each image's calibrated probabilities.</param>
    /// <param name="embeddings">Each image's embedding (length 1).</param>
    /// <param name="top">How many to pick.</param>
    /// <param name="seed">The seed of the draws.</param>
    /// <returns>The picks, in order.</returns>
    private static List<int> GradientKMeansPlusPlus(float[][] probabilities, List<float[]> embeddings, int top, int seed)
    {
        var n = probabilities.Length;
        var r = probabilities.Select(p =>
        {
            var best = Array.IndexOf(p, p.Max());
            var v = p.Select(x => (double)x).ToArray();
            v[best] -= 1;
            return v;
        }).ToArray();
        var norm2 = r.Select((v, a) => v.Sum(x => x * x) * TensorPrimitives.Dot(embeddings[a], embeddings[a])).ToArray();
        var d2 = new double[n];
        Array.Fill(d2, double.PositiveInfinity);
        var taken = new bool[n];
        var picks = new List<int>();
        var random = new Random(seed);
        for (var k = 0; k < Math.Min(top, n); k++)
        {
            int pick;
            if (k == 0)
            {
                pick = Enumerable.Range(0, n).MaxBy(a => norm2[a]);
            }
            else
            {
                var total = Enumerable.Range(0, n).Where(a => !taken[a]).Sum(a => d2[a]);
                pick = -1;
                if (total > 0)
                {
                    var u = random.NextDouble() * total;
                    for (var a = 0; a < n; a++)
                    {
                        if (!taken[a])
                        {
                            u -= d2[a];
                            pick = a;
                            if (u <= 0)
                            {
                                break;
                            }
                        }
                    }
                }

                if (pick < 0)
                {
                    pick = Enumerable.Range(0, n).First(a => !taken[a]);
                }
            }

            taken[pick] = true;
            picks.Add(pick);
            var xp = embeddings[pick];
            var rp = r[pick];
            Parallel.For(0, n, a =>
            {
                if (!taken[a])
                {
                    double rr = 0;
                    for (var c = 0; c < rp.Length; c++)
                    {
                        rr += r[a][c] * rp[c];
                    }

                    var dist = norm2[a] + norm2[pick] - (2 * rr * TensorPrimitives.Dot(embeddings[a], xp));
                    d2[a] = Math.Min(d2[a], Math.Max(0, dist));
                }
            });
        }

        return picks;
    }

    /// <summary>
    /// The library's default training (as TrainingRun does it): a stratified 80/20 split, automatic lever choice on the
    /// training part's grid features (both views), the chosen head on the training part, the temperature on the rest.
    /// </summary>
    private static RoundModel TrainAuto(List<int> labelled, IReadOnlyList<string> classes, Func<int, Features> features, Func<int, int> labelOf, int seed)
    {
        var labels = labelled.Select(labelOf).ToList();
        var options = ImageClassifierOptions.Default with { Seed = seed, InspectData = false };
        var (trainPart, validation) = StratifiedSplit.Split(labels, classes.Count, ImageClassifierOptions.DefaultValidationFraction, seed);
        var stages = KnownBackbones.ResNet18.Stages;
        var space = LeverSearch.SpaceFor(options, backboneHasStages: true);
        var report = LeverSearch.Run(trainPart.Select(i => features(labelled[i]).Grid).ToList(), trainPart.Select(i => labels[i]).ToList(), classes.Count, space, stages, options.ClassWeighting, seed, null, CancellationToken.None);
        var c = report.Chosen;
        var chosen = c is null
            ? options with { FeatureLayout = FeatureLayout.MultiStage, Auto = false }
            : options with { FeatureLayout = c.FeatureLayout, Normalization = c.Normalization, Augmentation = c.Augmentation, TestTimeAugmentation = c.TestTimeAugmentation, Head = c.Head, Auto = false };
        var length = MultiStagePooling.FeatureSize(stages, chosen.FeatureLayout);
        float[][] ViewsOf(int k, bool both)
        {
            var f = features(k);
            return both ? [f.Grid[0][..length], f.Grid[1][..length]] : [f.Grid[0][..length]];
        }

        var fit = HeadTrainer.Train(trainPart.Select(i => ViewsOf(labelled[i], chosen.Augmentation == TrainingAugmentation.Mirror)).ToList(), trainPart.Select(i => labels[i]).ToList(), classes.Count, chosen, CancellationToken.None);
        var mirror = chosen.TestTimeAugmentation == TestTimeAugmentation.Mirror;
        var definition = Define(classes, chosen.FeatureLayout, chosen.TestTimeAugmentation, fit.Head, validation.Select(i => ViewsOf(labelled[i], mirror)).ToList(), validation.Select(i => labels[i]).ToList());
        return new RoundModel(definition, k => definition.Head.Logits(ViewsOf(k, mirror)), k => definition.Probabilities(ViewsOf(k, mirror)), k => ImageEmbedder.Embedding(ViewsOf(k, false)[0], definition.Head.Scaling));
    }

    /// <summary>The old default training: a stratified 80/20 split, the default linear head on pooled features of 80%, the temperature on 20%.</summary>
    private static RoundModel TrainPooled(List<int> labelled, IReadOnlyList<string> classes, Func<int, float[]> pooled, Func<int, int> labelOf, int seed)
    {
        var labels = labelled.Select(labelOf).ToList();
        var options = ImageClassifierOptions.Default with { Seed = seed, Auto = false, InspectData = false };
        var (trainPart, validation) = StratifiedSplit.Split(labels, classes.Count, ImageClassifierOptions.DefaultValidationFraction, seed);
        var fit = HeadTrainer.Train(trainPart.Select(i => pooled(labelled[i])).ToList(), trainPart.Select(i => labels[i]).ToList(), classes.Count, options, CancellationToken.None);
        var definition = Define(classes, FeatureLayout.Pooled, TestTimeAugmentation.None, fit.Head, validation.Select(i => new[] { pooled(labelled[i]) }).ToList(), validation.Select(i => labels[i]).ToList());
        return new RoundModel(definition, k => definition.Head.Logits(pooled(k)), k => definition.Probabilities([pooled(k)]), k => ImageEmbedder.Embedding(pooled(k), definition.Head.Scaling));
    }

    /// <summary>The model definition of a fitted head, its temperature fitted on the validation images' views (1 without any).</summary>
    private static ModelDefinition Define(IReadOnlyList<string> classes, FeatureLayout layout, TestTimeAugmentation testTime, HeadDefinition head, List<float[][]> validationViews, List<int> validationLabels) => new()
    {
        Backbone = KnownBackbones.ResNet18,
        WeightsSha256 = "experiment",
        FeatureLayout = layout,
        TestTimeAugmentation = testTime,
        Image = ImagePreprocessingOptions.Default,
        Classes = classes,
        Head = head,
        Temperature = validationViews.Count == 0 ? 1 : Calibration.FitTemperature(validationViews.Select(v => head.Logits(v)).ToList(), validationLabels),
    };

    internal static (double Accuracy, double Macro) Score(int[] predicted, int[] actual, int classCount)
    {
        var accuracy = (double)predicted.Where((p, i) => p == actual[i]).Count() / actual.Length;
        var macro = Enumerable.Range(0, classCount).Where(c => actual.Contains(c)).Average(c =>
        {
            var members = Enumerable.Range(0, actual.Length).Where(i => actual[i] == c).ToArray();
            return (double)members.Count(i => predicted[i] == c) / members.Length;
        });
        return (accuracy, macro);
    }

    public static void Write(List<ActiveRow> rows, string outDir, string machine, IReadOnlyDictionary<string, string> descriptions, string name)
    {
        var csv = new StringBuilder("dataset,strategy,seed,round,labels,accuracy,macroAccuracy,seconds\n");
        foreach (var r in rows)
        {
            csv.AppendLine(CultureInfo.InvariantCulture, $"{r.Dataset},{r.Strategy},{r.Seed},{r.Round},{r.Labels},{r.Accuracy:F4},{r.MacroAccuracy:F4},{r.Seconds:F2}");
        }

        File.WriteAllText(Path.Combine(outDir, name + ".csv"), csv.ToString());
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# Which images to label next: evidence ({DateTime.UtcNow:yyyy-MM-dd}, {machine})");
        md.AppendLine();
        md.AppendLine("`dotnet run -c Release --project bench/PretrainedKit.Experiments -- --active-learning` (arguments of this run: " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1)) + "). Accuracy on the held-out images (Fashion-MNIST: the official 10k test set; clip art: macro accuracy on the held-out 40% of each class) of the library's default head trained on the labelled images, mean over seeds; after each round of labels chosen by `suggest` (the library's ranking, defaults), at random, or by uncertainty alone.");
        md.AppendLine();
        foreach (var (set, description) in descriptions)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- **{set}**: {description}");
        }

        md.AppendLine();
        var present = Strategies.Where(st => rows.Any(r => r.Strategy == st)).ToArray();
        var others = present.Where(st => st != Random).ToArray();
        md.AppendLine("| Dataset | Labels | Seeds | " + string.Join(" | ", present) + " | " + string.Join(" | ", others.Select(o => $"{o} - random (min / max over seeds)")) + " |");
        md.AppendLine("|---|---|---|" + string.Concat(present.Concat(others).Select(_ => "---|")));
        foreach (var group in rows.GroupBy(r => (r.Dataset, r.Round)))
        {
            double Mean(string st) => group.Where(r => r.Strategy == st).Average(r => Metric(r));
            string Gap(string st)
            {
                var diffs = group.Where(r => r.Strategy == st).Select(r => Metric(r) - Metric(group.Single(x => x.Strategy == Random && x.Seed == r.Seed))).ToArray();
                return string.Create(CultureInfo.InvariantCulture, $"**{(Mean(st) - Mean(Random)) * 100:+0.00;-0.00} pt** ({diffs.Min() * 100:+0.0;-0.0;+0.0} / {diffs.Max() * 100:+0.0;-0.0;+0.0})");
            }

            var labels = group.Select(r => r.Labels).Distinct().Single();
            var seeds = group.Select(r => r.Seed).Distinct().Count();
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {group.Key.Dataset} | {labels} | {seeds} | ") + string.Join(" | ", present.Select(st => Mean(st).ToString("F4", CultureInfo.InvariantCulture))) + " | " + string.Join(" | ", others.Select(Gap)) + " |");
        }

        File.WriteAllText(Path.Combine(outDir, name + ".md"), md.ToString());
        Plot(rows, Path.Combine(outDir, name + ".png"));
        Console.WriteLine($"Wrote {Path.Combine(outDir, name + ".csv")}, .md and .png");
    }

    /// <summary>Fashion-MNIST is balanced (accuracy); the clip-art sets are not (macro accuracy).</summary>
    private static double Metric(ActiveRow r) => r.Dataset.StartsWith("fashion", StringComparison.Ordinal) ? r.Accuracy : r.MacroAccuracy;

    private static void Plot(List<ActiveRow> rows, string path)
    {
        var datasets = rows.Select(r => r.Dataset).Distinct().ToList();
        const int panelWidth = 420, height = 400, left = 60, right = 20, top = 40, bottom = 80;
        using var surface = SKSurface.Create(new SKImageInfo(panelWidth * datasets.Count, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1.5f, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var grid = new SKPaint { Color = new SKColor(0xdd, 0xdd, 0xdd), StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var font = new SKFont(SKTypeface.Default, 13);
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        (string Strategy, SKColor Color)[] all = [(Suggest, new SKColor(0xd6, 0x27, 0x28)), (Random, new SKColor(0x1f, 0x77, 0xb4)), (Uncertainty, new SKColor(0x2c, 0xa0, 0x2c)), (Typical, new SKColor(0x94, 0x67, 0xbd))];
        var series = all.Where(x => rows.Any(r => r.Strategy == x.Strategy)).ToArray();
        for (var d = 0; d < datasets.Count; d++)
        {
            var ofSet = rows.Where(r => r.Dataset == datasets[d]).ToList();
            var x0 = (d * panelWidth) + left;
            var x1 = ((d + 1) * panelWidth) - right;
            var labels = ofSet.Select(r => r.Labels).Distinct().Order().ToArray();
            var means = ofSet.GroupBy(r => (r.Strategy, r.Round)).Select(g => g.Average(Metric)).ToArray();
            var yMin = Math.Floor(means.Min() * 50) / 50;
            var yMax = Math.Ceiling(means.Max() * 50) / 50;
            float X(double labelsCount) => x0 + ((x1 - x0) * (float)((labelsCount - labels[0]) / Math.Max(1, labels[^1] - labels[0])));
            float Y(double a) => top + ((height - top - bottom) * (float)((yMax - a) / Math.Max(1e-9, yMax - yMin)));
            for (var a = yMin; a <= yMax + 1e-9; a += 0.02)
            {
                canvas.DrawLine(x0, Y(a), x1, Y(a), grid);
                canvas.DrawText(a.ToString("F2", CultureInfo.InvariantCulture), x0 - 45, Y(a) + 5, font, text);
            }

            canvas.DrawLine(x0, top, x0, height - bottom, axis);
            canvas.DrawLine(x0, height - bottom, x1, height - bottom, axis);
            foreach (var n in labels)
            {
                canvas.DrawText(n.ToString(CultureInfo.InvariantCulture), X(n) - 10, height - bottom + 18, font, text);
            }

            canvas.DrawText($"{datasets[d]}: {(datasets[d].StartsWith("fashion", StringComparison.Ordinal) ? "accuracy" : "macro accuracy")} vs labels", x0, 22, font, text);
            canvas.DrawText("labelled images (mean over seeds)", x0 + 60, height - bottom + 38, font, text);
            var legendX = x0;
            foreach (var (strategy, color) in series)
            {
                using var line = new SKPaint { Color = color, StrokeWidth = 2.5f, IsAntialias = true, Style = SKPaintStyle.Stroke };
                using var dot = new SKPaint { Color = color, IsAntialias = true };
                SKPoint? previous = null;
                foreach (var g in ofSet.Where(r => r.Strategy == strategy).GroupBy(r => r.Round).OrderBy(g => g.Key))
                {
                    var point = new SKPoint(X(g.Average(r => r.Labels)), Y(g.Average(Metric)));
                    canvas.DrawCircle(point, 3.5f, dot);
                    if (previous is { } p)
                    {
                        canvas.DrawLine(p, point, line);
                    }

                    previous = point;
                }

                canvas.DrawLine(legendX, height - 18, legendX + 24, height - 18, line);
                canvas.DrawText(strategy, legendX + 28, height - 13, font, text);
                legendX += strategy.Length > 12 ? 170 : 100;
            }
        }

        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }
}
