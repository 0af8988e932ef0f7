using System.Text.Json;

namespace PretrainedKit.Benchmarks;

/// <summary>
/// Figures the headline benchmark JSON carries but does not measure itself: they come from the files of slower, separate
/// runs under bench/results (the int8 accuracy of <c>bench/PretrainedKit.Experiments -- --int8</c>, the cache-scale run
/// of <c>-- --cache-scale</c>), copied as they are.
/// </summary>
internal static class CopiedFigures
{
    private static string Results => Path.Combine(BenchImages.FindRepositoryRoot(), "bench", "results");

    /// <summary>The numeric figures of int8-accuracy.json, under their own names.</summary>
    public static Dictionary<string, double> Int8Accuracy() =>
        Numbers(Path.Combine(Results, "int8-accuracy.json"), string.Empty, "run bench/PretrainedKit.Experiments -- --int8");

    /// <summary>The numeric figures of the newest quiet-machine cache-scale file (cache-scale-packs-DATE.json), each name prefixed with "cacheScale".</summary>
    public static Dictionary<string, double> CacheScale() =>
        Numbers(Directory.Exists(Results) ? Directory.GetFiles(Results, "cache-scale-packs-2*.json").Order(StringComparer.Ordinal).LastOrDefault() : null, "cacheScale", "run this benchmark with --cache-scale 10000,100000,1000000");

    private static Dictionary<string, double> Numbers(string? path, string prefix, string howToWrite)
    {
        var results = new Dictionary<string, double>();
        if (path is null || !File.Exists(path))
        {
            Console.WriteLine($"Not in this JSON: {(path is null ? "no cache-scale file" : path)}; {howToWrite} to write it.");
            return results;
        }

        using var document = JsonDocument.Parse(File.ReadAllText(path));
        foreach (var property in document.RootElement.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Number))
        {
            var name = prefix.Length == 0 ? property.Name : prefix + char.ToUpperInvariant(property.Name[0]) + property.Name[1..];
            results[name] = property.Value.GetDouble();
        }

        Console.WriteLine($"Copied {results.Count} figures from {Path.GetFileName(path)}.");
        return results;
    }
}
