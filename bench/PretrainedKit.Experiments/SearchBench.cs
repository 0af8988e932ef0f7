using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using PretrainedKit.Caching;
using PretrainedKit.Search;

namespace PretrainedKit.Experiments;

/// <summary>
/// Issue #16's search evidence, through the public API only (<see cref="ImageEmbedder.Open"/>, <see cref="ImageIndex.BuildAsync(ImageEmbedder, IEnumerable{string}, IProgress{Training.TrainingProgress}, CancellationToken)"/>,
/// <see cref="ImageIndex.Search(ReadOnlySpan{float}, int)"/>, Save/Load): Fashion-MNIST's official 10k test set as one
/// index and the 60k training set as another. Per index: build time with an empty feature cache (cold: every image
/// decoded and run through the backbone) and again with a full one (warm), file size, save and load time, precision@10
/// of same-class neighbours (the image itself left out), and the time of one query: the exact search alone (the query's
/// features already computed, e.g. read from the cache), reading one image's features from the cache, and embedding an
/// image from its file (the latency path, which never uses the cache).
/// </summary>
internal static class SearchBench
{
    private const int TimedQueries = 200;
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private static readonly string[] Columns = ["index", "images", "buildSecondsCold", "buildImagesPerSecondCold", "buildSecondsWarm", "fileBytes", "saveSeconds", "loadSeconds", "precisionAt10", "searchMsMean", "searchMsP50", "searchMsP95", "queryMsFeaturesCachedP50", "queryMsFeaturesComputedP50"];

    public static async Task<int> RunAsync(string work, Dataset train, Dataset test, string outDir, string machine, int[] sizes)
    {
        var cacheDir = Path.GetFullPath(Path.Combine(work, "..", "search-cache"));
        var results = new List<Dictionary<string, object>>();
        foreach (var size in sizes)
        {
            var (name, folder, data) = size <= test.Labels.Length ? ("fashion-mnist test", Path.Combine(work, "test"), test) : ("fashion-mnist train", Path.Combine(work, "train"), train);
            var count = Math.Min(size, data.Labels.Length);
            var paths = BothFeaturizer.WritePngs(folder, data, Enumerable.Range(0, count));
            var labelOf = paths.Select((p, i) => (p, (int)data.Labels[i])).ToDictionary(x => x.p, x => x.Item2, StringComparer.Ordinal);

            // Cold: a cache of its own, emptied first, so every image is decoded and run through the backbone.
            var cache = Path.Combine(cacheDir, $"n{count}");
            if (Directory.Exists(cache))
            {
                Directory.Delete(cache, recursive: true);
            }

            using var embedder = ImageEmbedder.Open(featureCache: new FeatureCacheOptions { Directory = cache, MaxBytes = 4L << 30 });
            var sw = Stopwatch.StartNew();
            var index = await ImageIndex.BuildAsync(embedder, paths);
            var cold = sw.Elapsed.TotalSeconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: {index.Count} images indexed cold in {cold:F1} s ({index.Count / cold:F1} images/s), {index.Skipped.Count} skipped"));
            sw.Restart();
            var warmIndex = await ImageIndex.BuildAsync(embedder, paths);
            var warm = sw.Elapsed.TotalSeconds;
            var same = warmIndex.Vectors.Span.SequenceEqual(index.Vectors.Span);

            var file = Path.Combine(Path.GetTempPath(), $"pk-search-bench-{count}.pkindex");
            sw.Restart();
            index.Save(file);
            var save = sw.Elapsed.TotalSeconds;
            var bytes = new FileInfo(file).Length;
            sw.Restart();
            var loaded = ImageIndex.Load(file);
            var load = sw.Elapsed.TotalSeconds;
            File.Delete(file);

            // Precision@10 over every indexed image (at most 2,000 queries, seeded), the image itself left out; each search timed.
            var queries = Enumerable.Range(0, loaded.Count).ToArray();
            if (queries.Length > 2000)
            {
                new Random(16).Shuffle(queries);
                queries = queries.Take(2000).ToArray();
            }

            var times = new List<double>(queries.Length);
            double precision = 0;
            var vectors = loaded.Vectors;
            foreach (var q in queries)
            {
                var vector = vectors.Span.Slice(q * loaded.Dimension, loaded.Dimension).ToArray();
                var t = Stopwatch.GetTimestamp();
                var hits = loaded.Search(vector, 11);
                times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                var label = labelOf[loaded.Paths[q]];
                precision += hits.Where(h => h.Path != loaded.Paths[q]).Take(10).Count(h => labelOf[h.Path] == label) / 10.0;
            }

            precision /= queries.Length;

            // One query from a file: features from the cache (the many-image pass, a hit) or computed (the latency path).
            var sample = queries.Take(TimedQueries).Select(q => loaded.Paths[q]).ToList();
            var cachedMs = new List<double>();
            var computedMs = new List<double>();
            _ = embedder.Embed(sample[0]);
            foreach (var path in sample)
            {
                var t = Stopwatch.GetTimestamp();
                var fromCache = (await embedder.EmbedBatchAsync([path]))[0].Vector!;
                _ = loaded.Search(fromCache, 10);
                cachedMs.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                t = Stopwatch.GetTimestamp();
                _ = loaded.Search(embedder.Embed(path), 10);
                computedMs.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }

            var result = new Dictionary<string, object>
            {
                ["index"] = name,
                ["images"] = loaded.Count,
                ["dimension"] = loaded.Dimension,
                ["embeddingId"] = loaded.EmbeddingId,
                ["buildSecondsCold"] = Math.Round(cold, 2),
                ["buildImagesPerSecondCold"] = Math.Round(loaded.Count / cold, 1),
                ["buildSecondsWarm"] = Math.Round(warm, 2),
                ["warmEqualsCold"] = same,
                ["fileBytes"] = bytes,
                ["saveSeconds"] = Math.Round(save, 3),
                ["loadSeconds"] = Math.Round(load, 3),
                ["precisionAt10"] = Math.Round(precision, 4),
                ["precisionQueries"] = queries.Length,
                ["searchMsMean"] = Math.Round(times.Average(), 3),
                ["searchMsP50"] = Math.Round(Percentile(times, 0.5), 3),
                ["searchMsP95"] = Math.Round(Percentile(times, 0.95), 3),
                ["queryMsFeaturesCachedP50"] = Math.Round(Percentile(cachedMs, 0.5), 2),
                ["queryMsFeaturesComputedP50"] = Math.Round(Percentile(computedMs, 0.5), 2),
                ["timedFileQueries"] = sample.Count,
            };
            results.Add(result);
            Console.WriteLine(JsonSerializer.Serialize(result));
            Write(results, outDir, machine);
        }

        return 0;
    }

