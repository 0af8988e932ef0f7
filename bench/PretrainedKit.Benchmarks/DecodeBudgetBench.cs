using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PretrainedKit.Imaging;

namespace PretrainedKit.Benchmarks;

/// <summary>
/// Interleaved A/B of the decode memory budget on ordinary images: read and decode every image on one thread per core
/// with the budget effectively unlimited (A) and at its default (B), alternating blocks (AB, BA, AB, ...) for several
/// rounds in one process, because this shared VM's speed drifts from minute to minute. Also checks that both settings
/// give byte-identical pixels. Usage: <c>-- --decode-budget [--count 400] [--rounds 6] [--json FILE] [--md FILE]</c>.
/// </summary>
internal static class DecodeBudgetBench
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static int Run(string[] args)
    {
        string? Value(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        var count = Value("--count") is { } c ? int.Parse(c, CultureInfo.InvariantCulture) : 400;
        var rounds = Value("--rounds") is { } r ? int.Parse(r, CultureInfo.InvariantCulture) : 6;
        var root = BenchImages.FindRepositoryRoot();
        var json = Value("--json") ?? Path.Combine(root, "bench", "results", "decode-budget.json");
        var md = Value("--md") ?? Path.ChangeExtension(json, ".md");
        var work = Path.Combine(Path.GetTempPath(), $"pretrainedkit-decode-budget-{Environment.ProcessId}");
        try
        {
            var images = BenchImages.Generate(work, count);
            var unlimited = 1L << 50;
            var defaultBudget = ImageLimits.DefaultDecodeMemoryBudgetBytes;

            // Same pixels either way.
            ImageLimits.DecodeMemoryBudgetBytes = unlimited;
            var a = DecodeAll(images);
            ImageLimits.DecodeMemoryBudgetBytes = defaultBudget;
            var b = DecodeAll(images);
            var identical = a.Zip(b).All(p => p.First.AsSpan().SequenceEqual(p.Second));

            Block(images, unlimited); // Warm-up.
            Block(images, defaultBudget);
            var results = new List<(int Round, string Setting, double ImagesPerSecond)>();
            for (var round = 0; round < rounds; round++)
            {
                var order = round % 2 == 0 ? new[] { ("unlimited", unlimited), ("default", defaultBudget) } : new[] { ("default", defaultBudget), ("unlimited", unlimited) };
                foreach (var (name, budget) in order)
                {
                    results.Add((round, name, Block(images, budget)));
                }
            }

            double Median(string setting) => Median2(results.Where(x => x.Setting == setting).Select(x => x.ImagesPerSecond).ToList());
            var ratios = Enumerable.Range(0, rounds).Select(i => results.Single(x => x.Round == i && x.Setting == "default").ImagesPerSecond / results.Single(x => x.Round == i && x.Setting == "unlimited").ImagesPerSecond).ToList();
            var (model, flags) = Cpu();
            var document = new
            {
                date = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                cpu = model,
                cpuFlags = flags,
                cores = Environment.ProcessorCount,
                images = count,
                imageKind = "256x256 JPEG (q90) made from assets/fashion-mnist, read from disk and decoded to 224x224 RGB",
                threads = Environment.ProcessorCount,
                defaultBudgetBytes = defaultBudget,
                unlimitedBudgetBytes = unlimited,
                pixelsIdentical = identical,
                rounds = results.Select(x => new { round = x.Round, setting = x.Setting, imagesPerSecond = Math.Round(x.ImagesPerSecond, 1) }),
                medianImagesPerSecond = new { unlimited = Math.Round(Median("unlimited"), 1), @default = Math.Round(Median("default"), 1) },
                medianRatioDefaultOverUnlimited = Math.Round(Median2(ratios), 3),
                ratioRange = new[] { Math.Round(ratios.Min(), 3), Math.Round(ratios.Max(), 3) },
            };
            File.WriteAllText(json, JsonSerializer.Serialize(document, Indented) + Environment.NewLine);

            var table = new System.Text.StringBuilder();
            table.AppendLine("# Decode memory budget: throughput A/B");
            table.AppendLine();
            table.AppendLine(CultureInfo.InvariantCulture, $"{document.date}, {model} ({flags}), {Environment.ProcessorCount} cores; {count} images ({document.imageKind}), {Environment.ProcessorCount} threads; blocks alternate AB/BA over {rounds} rounds in one process. Pixels identical under both settings: {(identical ? "yes" : "NO")}.");
            table.AppendLine();
            table.AppendLine("| Round | Unlimited budget (images/s) | Default budget, " + FormatMib(defaultBudget) + " (images/s) | Ratio |");
            table.AppendLine("|---|---|---|---|");
            for (var i = 0; i < rounds; i++)
            {
                table.AppendLine(CultureInfo.InvariantCulture, $"| {i + 1} | {results.Single(x => x.Round == i && x.Setting == "unlimited").ImagesPerSecond:F1} | {results.Single(x => x.Round == i && x.Setting == "default").ImagesPerSecond:F1} | {ratios[i]:F3} |");
            }

            table.AppendLine(CultureInfo.InvariantCulture, $"| **Median** | **{Median("unlimited"):F1}** | **{Median("default"):F1}** | **{Median2(ratios):F3}** |");
            table.AppendLine();
            table.AppendLine("Reproduce: `dotnet run -c Release --project bench/PretrainedKit.Benchmarks -- --decode-budget`.");
            File.WriteAllText(md, table.ToString());
            Console.WriteLine(table);
            return identical ? 0 : 1;
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    private static double Block(List<string> images, long budget)
    {
        ImageLimits.DecodeMemoryBudgetBytes = budget;
        var watch = Stopwatch.StartNew();
        DecodeAll(images);
        return images.Count / watch.Elapsed.TotalSeconds;
    }

    private static byte[][] DecodeAll(List<string> images)
    {
        var output = new byte[images.Count][];
        Parallel.For(0, images.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var rgb = new byte[224 * 224 * 3];
            ImageDecoder.DecodeNormalized(ImageDecoder.ReadFile(images[i]), images[i], ImagePreprocessingOptions.Default, 224, 224, rgb);
            output[i] = rgb;
        });
        return output;
    }

    private static double Median2(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string FormatMib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024 * 1024):N0} MiB");

    /// <summary>The CPU model and whether it has AVX2, AVX-512F and VNNI, from <c>/proc/cpuinfo</c> (what <c>lscpu</c> reads).</summary>
    internal static (string Model, string Flags) Cpu()
    {
        if (!File.Exists("/proc/cpuinfo"))
        {
            return ("unknown", "unknown");
        }

        var lines = File.ReadAllLines("/proc/cpuinfo");
        var model = lines.FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        var flags = (lines.FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(':', 2)[1] ?? string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        string Has(string flag) => $"{flag} {(flags.Contains(flag) ? "yes" : "no")}";
        return (model, string.Join(", ", Has("avx2"), Has("avx512f"), Has("avx512_vnni"), Has("avx_vnni")));
    }
}
