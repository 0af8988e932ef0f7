using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BenchmarkDotNet.Running;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit;
using PretrainedKit.Backbones;
using PretrainedKit.Benchmarks;
using PretrainedKit.Caching;
using PretrainedKit.Prediction;
using SkiaSharp;

// Usage:
//   dotnet run -c Release --project bench/PretrainedKit.Benchmarks -- [--images DIR] [--count N] [--rss-small 500] [--rss-large 5000] [--json FILE] [--rounds 3]
//   dotnet run -c Release --project bench/PretrainedKit.Benchmarks -- --bdn        (BenchmarkDotNet micro-benchmarks of decoding)
if (args.Contains("--bdn"))
{
    BenchmarkRunner.Run<DecodeBenchmarks>(args: args.Where(a => a != "--bdn").ToArray());
    return 0;
}

if (args.Contains("--profile-predict"))
{
    return PredictProfile.Run();
}

if (args.Length >= 3 && args[0] == "--rss-child")
{
    return RssChild.Run(args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
}

var options = BenchOptions.Parse(args);
var work = Path.Combine(Path.GetTempPath(), $"pretrainedkit-bench-{Environment.ProcessId}");
Directory.CreateDirectory(work);
try
{
    var largest = Math.Max(options.Count, Math.Max(options.RssSmall, options.RssLarge));
    var images = options.ImagesDir is { } dir
        ? Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Where(f => ".jpg.jpeg.png.bmp.gif.webp".Contains(Path.GetExtension(f).ToLowerInvariant(), StringComparison.Ordinal) && Path.GetExtension(f).Length > 0).Order(StringComparer.Ordinal).ToList()
        : BenchImages.Generate(Path.Combine(work, "images"), largest);
    Console.WriteLine($"PretrainedKit benchmark: {images.Count} images ({(options.ImagesDir is null ? "generated from assets/fashion-mnist, 256x256 JPEG, all distinct" : options.ImagesDir)}), {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}, {DateTime.UtcNow:yyyy-MM-dd}");
    var sample = images.Take(options.Count).ToList();
    var results = new Dictionary<string, double>();

    // 1-4 run in interleaved rounds: this VM's speed drifts by up to 25 % from one minute to the next, so each ratio is
    // taken within one round (seconds apart) and the table reports the median over the rounds.
    //   1. Raw ONNX Runtime on pre-made tensors: the ceiling for anything that runs this model.
    //   2. The naive ML.NET pipeline a user would write.
    //   3. PretrainedKit end to end (read, decode, normalise, resize, ResNet18), cold cache then warm cache.
    //   4. Single-image Predict latency.
    var rounds = new List<Dictionary<string, double>>();
    using var predictor = await Ours.TrainPredictor(sample, Path.Combine(work, "predictor-cache"));
    for (var round = 0; round < options.Rounds; round++)
    {
        var r = new Dictionary<string, double>();
        var (rawBatch1, rawLatency, rawBatch8) = RawOrt.Measure(Math.Min(sample.Count, 100));
        r["ortRawImagesPerSecond"] = Math.Max(rawBatch1, rawBatch8);
        r["ortRawBatch1ImagesPerSecond"] = rawBatch1;
        r["ortRawBatch8ImagesPerSecond"] = rawBatch8;
        r["ortRawLatencyMsP50"] = rawLatency;
        r["predictLatencyMsP50"] = Ours.PredictLatencyP50(predictor, sample);
        var (cold, warm) = await Ours.MeasureColdAndWarm(sample, Path.Combine(work, $"cache-{round}"));
        r["coldImagesPerSecond"] = cold;
        r["warmCacheImagesPerSecond"] = warm;
        r["naiveMlNetImagesPerSecond"] = NaiveMlNet.Measure(sample.Take(Math.Min(sample.Count, 100)).ToList());
        r["coldOverOrtRaw"] = cold / r["ortRawImagesPerSecond"];
        r["coldOverNaiveMlNet"] = cold / r["naiveMlNetImagesPerSecond"];
        r["predictOverOrtRawLatency"] = r["predictLatencyMsP50"] / rawLatency;
        r["warmOverCold"] = warm / cold;
        rounds.Add(r);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round + 1}/{options.Rounds}: raw ORT {r["ortRawImagesPerSecond"]:F1}/s, cold {cold:F1}/s ({r["coldOverOrtRaw"]:F2}x raw, {r["coldOverNaiveMlNet"]:F2}x naive), Predict p50 {r["predictLatencyMsP50"]:F1} ms ({r["predictOverOrtRawLatency"]:F2}x raw {rawLatency:F1} ms)"));
    }

    foreach (var key in rounds[0].Keys)
    {
        var values = rounds.Select(r => r[key]).Order().ToList();
        results[key] = values[values.Count / 2];
    }

    // 5. Peak memory for small and large runs, each in a fresh process.
    results["peakRssMb500"] = RssChild.Measure(images.Take(options.RssSmall).ToList(), work);
    results["peakRssMb5000"] = RssChild.Measure(images.Take(options.RssLarge).ToList(), work);

    Table.Print(results, options);
    var json = JsonSerializer.Serialize(results.ToDictionary(k => k.Key, v => Math.Round(v.Value, 2)), new JsonSerializerOptions { WriteIndented = true });
    File.WriteAllText(options.JsonPath, json);
    Console.WriteLine($"JSON written to {Path.GetFullPath(options.JsonPath)}");
    return 0;
}
finally
{
    Directory.Delete(work, recursive: true);
}