    /// <summary>
    /// Search at sizes whose cold featurisation this shared machine cannot afford in one sitting: the ResNet18 pooled
    /// features the earlier experiments keep in their feature store (checked equal to the library's), embedded as
    /// <see cref="ImageEmbedder.Open"/> embeds them. A real index of every stored Fashion-MNIST image (the 10k test set and
    /// the cached training images) for precision@10, and an index of 60,000 rows made by repeating those embeddings, for
    /// time and size only (search time does not depend on the values; precision there would mean nothing).
    /// </summary>
    public static int RunStore(Dictionary<int, Features> trainFeatures, Dictionary<int, Features> testFeatures, Dataset train, Dataset test, string outDir, string machine)
    {
        using var embedder = ImageEmbedder.Open(featureCache: FeatureCacheOptions.Disabled);
        var keys = testFeatures.Keys.Order().Select(k => (Key: k, Test: true)).Concat(trainFeatures.Keys.Order().Select(k => (Key: k, Test: false))).ToList();
        var vectors = keys.Select(k => ImageEmbedder.Embedding((k.Test ? testFeatures : trainFeatures)[k.Key].Pooled[0], null)).ToList();
        var labels = keys.Select(k => (int)(k.Test ? test.Labels[k.Key] : train.Labels[k.Key])).ToArray();
        var results = new List<Dictionary<string, object>>();
        foreach (var (name, size, real) in new[] { ("stored fashion-mnist (real)", vectors.Count, true), ("60,000 rows (stored embeddings repeated)", 60000, false) })
        {
            var matrix = new float[(long)size * embedder.Dimension];
            for (var i = 0; i < size; i++)
            {
                vectors[i % vectors.Count].CopyTo(matrix, i * embedder.Dimension);
            }

            var paths = Enumerable.Range(0, size).Select(i => $"/fashion-mnist/{i:D5}.png").ToArray();
            var index = new ImageIndex(embedder.Space, paths, matrix, embedder.Dimension, [], 0);
            var file = Path.Combine(Path.GetTempPath(), $"pk-search-store-{size}.pkindex");
            var sw = Stopwatch.StartNew();
            index.Save(file);
            var save = sw.Elapsed.TotalSeconds;
            var bytes = new FileInfo(file).Length;
            sw.Restart();
            var loaded = ImageIndex.Load(file);
            var load = sw.Elapsed.TotalSeconds;
            File.Delete(file);
            var queries = Enumerable.Range(0, size).ToArray();
            new Random(16).Shuffle(queries);
            queries = queries.Take(real ? 2000 : 500).ToArray();
            var times = new List<double>();
            double precision = 0;
            foreach (var q in queries)
            {
                var query = vectors[q % vectors.Count];
                var t = Stopwatch.GetTimestamp();
                var hits = loaded.Search(query, 11);
                times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                if (real)
                {
                    precision += hits.Where(h => h.Path != paths[q]).Take(10).Count(h => labels[int.Parse(h.Path[15..20], CultureInfo.InvariantCulture)] == labels[q]) / 10.0;
                }
            }

            var result = new Dictionary<string, object>
            {
                ["index"] = name,
                ["images"] = size,
                ["fileBytes"] = bytes,
                ["saveSeconds"] = Math.Round(save, 3),
                ["loadSeconds"] = Math.Round(load, 3),
                ["searchMsMean"] = Math.Round(times.Average(), 3),
                ["searchMsP50"] = Math.Round(Percentile(times, 0.5), 3),
                ["searchMsP95"] = Math.Round(Percentile(times, 0.95), 3),
                ["timedQueries"] = queries.Length,
            };
            if (real)
            {
                result["precisionAt10"] = Math.Round(precision / queries.Length, 4);
                result["testImages"] = testFeatures.Count;
                result["trainImages"] = trainFeatures.Count;
            }

            results.Add(result);
            Console.WriteLine(JsonSerializer.Serialize(result));
        }

        var document = new Dictionary<string, object>
        {
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " UTC",
            ["machine"] = machine,
            ["command"] = "dotnet run -c Release --project bench/PretrainedKit.Experiments -- --search-store",
            ["note"] = "Indexes made from the experiments' stored ResNet18 pooled features (equal to the library's), embedded as ImageEmbedder.Open does; the 60,000-row index repeats the stored embeddings and measures time and size only. Exact search; shared 2-core machine.",
            ["results"] = results,
        };
        File.WriteAllText(Path.Combine(outDir, "search-bench-store.json"), JsonSerializer.Serialize(document, Indented));
        return 0;
    }

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        return sorted[(int)Math.Min(sorted.Length - 1, Math.Round(p * (sorted.Length - 1)))];
    }

    private static void Write(List<Dictionary<string, object>> results, string outDir, string machine)
    {
        var document = new Dictionary<string, object>
        {
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " UTC",
            ["machine"] = machine,
            ["command"] = "dotnet run -c Release --project bench/PretrainedKit.Experiments -- --search",
            ["note"] = "Exact search (TensorPrimitives dot products over every indexed embedding, top-k heap). Embeddings: ResNet18 pooled features, L2-normalised (ImageEmbedder.Open). Times on a shared 2-core machine with two other agents building and testing.",
            ["results"] = results,
        };
        File.WriteAllText(Path.Combine(outDir, "search-bench.json"), JsonSerializer.Serialize(document, Indented));
        var csv = new StringBuilder(string.Join(",", Columns) + "\n");
        foreach (var r in results)
        {
            csv.AppendLine(string.Join(",", Columns.Select(k => Convert.ToString(r[k], CultureInfo.InvariantCulture))));
        }

        File.WriteAllText(Path.Combine(outDir, "search-bench.csv"), csv.ToString());
    }
}
