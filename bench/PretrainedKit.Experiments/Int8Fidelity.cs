using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Backbones;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;
using PretrainedKit.Onnx;

namespace PretrainedKit.Experiments;

/// <summary>
/// Issue #18 item 2, follow-up: how close int8 features are to float ones under other calibration choices, measured on
/// images that no accuracy figure uses (Fashion-MNIST training images outside every draw; openclipart topics outside
/// clipart-5 and clipart-6), so that the choice made here cannot have been tuned on a test part. Each variant's int8 graph
/// is built from the same calibration pass (one pass gathers histograms, every variant's ranges come from it); the figures
/// are the cosine between int8 and float features per image (pooled and multi-stage grid: mean, 1st percentile, min).
/// Variants that keep layers in float also get their raw session speed measured side by side with float and the plain int8.
/// </summary>
internal static class Int8Fidelity
{
    /// <summary>The openclipart topics of the probe: none is (or is inside) a topic of clipart-5, clipart-6 or the older clip-art set.</summary>
    public static readonly (string Topic, int Cap)[] ProbeTopics = [("people", 120), ("tools", 80), ("office", 80), ("recreation/sports", 60), ("food/beverages", 44), ("geography", 80), ("computer/hardware", 56)];

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>One variant: its name, the percentile its ranges are clipped at, and which calibrated values stay float.</summary>
    public sealed record Variant(string Name, double Percentile, string FloatPart);

    public sealed record ProbeSet(string Name, string Description, IReadOnlyList<string> CalibrationPaths, Dictionary<int, string> ProbePaths);

    public sealed record Row(string Set, string Variant, int Images, double PooledMean, double PooledP1, double PooledMin, double GridMean, double GridP1, double GridMin, string Digest);

    public sealed record Speed(string Graph, double ImagesPerSecond);

    public static readonly Variant[] Variants =
    [
        new("min/max (format 4's calibration)", 100, "none"),
        new("percentile 99.999", 99.999, "none"),
        new("percentile 99.99", 99.99, "none"),
        new("percentile 99.9", 99.9, "none"),
        new("min/max, first conv float", 100, "first"),
        new("percentile 99.99, first conv float", 99.99, "first"),
        new("min/max, last stage float", 100, "last"),
    ];

    public static void Run(IReadOnlyList<ProbeSet> sets, string work, string outDir, string machine)
    {
        var runtime = BackboneRuntime.Open(KnownBackbones.ResNet18, FeatureLayout.Pooled, null);
        var prepared = Int8Backbone.Prepare(runtime.ModelPath);
        var calibrated = QdqQuantizer.CalibratedValues(prepared);
        Console.WriteLine($"Calibrated values ({calibrated.Count}): {string.Join(", ", calibrated)}");
        var rows = new List<Row>();
        var graphs = new Dictionary<string, PretrainedKit.Onnx.Proto.ModelProto>();
        foreach (var set in sets)
        {
            var sw = Stopwatch.StartNew();
            var statistics = Int8Calibrator.Measure(runtime, ImagePreprocessingOptions.Default, set.CalibrationPaths);
            Console.WriteLine($"{set.Name}: calibration pass over {statistics.ImageCount} images in {sw.Elapsed.TotalSeconds:F0} s");
            var folder = Path.Combine(work, set.Name);
            using var floatFeaturizer = new BothFeaturizer(null, "features-float.bin", [ImageView.Original]);
            var floats = floatFeaturizer.Featurize(folder, set.ProbePaths);
            foreach (var variant in Variants)
            {
                var calibration = Int8Calibration.FromStatistics(statistics, variant.Percentile);
                var graph = QdqQuantizer.Quantize(prepared, calibration.ToDictionary(), calibration.Types, FloatValues(variant.FloatPart, calibrated));
                graphs.TryAdd(variant.Name, graph);
                using var featurizer = new BothFeaturizer(graph, $"features-{calibration.Digest}-float-{variant.FloatPart}.bin", [ImageView.Original]);
                var int8 = featurizer.Featurize(folder, set.ProbePaths);
                var keys = set.ProbePaths.Keys.Order().ToArray();
                var pooled = keys.Select(k => (double)Cosine(floats[k].Pooled[0], int8[k].Pooled[0])).Order().ToArray();
                var grid = keys.Select(k => (double)Cosine(floats[k].Grid[0], int8[k].Grid[0])).Order().ToArray();
                var row = new Row(set.Name, variant.Name, keys.Length, pooled.Average(), Percentile1(pooled), pooled[0], grid.Average(), Percentile1(grid), grid[0], calibration.Digest);
                rows.Add(row);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{set.Name} | {variant.Name}: pooled mean {row.PooledMean:F4} p1 {row.PooledP1:F4} min {row.PooledMin:F4}; grid mean {row.GridMean:F4} p1 {row.GridP1:F4} min {row.GridMin:F4}"));
            }
        }

        var speeds = MeasureSpeed(runtime, graphs);
        Write(sets, rows, speeds, outDir, machine);
    }

    /// <summary>The calibrated values a variant leaves in float: none; the graph input (so the first convolution runs in float); or every value from the third stage's output on (so the last stage's convolutions run in float).</summary>
    public static HashSet<string>? FloatValues(string part, IReadOnlyList<string> calibrated) => part switch
    {
        "none" => null,
        "first" => [KnownBackbones.ResNet18.InputName],
        "last" => [.. calibrated.Skip(calibrated.ToList().IndexOf(KnownBackbones.ResNet18.Stages[^2].OutputName))],
        _ => throw new ArgumentOutOfRangeException(nameof(part)),
    };

