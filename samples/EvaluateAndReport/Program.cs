using PretrainedKit;
using PretrainedKit.Reporting;

// Usage: EvaluateAndReport [DATASET [REPORT.html]]; DATASET holds train/ and test/, one sub-folder per class.
var root = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "../../../../../assets/fashion-mnist");
var output = args.Length > 1 ? args[1] : "report.html";

using var model = await ImageClassifier.Create()
    .FromFolder(Path.Combine(root, "train"))
    .WithSeed(1)
    .TrainAsync();

// Evaluate on the test folder and write one self-contained HTML page (open it in any browser, offline).
var evaluation = await model.WriteHtmlReportAsync(Path.Combine(root, "test"), output, new HtmlReportOptions { WorstMistakes = 12 });

Console.WriteLine($"Test accuracy {evaluation.Metrics.MicroAccuracy:P1} on {evaluation.Metrics.Count} images; {evaluation.Skipped.Count} skipped.");
foreach (var image in evaluation.Images.Where(i => !i.IsCorrect).OrderByDescending(i => i.Loss).Take(3))
{
    Console.WriteLine($"  worst: {Path.GetFileName(image.Path)} is {image.Label}, predicted {image.PredictedLabel} ({image.PredictedProbability:P0})");
}

Console.WriteLine($"Report: {Path.GetFullPath(output)}");
