using System.Globalization;
using System.Text.Json;
using PretrainedKit.Backbones;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;

namespace PretrainedKit.Experiments;

/// <summary>
/// Issue #18 item 2: what int8 costs in accuracy. For each data set the int8 backbone is calibrated as training does it
/// (<see cref="Int8Calibrator.Choose"/>: up to 300 training images spread over the classes, of draw 0), the same images
/// are featurised by the int8 graph, and the same head (the experiments' pooled and multi-stage linear heads) is fitted on
/// float and on int8 features of the same training images and tested on the same held-out images. Nothing here is
/// tuned: the int8 types (7-bit weights) were fixed from the AVX2 saturation finding before this ran, and the clip-art
/// sets decided nothing.
/// </summary>
internal static class Int8Accuracy
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public sealed record Row(string Dataset, int Draw, string Method, double Float32, double Int8);

    public static (List<Row> Rows, Dictionary<string, double> Cosines) Run(
        string name,
        IReadOnlyList<(int[] Train, int[] Test)> draws,
        Func<int, string> pathOf,
        Func<int, int> labelOf,
        Func<int, Features> floatOf,
        int classes,
        string work)
    {
        var runtime = BackboneRuntime.Open(KnownBackbones.ResNet18, FeatureLayout.Pooled, null);
        var byClass = Enumerable.Range(0, classes).Select(c => (IReadOnlyList<string>)[.. draws[0].Train.Where(k => labelOf(k) == c).Select(pathOf)]).ToList();
        var calibration = Int8Calibrator.Calibrate(runtime, ImagePreprocessingOptions.Default, Int8Calibrator.Choose(byClass));
        Console.WriteLine($"{name}: int8 calibrated on {calibration.ImageCount} training images ({calibration.Types}, percentile {calibration.Percentile:R}), digest {calibration.Digest}");
        using var int8 = new BothFeaturizer(Int8Backbone.Build(runtime.ModelPath, calibration), $"features-int8-{calibration.Digest}.bin", [ImageView.Original]);
        var keys = draws.SelectMany(d => d.Train.Concat(d.Test)).Distinct().Order().ToArray();
        var int8Features = int8.Featurize(Path.Combine(work, name), keys.ToDictionary(k => k, pathOf));
        Console.WriteLine($"{name}: int8 featurisation {int8.ColdImagesPerSecond:F1} images/s (batch 8, 0 = all from the store)");

        var rows = new List<Row>();
        for (var d = 0; d < draws.Count; d++)
        {
            var (train, test) = draws[d];
            var y = train.Select(labelOf).ToList();
            var testLabels = test.Select(labelOf).ToArray();
            var n = train.Length / classes;
            Dictionary<int, Features> TestOf(Func<int, Features> of) => test.Select((k, i) => (i, of(k))).ToDictionary(t => t.i, t => t.Item2);
            var floatPooled = Methods.OursPooled(n, d, [.. train.Select(k => floatOf(k).Pooled[0])], y, TestOf(floatOf), testLabels, classes);
            var int8Pooled = Methods.OursPooled(n, d, [.. train.Select(k => int8Features[k].Pooled[0])], y, TestOf(k => int8Features[k]), testLabels, classes);
            var floatMulti = Methods.OursMultiStage(n, d, [.. train.Select(k => floatOf(k).MultiStage(0))], y, TestOf(floatOf), testLabels, classes);
            var int8Multi = Methods.OursMultiStage(n, d, [.. train.Select(k => int8Features[k].MultiStage(0))], y, TestOf(k => int8Features[k]), testLabels, classes);
            rows.Add(new Row(name, d, "pooled, linear", floatPooled.Accuracy, int8Pooled.Accuracy));
            rows.Add(new Row(name, d, "multi-stage, linear", floatMulti.Accuracy, int8Multi.Accuracy));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name} draw {d}: pooled {floatPooled.Accuracy:F4} -> {int8Pooled.Accuracy:F4}, multi-stage {floatMulti.Accuracy:F4} -> {int8Multi.Accuracy:F4}"));
        }

        var pooledCosines = keys.Select(k => Cosine(floatOf(k).Pooled[0], int8Features[k].Pooled[0])).ToList();
        var gridCosines = keys.Select(k => Cosine(floatOf(k).Grid[0], int8Features[k].Grid[0])).ToList();
        var cosines = new Dictionary<string, double>
        {
            ["pooledMean"] = pooledCosines.Average(),
            ["pooledMin"] = pooledCosines.Min(),
            ["gridMean"] = gridCosines.Average(),
            ["gridMin"] = gridCosines.Min(),
            ["images"] = keys.Length,
            ["calibrationImages"] = calibration.ImageCount,
        };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: cosine int8 vs float over {keys.Length} images: pooled mean {cosines["pooledMean"]:F4} min {cosines["pooledMin"]:F4}; multi-stage grid mean {cosines["gridMean"]:F4} min {cosines["gridMin"]:F4}"));
        return (rows, cosines);
    }

    /// <summary>Writes bench/results/int8-accuracy.md and .json (the JSON's numbers also go into the headline benchmark's JSON).</summary>
    public static void Write(List<Row> rows, Dictionary<string, Dictionary<string, double>> cosines, string outDir, string machine)
    {
        var json = new Dictionary<string, double>();
        var md = new List<string>
        {
            "# Int8 backbone: accuracy against float (issue #18 item 2)",
            string.Empty,
            $"Machine: {machine}. Generated by `dotnet run -c Release --project bench/PretrainedKit.Experiments -- --int8 --draws 5 --sizes 200 --machine TEXT` on {DateTime.UtcNow:yyyy-MM-dd}.",
            string.Create(CultureInfo.InvariantCulture, $"Each data set: the int8 backbone calibrated as training calibrates it (up to 300 training images of draw 0, spread over the classes), the same head fitted on float and on int8 features of the same images, tested on the same held-out images. Fashion-MNIST: draw 0 only (200 training images per class, the official 10,000 test images); clip art: 5 seeded draws, 60 % of each class to train, the rest held out (one test image is about 1 point there). Int8 types: U8S7 (7-bit weights), fixed before this ran; activation ranges: the calibration's default (this run: clipped at percentile {Int8Calibration.DefaultPercentile:R}, chosen on the fidelity probe's images, bench/results/int8-fidelity.md, none of which is used here); the clip-art sets decided nothing."),
            string.Empty,
            "| Data set | Head | Draws | Float32 accuracy | Int8 accuracy | Int8 - float (points) |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        };
        foreach (var group in rows.GroupBy(r => (r.Dataset, r.Method)))
        {
            var f = group.Average(r => r.Float32);
            var q = group.Average(r => r.Int8);
            md.Add(string.Create(CultureInfo.InvariantCulture, $"| {group.Key.Dataset} | {group.Key.Method} | {group.Count()} | {f:P2} | {q:P2} | {(q - f) * 100:+0.00;-0.00} |"));
            var key = Key(group.Key.Dataset) + (group.Key.Method.StartsWith("pooled", StringComparison.Ordinal) ? "Pooled" : "MultiStage");
            json[$"{key}Float32Accuracy"] = Math.Round(f, 4);
            json[$"{key}Int8Accuracy"] = Math.Round(q, 4);
        }

        md.Add(string.Empty);
        md.Add("| Data set | Images | Pooled cosine mean | Pooled cosine min | Multi-stage grid cosine mean | Grid cosine min |");
        md.Add("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (name, c) in cosines)
        {
            md.Add(string.Create(CultureInfo.InvariantCulture, $"| {name} | {c["images"]} | {c["pooledMean"]:F4} | {c["pooledMin"]:F4} | {c["gridMean"]:F4} | {c["gridMin"]:F4} |"));
            json[$"{Key(name)}Int8CosineMean"] = Math.Round(c["pooledMean"], 4);
            json[$"{Key(name)}Int8CosineMin"] = Math.Round(c["pooledMin"], 4);
        }

        File.WriteAllLines(Path.Combine(outDir, "int8-accuracy.md"), md);
        File.WriteAllText(Path.Combine(outDir, "int8-accuracy.json"), JsonSerializer.Serialize(json, Indented));
        Console.WriteLine(string.Join(Environment.NewLine, md));
    }

    private static string Key(string dataset) => string.Concat(dataset.Split('-').Select((p, i) => i == 0 ? p : char.ToUpperInvariant(p[0]) + p[1..]));

    private static double Cosine(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(a, b);
}
