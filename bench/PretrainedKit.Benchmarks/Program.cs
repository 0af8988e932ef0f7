using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BenchmarkDotNet.Running;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Models;
using PretrainedKit;
using PretrainedKit.Backbones;
using PretrainedKit.Benchmarks;
using PretrainedKit.Caching;
using SkiaSharp;

// Usage:
//   dotnet run -c Release --project bench/PretrainedKit.Benchmarks -- [--images DIR] [--count N] [--rss-small 500] [--rss-large 5000] [--json FILE] [--rounds 3] [--block 30]
//   dotnet run -c Release --project bench/PretrainedKit.Benchmarks -- --generate DIR N   (the benchmark's images, listed in DIR/list.txt, for the probes below)
//   ... -- --eval-cache N [--json FILE]   evaluate N images twice (second from the feature cache); JSON under bench/results
//   ... -- --cache-scale 10000,100000   feature cache hit, write and Trim times at each size (synthetic entries); JSON under bench/results
//   ... -- --session-memory current|path|path-noarena|path-basic|path-noprepack   resident memory of one backbone session opened one way
//   ... -- --rss-child LIST N     one peak-RSS measurement (as step 5 below)
//   ... -- --rss-trace LIST N     resident memory over a training, each 20 MB rise with its phase and the managed heap
//   ... -- --warm-only LIST N     the warm-cache featurising phase alone, 15 times
//   ... -- --warm-parts LIST N    a cache hit's steps (file judged and read, key, entry read) one by one
//   ... -- --first-call [--reps 7] [--json FILE]   first Predict after Load in a fresh process, with and without warmUp (median; JSON under bench/results/)
//   dotnet run -c Release --project bench/PretrainedKit.Benchmarks -- --bdn        (BenchmarkDotNet micro-benchmarks of decoding)
//   dotnet run -c Release --project bench/PretrainedKit.Benchmarks -- --decode-budget   (interleaved A/B of the decode memory budget)
//   dotnet run -c Release --project bench/PretrainedKit.Benchmarks -- --int8-types      (int8 integer types on this CPU: speed and cosine, fused and simulated)
//   The headline run also measures int8 (issue #18) and runs bench/peers/pytorch_int8_resnet18.py; --no-int8 skips both, --no-rss the memory children.
if (args.Contains("--bdn"))
{
    BenchmarkRunner.Run<DecodeBenchmarks>(args: args.Where(a => a != "--bdn").ToArray());
    return 0;
}

if (args.Length >= 4 && args[0] == "--first-call-child")
{
    return FirstCallBench.RunChild(args[1], args[2], args[3] == "warm");
}

if (args.Contains("--first-call"))
{
    return FirstCallBench.Run(args);
}

if (args.Contains("--int8-types"))
{
    return Int8TypesProbe.Run(args);
}

if (args.Contains("--decode-budget"))
{
    return DecodeBudgetBench.Run(args);
}

if (args.Contains("--profile-predict"))
{
    return PredictProfile.Run();
}