namespace PretrainedKit.Benchmarks
{
    internal sealed record BenchOptions(string? ImagesDir, int Count, int RssSmall, int RssLarge, string JsonPath, int Rounds)
    {
        public static BenchOptions Parse(string[] args)
        {
            string? Value(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
            int Int(string name, int fallback) => Value(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
            return new BenchOptions(Value("--images"), Int("--count", 300), Int("--rss-small", 500), Int("--rss-large", 5000), Value("--json") ?? "benchmark-results.json", Int("--rounds", 3));
        }
    }

    /// <summary>Makes distinct 256x256 colour JPEGs from the bundled Fashion-MNIST PNGs (distinct bytes, so the cache cannot cheat).</summary>
    internal static class BenchImages
    {
        public static List<string> Generate(string folder, int count)
        {
            var root = FindRepositoryRoot();
            var sources = Directory.GetFiles(Path.Combine(root, "assets", "fashion-mnist"), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
            Directory.CreateDirectory(folder);
            var paths = new List<string>(count);
            for (var i = 0; i < count; i++)
            {
                using var source = SKBitmap.Decode(sources[i % sources.Length]);
                using var bitmap = new SKBitmap(256, 256, SKColorType.Rgba8888, SKAlphaType.Premul);
                using (var canvas = new SKCanvas(bitmap))
                {
                    canvas.Clear(new SKColor((byte)(i % 251), (byte)(i / 251 % 251), 128));
                    canvas.DrawBitmap(source, new SKRect(16, 16, 240, 240));
                }

                var path = Path.Combine(folder, $"img{i:D5}.jpg");
                using (var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90))
                {
                    File.WriteAllBytes(path, data.ToArray());
                }

                paths.Add(path);
            }

            return paths;
        }

        public static string FindRepositoryRoot()
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PretrainedKit.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("Run the benchmark from the repository (PretrainedKit.sln not found), or pass --images DIR.");
        }
    }

    internal static class RawOrt
    {
        /// <summary>Images/s at batch 1 on the package's own model, p50 latency at batch 1, and images/s at batch 8 with a symbolic batch dimension.</summary>
        public static (double Batch1, double LatencyP50, double Batch8) Measure(int count)
        {
            var backbone = KnownBackbones.ResNet18;
            var modelPath = backbone.ResolveModelPath();
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Environment.ProcessorCount, InterOpNumThreads = 1 };
            var random = new Random(1);
            var tensor = new float[3 * 224 * 224];
            for (var i = 0; i < tensor.Length; i++)
            {
                tensor[i] = (float)(random.NextDouble() * 255) - 120;
            }

            double batch1, p50;
            using (var session = new InferenceSession(modelPath, options))
            {
                using var input = OrtValue.CreateTensorValueFromMemory(tensor, [1, 3, 224, 224]);
                using var runOptions = new RunOptions();
                for (var i = 0; i < 5; i++)
                {
                    using var warm = session.Run(runOptions, [backbone.InputName], [input], [backbone.OutputName]);
                }

                var latencies = new List<double>(count);
                var total = Stopwatch.StartNew();
                for (var i = 0; i < count; i++)
                {
                    var sw = Stopwatch.StartNew();
                    using var output = session.Run(runOptions, [backbone.InputName], [input], [backbone.OutputName]);
                    latencies.Add(sw.Elapsed.TotalMilliseconds);
                }

                batch1 = count / total.Elapsed.TotalSeconds;
                latencies.Sort();
                p50 = latencies[latencies.Count / 2];
            }

            double batch8;
            var dynamicModel = PretrainedKit.Onnx.OnnxModelEditor.ToBytes(PretrainedKit.Onnx.OnnxModelEditor.MakeBatchDynamic(PretrainedKit.Onnx.OnnxModelEditor.Read(modelPath)));
            using (var session = new InferenceSession(dynamicModel, options))
            {
                var batch = new float[8 * tensor.Length];
                for (var b = 0; b < 8; b++)
                {
                    tensor.CopyTo(batch, b * tensor.Length);
                }

                using var input = OrtValue.CreateTensorValueFromMemory(batch, [8, 3, 224, 224]);
                using var runOptions = new RunOptions();
                using (var warm = session.Run(runOptions, [backbone.InputName], [input], [backbone.OutputName]))
                {
                }

                var runs = Math.Max(1, count / 8);
                var total = Stopwatch.StartNew();
                for (var i = 0; i < runs; i++)
                {
                    using var output = session.Run(runOptions, [backbone.InputName], [input], [backbone.OutputName]);
                }

                batch8 = runs * 8 / total.Elapsed.TotalSeconds;
            }