    /// <summary>Raw session speed (batch 8, all cores, the backbone's pooled output only), rounds interleaved so that the shared machine's load falls on every graph alike.</summary>
    private static List<Speed> MeasureSpeed(BackboneRuntime runtime, Dictionary<string, PretrainedKit.Onnx.Proto.ModelProto> graphs)
    {
        var backbone = KnownBackbones.ResNet18;
        var chosen = new List<(string Name, PretrainedKit.Onnx.Proto.ModelProto Graph)> { ("float32", OnnxModelEditor.Read(runtime.ModelPath)) };
        chosen.AddRange(graphs.Where(g => g.Key == Variants[0].Name || Variants.Any(v => v.Name == g.Key && v.FloatPart != "none")).Select(g => (g.Key, g.Value)));
        const int batch = 8;
        var tensor = new float[batch * runtime.TensorLength];
        var random = new Random(7);
        for (var i = 0; i < tensor.Length; i++)
        {
            tensor[i] = (float)((random.NextDouble() * 4) - 2);
        }

        var sessions = chosen.Select(c =>
        {
            var options = new SessionOptions { IntraOpNumThreads = Environment.ProcessorCount, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            return (c.Name, Session: new InferenceSession(OnnxModelEditor.ToBytes(OnnxModelEditor.MakeBatchDynamic(c.Graph)), options), Options: options);
        }).ToList();
        var seconds = sessions.ToDictionary(s => s.Name, _ => new List<double>());
        using var input = OrtValue.CreateTensorValueFromMemory(tensor, [batch, 3, 224, 224]);
        using var runOptions = new RunOptions();
        for (var round = 0; round < 6; round++)
        {
            foreach (var (name, session, _) in sessions)
            {
                var sw = Stopwatch.StartNew();
                for (var r = 0; r < 4; r++)
                {
                    using var outputs = session.Run(runOptions, [backbone.InputName], [input], [backbone.OutputName]);
                }

                if (round > 0)
                {
                    seconds[name].Add(sw.Elapsed.TotalSeconds / (4 * batch));
                }
            }
        }

        foreach (var s in sessions)
        {
            s.Session.Dispose();
            s.Options.Dispose();
        }

        var speeds = seconds.Select(s => new Speed(s.Key, 1 / s.Value.Order().ElementAt(s.Value.Count / 2))).ToList();
        foreach (var speed in speeds)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"speed {speed.Graph}: {speed.ImagesPerSecond:F1} images/s"));
        }

        return speeds;
    }

    private static void Write(IReadOnlyList<ProbeSet> sets, List<Row> rows, List<Speed> speeds, string outDir, string machine)
    {
        var floatSpeed = speeds.First(s => s.Graph == "float32").ImagesPerSecond;
        var md = new List<string>
        {
            "# Int8 backbone: feature fidelity of calibration variants (issue #18 item 2)",
            string.Empty,
            $"Machine: {machine}. Generated by `dotnet run -c Release --project bench/PretrainedKit.Experiments -- --int8-fidelity --machine TEXT` on {DateTime.UtcNow:yyyy-MM-dd}.",
            "Cosine between the int8 and the float features of each probe image (1 = identical); p1 = 1st percentile over the images. The probe images are used by no accuracy figure, so the variant chosen here was not chosen on a test part. Every variant's ranges come from the same calibration pass (exact min/max and a 2,048-bin histogram per sign of each activation); percentile p keeps (100 - p) / 2 % of the values outside the range on each side, as ONNX Runtime's percentile calibration does.",
            string.Empty,
        };
        foreach (var set in sets)
        {
            md.Add($"- **{set.Name}**: {set.Description}");
        }

        md.Add(string.Empty);
        md.Add("| Probe set | Variant | Images | Pooled mean | Pooled p1 | Pooled min | Grid mean | Grid p1 | Grid min |");
        md.Add("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in rows)
        {
            md.Add(string.Create(CultureInfo.InvariantCulture, $"| {r.Set} | {r.Variant} | {r.Images} | {r.PooledMean:F4} | {r.PooledP1:F4} | {r.PooledMin:F4} | {r.GridMean:F4} | {r.GridP1:F4} | {r.GridMin:F4} |"));
        }

        md.Add(string.Empty);
        md.Add("Raw session speed, measured side by side in the same run (batch 8, all cores, random input, median of 5 interleaved rounds of 4 runs; the machine is shared, so only the ratios within this table mean anything):");
        md.Add(string.Empty);
        md.Add("| Graph | Images/s | Ratio to float32 |");
        md.Add("| --- | ---: | ---: |");
        foreach (var s in speeds)
        {
            md.Add(string.Create(CultureInfo.InvariantCulture, $"| {s.Graph} | {s.ImagesPerSecond:F1} | {s.ImagesPerSecond / floatSpeed:F2}x |"));
        }

        File.WriteAllLines(Path.Combine(outDir, "int8-fidelity.md"), md);
        File.WriteAllText(
            Path.Combine(outDir, "int8-fidelity.json"),
            JsonSerializer.Serialize(new { date = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), machine, sets = sets.Select(s => new { s.Name, s.Description, calibrationImages = s.CalibrationPaths.Count, probeImages = s.ProbePaths.Count }), rows, speeds }, Indented));
        Console.WriteLine(string.Join(Environment.NewLine, md));
    }

    private static double Percentile1(double[] sorted) => sorted[(int)Math.Floor(0.01 * (sorted.Length - 1))];

    private static float Cosine(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(a, b);
}