if (args.Length >= 3 && args[0] == "--generate")
{
    // Writes the benchmark's images to a folder and their list to DIR/list.txt, to measure one step (--rss-child) alone.
    var paths = BenchImages.Generate(args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
    File.WriteAllLines(Path.Combine(args[1], "list.txt"), paths);
    return 0;
}

if (args.Length >= 2 && args[0] == "--cache-scale")
{
    // Issue #18 item 3: what the feature cache costs as it grows. For each size: fill a fresh cache with synthetic
    // 512-feature entries (as one process), then, as a new process would (a store of its own): the first lookup (it loads
    // the index: the per-run overhead), 5 rounds of 2,000 random hits (median), 2,000 new writes, one Trim within the limit,
    // the size, and warm training throughput end to end with that many other entries in the cache.
    var sizes = args[1].Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToList();
    var scale = new Dictionary<string, object>
    {
        ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        ["cpu"] = DecodeBudgetBench.Cpu().Model,
        ["cpuFlags"] = DecodeBudgetBench.Cpu().Flags,
        ["note"] = "2 cores shared with two other agents building and testing during this run",
        ["store"] = "pack files (packs/*.pack + *.idx)",
    };
    var vector = Enumerable.Range(0, 512).Select(i => i / 512f).ToArray();
    var random = new Random(1);

    // Warm end to end: 500 generated images trained once (cold) into the cache that also holds the synthetic entries,
    // then the featurising phase of five retrainings from the cache (median images per second).
    var warmFolder = Path.Combine(Path.GetTempPath(), $"cache-scale-images-{Environment.ProcessId}");
    var warmImages = BenchImages.Generate(warmFolder, 500);
    await Ours.WarmUp(warmImages);
    foreach (var size in sizes)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"cache-scale-{Environment.ProcessId}-{size}");
        var scaleOptions = new FeatureCacheOptions { Directory = dir, MaxBytes = long.MaxValue };
        string Key(int i) => PretrainedKit.Caching.FeatureCache.ComputeKey(BitConverter.GetBytes(i), "scale");
        var fill = Stopwatch.StartNew();
        var filler = new PretrainedKit.Caching.FeatureCache(scaleOptions, isolated: true);
        Parallel.For(0, size, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i => filler.TryWrite(Key(i), vector));
        fill.Stop();
        var probes = Enumerable.Range(0, 2000).Select(_ => Key(random.Next(size))).ToList();
        var cache = new PretrainedKit.Caching.FeatureCache(scaleOptions, isolated: true); // As a new process: nothing loaded.
        var open = Stopwatch.StartNew();
        _ = cache.TryRead(probes[0], 512) ?? throw new InvalidOperationException("A written entry was not found.");
        open.Stop();
        // Five rounds of 2,000 random hits; the median round (the machine is shared, so single rounds are noisy).
        var rounds = new List<double>();
        for (var round = 0; round < 5; round++)
        {
            var read = Stopwatch.StartNew();
            foreach (var key in probes)
            {
                _ = cache.TryRead(key, 512) ?? throw new InvalidOperationException("A written entry was not found.");
            }

            read.Stop();
            rounds.Add(read.Elapsed.TotalMicroseconds / probes.Count);
            probes = Enumerable.Range(0, 2000).Select(_ => Key(random.Next(size))).ToList();
        }

        var hit = rounds.Order().ElementAt(rounds.Count / 2);
        var write = Stopwatch.StartNew();
        for (var i = 0; i < 2000; i++)
        {
            cache.TryWrite(Key(size + i), vector);
        }

        write.Stop();
        var trim = Stopwatch.StartNew();
        var deleted = cache.Trim(); // Within the limit: the run's per-run check.
        trim.Stop();
        var list = Stopwatch.StartNew();
        var bytes = cache.GetSize();
        list.Stop();
        var unbounded = new FeatureCacheOptions { Directory = dir, MaxBytes = long.MaxValue }; // Nothing evicted mid-measurement.
        var labelled = warmImages.Select((p, i) => new PretrainedKit.Data.LabeledImage(p, i % 2 == 0 ? "even" : "odd")).ToList();
        using (await ImageClassifier.Create().FromImages(labelled).WithValidationSplit(0).WithFeatureCache(unbounded).TrainAsync())
        {
        }

        var warmRates = new List<double>();
        for (var round = 0; round < 5; round++)
        {
            using var warm = await ImageClassifier.Create().FromImages(labelled).WithValidationSplit(0).WithFeatureCache(unbounded).WithL2Regularization(1f + round).TrainAsync();
            if (warm.TrainingReport!.FeatureCacheHits < warmImages.Count)
            {
                throw new InvalidOperationException($"Expected every image from the cache, got {warm.TrainingReport.FeatureCacheHits} hits.");
            }

            warmRates.Add(warmImages.Count / warm.TrainingReport.PhaseDurations[PretrainedKit.Training.TrainingPhase.Featurizing].TotalSeconds);
        }

        var warmRate = warmRates.Order().ElementAt(warmRates.Count / 2);
        scale[$"entries{size}WarmImagesPerSecond"] = Math.Round(warmRate, 0);
        scale[$"entries{size}WarmRoundsImagesPerSecond"] = warmRates.Select(r => Math.Round(r, 0)).ToArray();
        scale[$"entries{size}OpenSeconds"] = Math.Round(open.Elapsed.TotalSeconds, 3);
        scale[$"entries{size}FillSeconds"] = Math.Round(fill.Elapsed.TotalSeconds, 2);
        scale[$"entries{size}ReadMicroseconds"] = Math.Round(hit, 1);
        scale[$"entries{size}ReadRoundsMicroseconds"] = rounds.Select(r => Math.Round(r, 1)).ToArray();
        scale[$"entries{size}WriteMicroseconds"] = Math.Round(write.Elapsed.TotalMicroseconds / 2000, 1);
        scale[$"entries{size}TrimSeconds"] = Math.Round(trim.Elapsed.TotalSeconds, 3);
        scale[$"entries{size}SizeSeconds"] = Math.Round(list.Elapsed.TotalSeconds, 3);
        scale[$"entries{size}Bytes"] = bytes;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{size,9:N0} entries: filled in {fill.Elapsed.TotalSeconds:F1} s; first lookup of a new process (index load) {open.Elapsed.TotalMilliseconds:F0} ms; hit {hit:F1} us (median of 5 rounds), write {write.Elapsed.TotalMicroseconds / 2000:F1} us, Trim within the limit {trim.Elapsed.TotalMilliseconds:F1} ms (deleted {deleted}), size {list.Elapsed.TotalMilliseconds:F1} ms ({bytes / 1048576.0:F0} MiB); warm training featurises {warmRate:F0} images/s (median of 5)"));
        Directory.Delete(dir, recursive: true);
    }

    Directory.Delete(warmFolder, recursive: true);

    var scalePath = Path.Combine(BenchImages.FindRepositoryRoot(), "bench", "results", $"cache-scale-packs-{DateTime.UtcNow:yyyy-MM-dd}.json");
    File.WriteAllText(scalePath, JsonSerializer.Serialize(scale, new JsonSerializerOptions { WriteIndented = true }));
    Console.WriteLine($"JSON written to {scalePath}");
    return 0;
}