            return (batch1, p50, batch8);
        }
    }

    internal static class NaiveMlNet
    {
        private sealed class Row
        {
            public string Path { get; set; } = string.Empty;
        }

        /// <summary>LoadImages, ResizeImages, ExtractPixels, DnnFeaturizeImage(ResNet18): what the ML.NET docs show.</summary>
        public static double Measure(IReadOnlyList<string> images)
        {
            var ml = new MLContext(1);
            var data = ml.Data.LoadFromEnumerable(images.Select(p => new Row { Path = p }));
            var pipeline = ml.Transforms.LoadImages("Image", null, nameof(Row.Path))
                .Append(ml.Transforms.ResizeImages("Image", 224, 224))
                .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
                .Append(ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"));
            var model = pipeline.Fit(ml.Data.TakeRows(data, 1));
            var sw = Stopwatch.StartNew();
            var transformed = model.Transform(data);
            var count = 0;
            foreach (var features in transformed.GetColumn<VBuffer<float>>("Features"))
            {
                count += features.Length > 0 ? 1 : 0;
            }

            return count / sw.Elapsed.TotalSeconds;
        }
    }

    internal static class Ours
    {
        public static async Task<(double Cold, double Warm)> MeasureColdAndWarm(IReadOnlyList<string> images, string cacheDir)
        {
            var labelled = images.Select((p, i) => new PretrainedKit.Data.LabeledImage(p, i % 2 == 0 ? "even" : "odd")).ToList();
            var builder = ImageClassifier.Create().FromImages(labelled).WithValidationSplit(0).WithFeatureCacheDirectory(cacheDir);

            // Warm-up on a few images in another cache so the cold run does not pay for JIT and session creation twice.
            using (await ImageClassifier.Create().FromImages(labelled.Take(8)).WithValidationSplit(0).WithFeatureCache(FeatureCacheOptions.Disabled).TrainAsync())
            {
            }

            using var cold = await builder.TrainAsync();
            using var warm = await builder.WithL2Regularization(1f).TrainAsync();
            var coldSeconds = cold.TrainingReport!.PhaseDurations[PretrainedKit.Training.TrainingPhase.Featurizing].TotalSeconds;
            var warmSeconds = warm.TrainingReport!.PhaseDurations[PretrainedKit.Training.TrainingPhase.Featurizing].TotalSeconds;
            if (warm.TrainingReport.FeatureCacheHits != images.Count)
            {
                throw new InvalidOperationException($"Expected {images.Count} cache hits, got {warm.TrainingReport.FeatureCacheHits}.");
            }

            return (images.Count / coldSeconds, images.Count / warmSeconds);
        }

        public static async Task<ImageClassifierModel> TrainPredictor(IReadOnlyList<string> images, string cacheDir)
        {
            var labelled = images.Take(20).Select((p, i) => new PretrainedKit.Data.LabeledImage(p, i % 2 == 0 ? "even" : "odd")).ToList();
            var model = await ImageClassifier.Create().FromImages(labelled).WithValidationSplit(0).WithFeatureCacheDirectory(cacheDir).TrainAsync();
            for (var i = 0; i < 5; i++)
            {
                model.Predict(images[i]);
            }

            return model;
        }

        public static double PredictLatencyP50(ImageClassifierModel model, IReadOnlyList<string> images)
        {
            var latencies = new List<double>();
            foreach (var image in images.Take(Math.Min(images.Count, 60)))
            {
                var sw = Stopwatch.StartNew();
                model.Predict(image);
                latencies.Add(sw.Elapsed.TotalMilliseconds);
            }

            latencies.Sort();
            return latencies[latencies.Count / 2];
        }
    }

    internal static class RssChild
    {
        /// <summary>Featurises the images in a fresh process (cache off) and returns that process's peak resident memory in MB.</summary>
        public static double Measure(IReadOnlyList<string> images, string work)
        {
            var list = Path.Combine(work, $"list-{images.Count}.txt");
            File.WriteAllLines(list, images);
            var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
            if (Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal))
            {
                info.ArgumentList.Add(typeof(RssChild).Assembly.Location);
            }

