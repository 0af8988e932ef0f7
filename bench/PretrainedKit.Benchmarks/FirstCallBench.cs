using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PretrainedKit.Caching;

namespace PretrainedKit.Benchmarks;

/// <summary>
/// First-call latency after <c>Load</c>, with and without <c>warmUp</c>: a small model is trained and saved once, then each
/// repetition starts a fresh process (nothing warm: no JIT, no ONNX Runtime arenas, no decoder) that loads it and times
/// <c>Load</c>, the first <c>Predict</c> and a second one. Cold and warm runs alternate so that drift hits both alike.
/// </summary>
internal static class FirstCallBench
{
    private static readonly bool[] Modes = [false, true];
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static int Run(string[] args)
    {
        string? Value(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        var reps = int.Parse(Value("--reps") ?? "7", CultureInfo.InvariantCulture);
        var root = BenchImages.FindRepositoryRoot();
        var json = Value("--json") ?? Path.Combine(root, "bench", "results", $"first-call-{DateTime.UtcNow:yyyy-MM-dd}.json");
        var work = Path.Combine(Path.GetTempPath(), $"pretrainedkit-first-call-{Environment.ProcessId}");
        try
        {
            var images = BenchImages.Generate(Path.Combine(work, "images"), 24);
            var labeled = images.Select((p, i) => new PretrainedKit.Data.LabeledImage(p, i % 2 == 0 ? "even" : "odd")).ToList();
            var modelPath = Path.Combine(work, "first-call.pkmodel");
            using (var model = ImageClassifier.Create().FromImages(labeled).WithValidationSplit(0).WithFeatureCache(FeatureCacheOptions.Disabled).Train())
            {
                model.Save(modelPath);
            }

            var runs = new Dictionary<bool, List<double[]>> { [false] = [], [true] = [] };
            for (var r = 0; r < reps; r++)
            {
                foreach (var warm in Modes)
                {
                    runs[warm].Add(Child(modelPath, images[r % images.Count], warm));
                }
            }

            static double Median(IEnumerable<double> values)
            {
                var sorted = values.Order().ToArray();
                return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
            }

            var rows = Modes.Select(w => new
            {
                warmUp = w,
                loadMs = Median(runs[w].Select(x => x[0])),
                firstPredictMs = Median(runs[w].Select(x => x[1])),
                secondPredictMs = Median(runs[w].Select(x => x[2])),
                loadPlusFirstPredictMs = Median(runs[w].Select(x => x[0] + x[1])),
            }).ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"First Predict after Load, fresh process each time, median of {reps} ({Environment.ProcessorCount} cores):"));
            Console.WriteLine("| warmUp | Load ms | first Predict ms | second Predict ms | Load + first ms |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
            foreach (var row in rows)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {row.warmUp} | {row.loadMs:F1} | {row.firstPredictMs:F1} | {row.secondPredictMs:F1} | {row.loadPlusFirstPredictMs:F1} |"));
            }

            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(json))!);
            var document = new
            {
                benchmark = "first-call",
                date = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                cores = Environment.ProcessorCount,
                repetitions = reps,
                rows,
                raw = runs.ToDictionary(kv => kv.Key ? "warm" : "cold", kv => kv.Value),
            };
            File.WriteAllText(json, JsonSerializer.Serialize(document, Indented));
            Console.WriteLine($"Written to {json}");
            return 0;
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    /// <summary>In the child process: load, predict twice, print the three times in milliseconds.</summary>
    public static int RunChild(string modelPath, string image, bool warmUp)
    {
        var sw = Stopwatch.StartNew();
        using var model = ImageClassifier.Load(modelPath, warmUp: warmUp);
        var load = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        _ = model.Predict(image, 1);
        var first = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        _ = model.Predict(image, 1);
        var second = sw.Elapsed.TotalMilliseconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"firstCall={load:F3},{first:F3},{second:F3}"));
        return 0;
    }

    private static double[] Child(string modelPath, string image, bool warmUp)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal))
        {
            info.ArgumentList.Add(typeof(FirstCallBench).Assembly.Location);
        }

        info.ArgumentList.Add("--first-call-child");
        info.ArgumentList.Add(modelPath);
        info.ArgumentList.Add(image);
        info.ArgumentList.Add(warmUp ? "warm" : "cold");
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var line = output.Split('\n').Last(l => l.StartsWith("firstCall=", StringComparison.Ordinal));
        return line["firstCall=".Length..].Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
    }
}