if (args.Length >= 2 && args[0] == "--session-memory")
{
    // Resident memory after opening one backbone session, one way per fresh process (the argument picks the way).
    static long RssKb(string field = "VmRSS:") => long.Parse(File.ReadAllLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal))[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    var runtime = PretrainedKit.Backbones.BackboneRuntime.Open(PretrainedKit.Backbones.KnownBackbones.ResNet18, PretrainedKit.Backbones.FeatureLayout.Pooled, null);
    var before = RssKb();
    IDisposable session;
    using var so = new Microsoft.ML.OnnxRuntime.SessionOptions { GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 1, InterOpNumThreads = 1, ExecutionMode = Microsoft.ML.OnnxRuntime.ExecutionMode.ORT_SEQUENTIAL };
    switch (args[1])
    {
        case "current": session = runtime.OpenSession(PretrainedKit.Backbones.SessionProfile.Throughput); break;
        case "path": session = new Microsoft.ML.OnnxRuntime.InferenceSession(runtime.ModelPath, so); break;
        case "path-noarena": so.EnableCpuMemArena = false; session = new Microsoft.ML.OnnxRuntime.InferenceSession(runtime.ModelPath, so); break;
        case "path-basic": so.GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_BASIC; session = new Microsoft.ML.OnnxRuntime.InferenceSession(runtime.ModelPath, so); break;
        case "path-noprepack": so.AddSessionConfigEntry("session.disable_prepacking", "1"); session = new Microsoft.ML.OnnxRuntime.InferenceSession(runtime.ModelPath, so); break;
        default: throw new ArgumentException(args[1]);
    }

    var opened = RssKb();
    PretrainedKit.Internal.NativeHeap.ReleaseFreedMemory();
    GC.Collect(2, GCCollectionMode.Forced, true, true);
    var trimmed = RssKb();
    var tensor = new float[3 * 224 * 224];
    var features = new float[512];
    var sw = Stopwatch.StartNew();
    for (var i = 0; i < 20; i++)
    {
        if (session is PretrainedKit.Backbones.BackboneSession b) b.Run(tensor, features);
        else
        {
            using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(tensor, [1, 3, 224, 224]);
            var s = (Microsoft.ML.OnnxRuntime.InferenceSession)session;
            using var outputs = s.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), [runtime.Backbone.InputName], [input], [runtime.Backbone.OutputName]);
        }
    }

    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{args[1],-15} before {before / 1024} MB, opened {opened / 1024} MB (+{(opened - before) / 1024}), after trim+GC {trimmed / 1024} MB, after 20 runs {RssKb() / 1024} MB, peak {RssKb("VmHWM:") / 1024} MB, {sw.Elapsed.TotalMilliseconds / 20:F1} ms/run"));
    session.Dispose();
    return 0;
}

if (args.Length >= 2 && args[0] == "--eval-cache")
{
    // Issue #18 item 1: evaluating an unchanged folder a second time reads the feature cache. Evaluates N generated
    // images (two classes) twice with an empty cache, through a model saved and loaded as the CLI does.
    var count = int.Parse(args[1], CultureInfo.InvariantCulture);
    var root = Path.Combine(Path.GetTempPath(), $"eval-cache-{Environment.ProcessId}");
    try
    {
        var generated = BenchImages.Generate(Path.Combine(root, "flat"), count + 40);
        var folder = Path.Combine(root, "test");
        for (var i = 0; i < count; i++)
        {
            var label = Path.Combine(folder, i % 2 == 0 ? "even" : "odd");
            Directory.CreateDirectory(label);
            File.Move(generated[i], Path.Combine(label, Path.GetFileName(generated[i])));
        }

        var trainImages = generated.Skip(count).Select((p, i) => new PretrainedKit.Data.LabeledImage(p, i % 2 == 0 ? "even" : "odd")).ToList();
        var modelPath = Path.Combine(root, "model.pkmodel");
        using (var trained = await ImageClassifier.Create().FromImages(trainImages).WithValidationSplit(0).WithFeatureCache(FeatureCacheOptions.Disabled).TrainAsync())
        {
            trained.Save(modelPath);
        }

        var cache = new FeatureCacheOptions { Directory = Path.Combine(root, "cache") };
        using var model = ImageClassifier.Load(modelPath, featureCache: cache);
        var first = await model.EvaluateAsync(folder);
        var second = await model.EvaluateAsync(folder);
        if (first.FeatureCacheHits != 0 || second.FeatureCacheHits != count || second.Metrics.LogLoss != first.Metrics.LogLoss)
        {
            throw new InvalidOperationException($"Expected 0 then {count} hits and equal metrics; got {first.FeatureCacheHits}, {second.FeatureCacheHits}.");
        }

        var evalResults = new Dictionary<string, double>
        {
            ["images"] = count,
            ["firstEvaluationSeconds"] = Math.Round(first.Elapsed.TotalSeconds, 3),
            ["secondEvaluationSeconds"] = Math.Round(second.Elapsed.TotalSeconds, 3),
            ["speedup"] = Math.Round(first.Elapsed.TotalSeconds / second.Elapsed.TotalSeconds, 1),
        };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"evaluate {count} images: first {first.Elapsed.TotalSeconds:F1} s (0 cache hits), second {second.Elapsed.TotalSeconds:F2} s ({count} hits): {evalResults["speedup"]:F0}x (target >= 50)"));
        var jsonPath = args.Length >= 4 && args[2] == "--json" ? args[3] : Path.Combine(BenchImages.FindRepositoryRoot(), "bench", "results", $"eval-cache-{DateTime.UtcNow:yyyy-MM-dd}.json");
        File.WriteAllText(jsonPath, JsonSerializer.Serialize(evalResults, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"JSON written to {Path.GetFullPath(jsonPath)}");
        return 0;
    }
    finally
    {
        Directory.Delete(root, recursive: true);
    }
}