            info.ArgumentList.Add("--rss-child");
            info.ArgumentList.Add(list);
            info.ArgumentList.Add(images.Count.ToString(CultureInfo.InvariantCulture));
            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            var line = output.Split('\n').Last(l => l.StartsWith("peakRssMb=", StringComparison.Ordinal));
            return double.Parse(line["peakRssMb=".Length..], CultureInfo.InvariantCulture);
        }

        public static int Run(string listFile, int count)
        {
            var images = File.ReadAllLines(listFile).Take(count).Select((p, i) => new PretrainedKit.Data.LabeledImage(p, i % 2 == 0 ? "even" : "odd")).ToList();
            using (var model = ImageClassifier.Create().FromImages(images).WithValidationSplit(0).WithFeatureCache(FeatureCacheOptions.Disabled).Train())
            {
                GC.KeepAlive(model);
            }

            var hwm = File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            var kb = double.Parse(hwm["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peakRssMb={kb / 1024:F1}"));
            return 0;
        }
    }

    /// <summary>Where single-image Predict spends its time: read, decode+normalise, preprocess, backbone.</summary>
    internal static class PredictProfile
    {
        public static int Run()
        {
            var work = Path.Combine(Path.GetTempPath(), $"pretrainedkit-profile-{Environment.ProcessId}");
            var images = BenchImages.Generate(work, 100);
            using var session = BackboneSession.Open(KnownBackbones.ResNet18);
            var rgb = new byte[224 * 224 * 3];
            var tensor = new float[session.TensorLength];
            var features = new float[512];
            double read = 0, decode = 0, prep = 0, run = 0;
            for (var pass = 0; pass < 2; pass++)
            {
                read = decode = prep = run = 0;
                foreach (var image in images)
                {
                    var sw = Stopwatch.StartNew();
                    var bytes = File.ReadAllBytes(image);
                    read += sw.Elapsed.TotalMilliseconds;
                    sw.Restart();
                    PretrainedKit.Imaging.ImageDecoder.DecodeNormalized(bytes, image, PretrainedKit.Imaging.ImagePreprocessingOptions.Default, 224, 224, rgb);
                    decode += sw.Elapsed.TotalMilliseconds;
                    sw.Restart();
                    session.Preprocess(rgb, tensor);
                    prep += sw.Elapsed.TotalMilliseconds;
                    sw.Restart();
                    session.Run(tensor, features);
                    run += sw.Elapsed.TotalMilliseconds;
                }
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"per image (ms): read {read / 100:F2}, decode+normalise {decode / 100:F2}, preprocess {prep / 100:F2}, backbone {run / 100:F2}"));
            Directory.Delete(work, recursive: true);
            return 0;
        }
    }

    internal static class Table
    {
        public static void Print(Dictionary<string, double> r, BenchOptions options)
        {
            string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
            var rows = new (string Name, string Value, string Check)[]
            {
                ("Raw ONNX Runtime, batch 1 (images/s)", F(r["ortRawBatch1ImagesPerSecond"]), string.Empty),
                ("Raw ONNX Runtime, batch 8 (images/s)", F(r["ortRawBatch8ImagesPerSecond"]), string.Empty),
                ("Naive ML.NET pipeline (images/s)", F(r["naiveMlNetImagesPerSecond"]), string.Empty),
                ("PretrainedKit cold, end to end (images/s)", F(r["coldImagesPerSecond"]), $"{r["coldOverOrtRaw"]:F2}x raw ORT (target >= 0.90), {r["coldOverNaiveMlNet"]:F2}x naive (target >= 1.5); median of per-round ratios"),
                ("PretrainedKit warm cache (images/s)", F(r["warmCacheImagesPerSecond"]), $"{r["warmOverCold"]:F0}x cold (target >= 100)"),
                ("Raw ORT latency p50, batch 1 (ms)", F(r["ortRawLatencyMsP50"]), string.Empty),
                ("Predict latency p50, one file (ms)", F(r["predictLatencyMsP50"]), $"{r["predictOverOrtRawLatency"]:F2}x raw (target <= 1.15); median of per-round ratios"),
                ($"Peak RSS, {options.RssSmall} images (MB)", F(r["peakRssMb500"]), string.Empty),
                ($"Peak RSS, {options.RssLarge} images (MB)", F(r["peakRssMb5000"]), $"{r["peakRssMb5000"] / r["peakRssMb500"]:F2}x (target <= 1.30)"),
            };
            var w = rows.Max(x => x.Name.Length);
            Console.WriteLine();
            Console.WriteLine($"Medians over {options.Rounds} interleaved rounds (memory: one fresh process each).");
            Console.WriteLine($"| {"Measure".PadRight(w)} | {"Value",8} | Check |");
            Console.WriteLine($"|{new string('-', w + 2)}|{new string('-', 10)}|-------|");
            foreach (var (name, value, check) in rows)
            {
                Console.WriteLine($"| {name.PadRight(w)} | {value,8} | {check} |");
            }
        }
    }
}
