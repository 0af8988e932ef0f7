using System.Globalization;
using PretrainedKit;

// Classify every image in a folder (recursively) and write one CSV row per image.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: PredictFolder MODEL FOLDER [OUT.csv]");
    return 2;
}

using var model = ImageClassifier.Load(args[0]);
var output = args.Length > 2 ? args[2] : "predictions.csv";
var images = Directory.EnumerateFiles(args[1], "*.*", SearchOption.AllDirectories)
    .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".jpg" or ".jpeg" or ".png" or ".bmp" or ".gif" or ".webp")
    .Order(StringComparer.Ordinal);

using var csv = new StreamWriter(output);
csv.WriteLine("path,label,probability,top3,error");
int rows = 0, failed = 0;
foreach (var chunk in images.Chunk(64))
{
    // One result per image, in order: a bad image is a row with its reason, never the end of the run.
    foreach (var result in await model.PredictBatchAsync(chunk, topK: 3))
    {
        rows++;
        if (result.Succeeded)
        {
            var p = result.Prediction;
            var top3 = string.Join(" ", p.TopK.Select(t => $"{t.Label}:{t.Probability.ToString("F4", CultureInfo.InvariantCulture)}"));
            csv.WriteLine($"{Csv(result.Path!)},{Csv(p.Label)},{p.Probability.ToString("F6", CultureInfo.InvariantCulture)},{Csv(top3)},");
        }
        else
        {
            failed++;
            csv.WriteLine($"{Csv(result.Path!)},,,,{Csv(result.Error!.Message)}");
        }
    }
}

Console.WriteLine($"Wrote {rows} rows ({failed} unreadable) to {Path.GetFullPath(output)}");
return 0;

static string Csv(string value) => value.IndexOfAny([',', '"', '\n', '\r']) < 0 ? value : $"\"{value.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