if (args.Length >= 3 && args[0] == "--warm-parts")
{
    // Where a cache hit's time goes: each step alone over the same files, best of 20 passes, microseconds per image.
    var imgs = File.ReadAllLines(args[1]).Take(int.Parse(args[2], CultureInfo.InvariantCulture)).ToList();
    var cache = new PretrainedKit.Caching.FeatureCache(new FeatureCacheOptions { Directory = Path.Combine(Path.GetTempPath(), $"warm-parts-{Environment.ProcessId}") });
    var contexts = new List<string> { "v3|ctx" };
    foreach (var f in imgs)
    {
        cache.TryWrite(PretrainedKit.Caching.FeatureCache.ComputeKeys(File.ReadAllBytes(f), contexts)[0], new float[512]);
    }

    double Best(Action<string> step)
    {
        var best = double.MaxValue;
        for (var pass = 0; pass < 20; pass++)
        {
            var sw = Stopwatch.StartNew();
            foreach (var f in imgs) step(f);
            best = Math.Min(best, sw.Elapsed.TotalMicroseconds / imgs.Count);
        }
        return best;
    }

    var bytesOf = imgs.ToDictionary(f => f, File.ReadAllBytes);
    var keyOf = imgs.ToDictionary(f => f, f => PretrainedKit.Caching.FeatureCache.ComputeKeys(bytesOf[f], contexts)[0]);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FileGuard.Inspect {Best(f => PretrainedKit.Internal.FileGuard.Inspect(f)):F1} us"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"File.ReadAllBytes {Best(f => File.ReadAllBytes(f)):F1} us"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ImageDecoder.ReadFile {Best(f => PretrainedKit.Imaging.ImageDecoder.ReadFile(f)):F1} us"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ComputeKeys {Best(f => PretrainedKit.Caching.FeatureCache.ComputeKeys(bytesOf[f], contexts)):F1} us"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cache.TryRead {Best(f => cache.TryRead(keyOf[f], 512)):F1} us"));
    Directory.Delete(cache.Options.Directory!, true);
    return 0;
}

if (args.Length >= 3 && args[0] == "--warm-only")
{
    // Times the featurising phase of a retraining whose images are all in the cache (the benchmark's warm step), 15 times.
    var imgs = File.ReadAllLines(args[1]).Take(int.Parse(args[2], CultureInfo.InvariantCulture)).ToList();
    var cacheDir = Path.Combine(Path.GetTempPath(), $"warm-only-{Environment.ProcessId}");
    await Ours.WarmUp(imgs);
    var coldS = await Ours.ColdSeconds(imgs, cacheDir);
    var warms = new List<double>();
    for (var i = 0; i < 15; i++)
    {
        warms.Add(imgs.Count / await Ours.WarmImagesPerSecond(imgs, cacheDir) * 1000);
    }

    Directory.Delete(cacheDir, true);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cold {coldS * 1000:F0} ms; warm ms: median {warms.Order().ElementAt(7):F1}, min {warms.Min():F1}, all {string.Join(" ", warms.Select(w => w.ToString("F1", CultureInfo.InvariantCulture)))}"));
    return 0;
}

if (args.Length >= 3 && args[0] == "--rss-trace")
{
    var imgs = File.ReadAllLines(args[1]).Take(int.Parse(args[2], CultureInfo.InvariantCulture)).Select((p, i) => new PretrainedKit.Data.LabeledImage(p, i % 2 == 0 ? "even" : "odd")).ToList();
    var phase = "start";
    var stopSampling = false;
    long maxRss = 0; string atPeak = "";
    var sampler = new Thread(() =>
    {
        while (!Volatile.Read(ref stopSampling))
        {
            var rssLine = File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            var kb = long.Parse(rssLine["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            if (kb > maxRss + 20 * 1024)
            {
                Console.WriteLine($"  t={Environment.TickCount64 % 100000} rss={kb / 1024}MB phase={phase} gc={GC.GetGCMemoryInfo().TotalCommittedBytes >> 20}MB");
                maxRss = kb;
                var gc = GC.GetGCMemoryInfo();
                atPeak = $"rss={kb / 1024}MB phase={phase} gcCommitted={gc.TotalCommittedBytes >> 20}MB heap={gc.HeapSizeBytes >> 20}MB total={GC.GetTotalMemory(false) >> 20}MB";
            }
            Thread.Sleep(20);
        }
    }) { IsBackground = true };
    sampler.Start();
    using (var model = ImageClassifier.Create().FromImages(imgs).WithValidationSplit(0).WithFeatureCache(FeatureCacheOptions.Disabled).Train(new Progress<PretrainedKit.Training.TrainingProgress>(p => phase = p.Phase.ToString())))
    {
        GC.KeepAlive(model);
    }
    Volatile.Write(ref stopSampling, true);
    Console.WriteLine(atPeak);
    return 0;
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
    Console.WriteLine($"CPU: {Int8TypesProbe.Cpu()}");
    Console.WriteLine($"PretrainedKit benchmark: {images.Count} images ({(options.ImagesDir is null ? "generated from assets/fashion-mnist, 256x256 JPEG, all distinct" : options.ImagesDir)}), {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}, {DateTime.UtcNow:yyyy-MM-dd}");
    var sample = images.Take(options.Count).ToList();
    var results = new Dictionary<string, double>();

    // 1-4 run in interleaved rounds, and within a round in short interleaved blocks: this VM's speed drifts by up to 25 %
    // from one minute to the next, so each ratio compares measurements taken seconds apart; the table reports the median
    // over the rounds.
    //   1. Raw ONNX Runtime on pre-made tensors, in its three best settings: the ceiling for anything that runs this model.
    //   2. PretrainedKit end to end (read, decode, normalise, resize, ResNet18), cold cache then warm cache: cold in blocks
    //      of --block images, each block right after raw ORT ran the same number of images in every setting.
    //   3. Single-image Predict latency, in blocks of ten calls alternating with blocks of ten raw ORT runs.
    //   4. The naive ML.NET pipeline a user would write.
    var rounds = new List<Dictionary<string, double>>();
    using var predictor = await Ours.TrainPredictor(sample, Path.Combine(work, "predictor-cache"));
    using var raw = new RawOrt();
    await Ours.WarmUp(sample);
    for (var round = 0; round < options.Rounds; round++)
    {
        var r = new Dictionary<string, double>();
        var cacheDir = Path.Combine(work, $"cache-{round}");
        var int8CacheDir = Path.Combine(work, $"cache-int8-{round}");
        double rawBatch1Seconds = 0, rawBatch8Seconds = 0, rawConcurrentSeconds = 0, coldSeconds = 0, int8Seconds = 0, int8CalibrationSeconds = 0;
        for (var start = 0; start < sample.Count; start += options.Block)
        {
            var block = sample.Skip(start).Take(options.Block).ToList();
            rawBatch1Seconds += raw.Batch1Seconds(block.Count);
            rawBatch8Seconds += raw.Batch8Seconds(block.Count);
            rawConcurrentSeconds += raw.ConcurrentSeconds(block.Count);
            coldSeconds += await Ours.ColdSeconds(block, cacheDir);
            if (!options.NoInt8)
            {
                // Issue #18: the same cold training with an int8 backbone, right after; its featurising phase only (the
                // calibration pass, once per training, is timed apart: the LoadingBackbone phase).
                var (featurize, loading) = await Ours.ColdInt8Seconds(block, int8CacheDir);
                int8Seconds += featurize;
                int8CalibrationSeconds += loading;
            }
        }

        r["ortRawBatch1ImagesPerSecond"] = sample.Count / rawBatch1Seconds;
        r["ortRawBatch8ImagesPerSecond"] = sample.Count / rawBatch8Seconds;
        r["ortRawConcurrentImagesPerSecond"] = sample.Count / rawConcurrentSeconds;
        r["ortRawImagesPerSecond"] = new[] { r["ortRawBatch1ImagesPerSecond"], r["ortRawBatch8ImagesPerSecond"], r["ortRawConcurrentImagesPerSecond"] }.Max();
        var cold = sample.Count / coldSeconds;
        var warm = await Ours.WarmImagesPerSecond(sample, cacheDir);
        r["coldImagesPerSecond"] = cold;
        r["warmCacheImagesPerSecond"] = warm;
        var (rawLatency, predictLatency) = Ours.PairedLatencyP50(predictor, raw, sample);
        r["ortRawLatencyMsP50"] = rawLatency;
        r["predictLatencyMsP50"] = predictLatency;
        r["naiveMlNetImagesPerSecond"] = NaiveMlNet.Measure(sample.Take(Math.Min(sample.Count, 100)).ToList());
        r["coldOverOrtRaw"] = cold / r["ortRawImagesPerSecond"];
        r["coldOverOrtRawBatch"] = cold / Math.Max(r["ortRawBatch1ImagesPerSecond"], r["ortRawBatch8ImagesPerSecond"]); // The issue's raw settings.
        r["coldOverNaiveMlNet"] = cold / r["naiveMlNetImagesPerSecond"];
        r["predictOverOrtRawLatency"] = predictLatency / rawLatency;
        r["warmOverCold"] = warm / cold;
        if (!options.NoInt8)
        {
            r["int8ImagesPerSecond"] = sample.Count / int8Seconds;
            r["int8OverOrtRaw"] = r["int8ImagesPerSecond"] / r["ortRawImagesPerSecond"];
            r["int8OverCold"] = r["int8ImagesPerSecond"] / cold;
            r["int8LoadingBackboneSecondsPerTraining"] = int8CalibrationSeconds / ((sample.Count + options.Block - 1) / options.Block);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  int8 cold {r["int8ImagesPerSecond"]:F1}/s ({r["int8OverOrtRaw"]:F2}x best raw FP32 ORT, {r["int8OverCold"]:F2}x FP32 cold); calibration and backbone load {r["int8LoadingBackboneSecondsPerTraining"]:F1} s per training of {options.Block} images"));
        }

        rounds.Add(r);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round + 1}/{options.Rounds}: raw ORT {r["ortRawImagesPerSecond"]:F1}/s (batch 1 {r["ortRawBatch1ImagesPerSecond"]:F1}, batch 8 {r["ortRawBatch8ImagesPerSecond"]:F1}, concurrent {r["ortRawConcurrentImagesPerSecond"]:F1}), cold {cold:F1}/s ({r["coldOverOrtRaw"]:F2}x raw, {r["coldOverOrtRawBatch"]:F2}x raw batch 1/8, {r["coldOverNaiveMlNet"]:F2}x naive), Predict p50 {predictLatency:F1} ms ({r["predictOverOrtRawLatency"]:F2}x raw {rawLatency:F1} ms)"));
    }

    foreach (var key in rounds[0].Keys)
    {
        var values = rounds.Select(r => r[key]).Order().ToList();
        results[key] = values[values.Count / 2];
    }

    // 5. Peak memory for small and large runs, each in a fresh process.
    if (!options.NoRss)
    {
        results["peakRssMb500"] = RssChild.Measure(images.Take(options.RssSmall).ToList(), work);
        results["peakRssMb5000"] = RssChild.Measure(images.Take(options.RssLarge).ToList(), work);
    }

    // 6. The PyTorch int8 peer (bench/peers/pytorch_int8_resnet18.py) in a child process, in the same run; and the int8
    //    accuracy figures of bench/PretrainedKit.Experiments -- --int8 (not measured here: copied from their file).
    if (!options.NoInt8)
    {
        foreach (var (key, value) in Int8Extras.PyTorchPeer(sample))
        {
            results[key] = value;
        }

        if (results.TryGetValue("pytorchInt8ImagesPerSecond", out var pytorchInt8))
        {
            results["int8OverPytorchInt8"] = results["int8ImagesPerSecond"] / pytorchInt8;
        }

        foreach (var (key, value) in CopiedFigures.Int8Accuracy())
        {
            results[key] = value;
        }
    }

    // 7. The cache-scale figures (issue #18 item 3), copied from the newest --cache-scale file: not measured here.
    foreach (var (key, value) in CopiedFigures.CacheScale())
    {
        results[key] = value;
    }

    Table.Print(results, options);
    var json = JsonSerializer.Serialize(results.ToDictionary(k => k.Key, v => Math.Round(v.Value, v.Key.Contains("Accuracy", StringComparison.Ordinal) || v.Key.Contains("Cosine", StringComparison.Ordinal) ? 4 : 2)), new JsonSerializerOptions { WriteIndented = true });
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
    internal sealed record BenchOptions(string? ImagesDir, int Count, int RssSmall, int RssLarge, string JsonPath, int Rounds, int Block)
    {
        /// <summary>Gets a value indicating whether the peak-memory children are skipped (--no-rss).</summary>
        public bool NoRss { get; init; }

        /// <summary>Gets a value indicating whether the int8 measurements and the PyTorch int8 peer are skipped (--no-int8).</summary>
        public bool NoInt8 { get; init; }

        public static BenchOptions Parse(string[] args)
        {
            string? Value(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
            int Int(string name, int fallback) => Value(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
            return new BenchOptions(Value("--images"), Int("--count", 300), Int("--rss-small", 500), Int("--rss-large", 5000), Value("--json") ?? Path.Combine(BenchImages.FindRepositoryRoot(), "bench", "results", $"benchmark-{DateTime.UtcNow:yyyy-MM-dd}.json"), Int("--rounds", 3), Math.Max(8, Int("--block", 30))) { NoRss = args.Contains("--no-rss"), NoInt8 = args.Contains("--no-int8") };
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

    /// <summary>
    /// Raw ONNX Runtime on one pre-made tensor, the package's own model: one run at a time with a thread per core (batch 1,
    /// static shape), batches of 8 on a copy with a symbolic batch dimension, and one single-thread run per core at once.
    /// </summary>
    internal sealed class RawOrt : IDisposable
    {
        private readonly Backbone _backbone = KnownBackbones.ResNet18;
        private readonly InferenceSession _batch1;
        private readonly InferenceSession _batch8;
        private readonly InferenceSession _single;
        private readonly float[] _tensor = new float[3 * 224 * 224];
        private readonly float[] _batch = new float[8 * 3 * 224 * 224];
        private readonly int _runs = Math.Max(2, Environment.ProcessorCount);

        public RawOrt()
        {
            var random = new Random(1);
            for (var i = 0; i < _tensor.Length; i++)
            {
                _tensor[i] = (float)(random.NextDouble() * 255) - 120;
            }

            for (var b = 0; b < 8; b++)
            {
                _tensor.CopyTo(_batch, b * _tensor.Length);
            }

            var modelPath = _backbone.ResolveModelPath();
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Environment.ProcessorCount, InterOpNumThreads = 1 };
            using var singleThread = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 1, InterOpNumThreads = 1 };
            _batch1 = new InferenceSession(modelPath, options);
            _batch8 = new InferenceSession(PretrainedKit.Onnx.OnnxModelEditor.ToBytes(PretrainedKit.Onnx.OnnxModelEditor.MakeBatchDynamic(PretrainedKit.Onnx.OnnxModelEditor.Read(modelPath))), options);
            _single = new InferenceSession(modelPath, singleThread);
            Batch1Seconds(5);
            Batch8Seconds(8);
            ConcurrentSeconds(_runs);
        }

        /// <summary>Runs <paramref name="count"/> images one at a time; returns the seconds taken.</summary>
        public double Batch1Seconds(int count)
        {
            var total = Stopwatch.StartNew();
            for (var i = 0; i < count; i++)
            {
                RunOnce(_batch1);
            }

            return total.Elapsed.TotalSeconds;
        }

        /// <summary>Runs <paramref name="count"/> images (rounded up to whole batches of 8, and counted as such) and returns the seconds per <paramref name="count"/> images.</summary>
        public double Batch8Seconds(int count)
        {
            var runs = (count + 7) / 8;
            using var input = OrtValue.CreateTensorValueFromMemory(_batch, [8, 3, 224, 224]);
            using var runOptions = new RunOptions();
            var total = Stopwatch.StartNew();
            for (var i = 0; i < runs; i++)
            {
                using var output = _batch8.Run(runOptions, [_backbone.InputName], [input], [_backbone.OutputName]);
            }

            return total.Elapsed.TotalSeconds * count / (runs * 8);
        }

        /// <summary>Runs <paramref name="count"/> images as one single-thread run per core at once; returns the seconds taken.</summary>
        public double ConcurrentSeconds(int count)
        {
            var total = Stopwatch.StartNew();
            Parallel.For(0, _runs, new ParallelOptions { MaxDegreeOfParallelism = _runs }, r =>
            {
                for (var i = r; i < count; i += _runs)
                {
                    RunOnce(_single);
                }
            });
            return total.Elapsed.TotalSeconds;
        }

        /// <summary>One batch-1 run with a thread per core; returns its latency in milliseconds.</summary>
        public double LatencyMs()
        {
            var sw = Stopwatch.StartNew();
            RunOnce(_batch1);
            return sw.Elapsed.TotalMilliseconds;
        }

        public void Dispose()
        {
            _batch1.Dispose();
            _batch8.Dispose();
            _single.Dispose();
        }

        private void RunOnce(InferenceSession session)
        {
            using var input = OrtValue.CreateTensorValueFromMemory(_tensor, [1, 3, 224, 224]);
            using var runOptions = new RunOptions();
            using var output = session.Run(runOptions, [_backbone.InputName], [input], [_backbone.OutputName]);
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
        private static List<PretrainedKit.Data.LabeledImage> Labelled(IEnumerable<string> images) =>
            images.Select((p, i) => new PretrainedKit.Data.LabeledImage(p, i % 2 == 0 ? "even" : "odd")).ToList();

        /// <summary>A first training on a few images in no cache, so no measured run pays for JIT and first session creation.</summary>
        public static async Task WarmUp(IReadOnlyList<string> images)
        {
            using var model = await ImageClassifier.Create().FromImages(Labelled(images.Take(8))).WithValidationSplit(0).WithFeatureCache(FeatureCacheOptions.Disabled).TrainAsync();
        }

        /// <summary>
        /// Automatic lever choice off: one backbone run per image, as raw ORT does (with it on, small image sets are
        /// featurised with their mirror views too, which doubled the runs and broke the warm run's hit count).
        /// </summary>
        private static ImageClassifierBuilder SingleView(ImageClassifierBuilder builder) => builder.WithOptions(builder.Options with { Auto = false });

        /// <summary>Trains on images not yet in the cache; returns the seconds of the featurising phase (read to features, cache writes included).</summary>
        public static async Task<double> ColdSeconds(IReadOnlyList<string> images, string cacheDir)
        {
            using var cold = await SingleView(ImageClassifier.Create().FromImages(Labelled(images)).WithValidationSplit(0).WithFeatureCacheDirectory(cacheDir)).TrainAsync();
            if (cold.TrainingReport!.FeatureCacheHits != 0)
            {
                throw new InvalidOperationException($"Expected a cold cache, got {cold.TrainingReport.FeatureCacheHits} hits.");
            }

            return cold.TrainingReport.PhaseDurations[PretrainedKit.Training.TrainingPhase.Featurizing].TotalSeconds;
        }

        /// <summary>As <see cref="ColdSeconds"/> with an int8 backbone: (featurising seconds, loading-backbone seconds, which hold the calibration pass).</summary>
        public static async Task<(double Featurize, double Loading)> ColdInt8Seconds(IReadOnlyList<string> images, string cacheDir)
        {
            using var cold = await SingleView(ImageClassifier.Create().FromImages(Labelled(images)).WithValidationSplit(0).WithFeatureCacheDirectory(cacheDir).WithPrecision(Precision.Int8)).TrainAsync();
            if (cold.TrainingReport!.FeatureCacheHits != 0 || cold.Precision != Precision.Int8)
            {
                throw new InvalidOperationException($"Expected a cold int8 run, got {cold.TrainingReport.FeatureCacheHits} hits and {cold.Precision}.");
            }

            var phases = cold.TrainingReport.PhaseDurations;
            return (phases[PretrainedKit.Training.TrainingPhase.Featurizing].TotalSeconds, phases[PretrainedKit.Training.TrainingPhase.LoadingBackbone].TotalSeconds);
        }

        /// <summary>Retrains with another head setting on images that are all in the cache; returns images per second of featurising.</summary>
        public static async Task<double> WarmImagesPerSecond(IReadOnlyList<string> images, string cacheDir)
        {
            using var warm = await SingleView(ImageClassifier.Create().FromImages(Labelled(images)).WithValidationSplit(0).WithFeatureCacheDirectory(cacheDir)).WithL2Regularization(1f).TrainAsync();
            if (warm.TrainingReport!.FeatureCacheHits != images.Count)
            {
                throw new InvalidOperationException($"Expected {images.Count} cache hits, got {warm.TrainingReport.FeatureCacheHits}.");
            }

            return images.Count / warm.TrainingReport.PhaseDurations[PretrainedKit.Training.TrainingPhase.Featurizing].TotalSeconds;
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

        /// <summary>
        /// p50 of raw ORT batch-1 latency and of Predict on one file, in alternating blocks of ten calls each. (Not call by
        /// call: each ONNX Runtime session's worker threads spin for a while after a run and would slow the other session's
        /// next run.)
        /// </summary>
        public static (double Raw, double Predict) PairedLatencyP50(ImageClassifierModel model, RawOrt raw, IReadOnlyList<string> images)
        {
            var rawLatencies = new List<double>();
            var predictLatencies = new List<double>();
            var files = images.Take(Math.Min(images.Count, 60)).ToList();
            for (var start = 0; start < files.Count; start += 10)
            {
                var block = files.Skip(start).Take(10).ToList();
                rawLatencies.AddRange(block.Select(_ => raw.LatencyMs()));
                foreach (var image in block)
                {
                    var sw = Stopwatch.StartNew();
                    model.Predict(image);
                    predictLatencies.Add(sw.Elapsed.TotalMilliseconds);
                }
            }

            return (rawLatencies.Order().ElementAt(rawLatencies.Count / 2), predictLatencies.Order().ElementAt(predictLatencies.Count / 2));
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
            var runtime = BackboneRuntime.Open(KnownBackbones.ResNet18, FeatureLayout.Pooled, null);
            using var session = runtime.OpenSession(SessionProfile.Latency);
            var rgb = new byte[224 * 224 * 3];
            var tensor = new float[runtime.TensorLength];
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
                    runtime.Preprocess(rgb, tensor);
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
                ("Raw ONNX Runtime, 1 thread x 1 run per core (images/s)", F(r["ortRawConcurrentImagesPerSecond"]), $"raw ORT = the best of the three: {F(r["ortRawImagesPerSecond"])}"),
                ("Naive ML.NET pipeline (images/s)", F(r["naiveMlNetImagesPerSecond"]), string.Empty),
                ("PretrainedKit cold, end to end (images/s)", F(r["coldImagesPerSecond"]), $"{r["coldOverOrtRaw"]:F2}x raw ORT, {r["coldOverOrtRawBatch"]:F2}x raw ORT batch 1/8 (target >= 0.90), {r["coldOverNaiveMlNet"]:F2}x naive (target >= 1.5); median of per-round ratios"),
                ("PretrainedKit warm cache (images/s)", F(r["warmCacheImagesPerSecond"]), $"{r["warmOverCold"]:F0}x cold (target >= 100)"),
                ("Raw ORT latency p50, batch 1 (ms)", F(r["ortRawLatencyMsP50"]), string.Empty),
                ("Predict latency p50, one file (ms)", F(r["predictLatencyMsP50"]), $"{r["predictOverOrtRawLatency"]:F2}x raw (target <= 1.15); median of per-round ratios"),
            };
            if (!options.NoRss)
            {
                rows = [.. rows, ($"Peak RSS, {options.RssSmall} images (MB)", F(r["peakRssMb500"]), string.Empty), ($"Peak RSS, {options.RssLarge} images (MB)", F(r["peakRssMb5000"]), $"{r["peakRssMb5000"] / r["peakRssMb500"]:F2}x (target <= 1.30)")];
            }

            if (!options.NoInt8)
            {
                rows = [.. rows, ("PretrainedKit int8 cold, end to end (images/s)", F(r["int8ImagesPerSecond"]), $"{r["int8OverOrtRaw"]:F2}x best raw FP32 ORT (target >= 2.5), {r["int8OverCold"]:F2}x FP32 cold")];
                if (r.TryGetValue("pytorchInt8ImagesPerSecond", out var torchInt8))
                {
                    rows = [.. rows, ("PyTorch int8 (FX, onednn), end to end batch 1 (images/s)", F(torchInt8), $"int8 ours / PyTorch int8 {r["int8OverPytorchInt8"]:F2} (target > 1); PyTorch FP32 {F(r["pytorchFp32ImagesPerSecond"])}")];
                }
            }

            var w = rows.Max(x => x.Name.Length);
            Console.WriteLine();
            Console.WriteLine($"Medians over {options.Rounds} rounds, each interleaving raw ORT and PretrainedKit in blocks of {options.Block} images (memory: one fresh process each).");
            Console.WriteLine($"| {"Measure".PadRight(w)} | {"Value",8} | Check |");
            Console.WriteLine($"|{new string('-', w + 2)}|{new string('-', 10)}|-------|");
            foreach (var (name, value, check) in rows)
            {
                Console.WriteLine($"| {name.PadRight(w)} | {value,8} | {check} |");
            }
        }
    }
}
