using System.CommandLine;
using System.Globalization;
using PretrainedKit.Backbones;
using PretrainedKit.Data;
using PretrainedKit.Imaging;
using PretrainedKit.Reporting;
using PretrainedKit.Serialization;
using PretrainedKit.Models;
using PretrainedKit.Training;

namespace PretrainedKit.Cli;

/// <summary>The <c>report</c> command: evaluate a model on a labelled folder and write one self-contained HTML page.</summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file written by 'train'." };
        var data = new Argument<string>("DATA_DIR") { Description = "A labelled folder: one sub-folder per class, named as the model's classes." };
        var output = new Option<string>("--out", "-o") { Description = "The HTML file to write (self-contained; its folder must exist).", DefaultValueFactory = _ => "report.html" };
        var worst = new Option<int>("--worst") { Description = "How many of the worst mistakes to show as thumbnails (0 to 1000).", DefaultValueFactory = _ => HtmlReportOptions.DefaultWorstMistakes };
        var pairs = new Option<int>("--pairs") { Description = "How many of the most-confused class pairs to list (0 to 1000).", DefaultValueFactory = _ => HtmlReportOptions.DefaultConfusedPairs };
        var title = new Option<string?>("--title") { Description = "The page title." };
        var quiet = new Option<bool>("--quiet") { Description = "Print only errors." };
        var command = new Command(
            "report",
            "Evaluate a model on a labelled folder and write a self-contained HTML report (metrics, per-class table, confusion matrix, most-confused pairs, worst mistakes with thumbnails, skipped files). Example: pretrainedkit report pets.pkmodel photos-test --out report.html")
        {
            model, data, output, worst, pairs, title, quiet,
        };
        command.SetAction((parse, cancellationToken) => Commands.Run(async () =>
        {
            foreach (var (option, value) in new[] { (worst, parse.GetValue(worst)), (pairs, parse.GetValue(pairs)) })
            {
                if (value is < 0 or > 1000)
                {
                    throw new ArgumentException($"{option.Name} must be from 0 to 1000, not {value}.");
                }
            }

            var options = new HtmlReportOptions { WorstMistakes = parse.GetValue(worst), ConfusedPairs = parse.GetValue(pairs) };
            if (parse.GetValue(title) is { } t)
            {
                options = options with { Title = t };
            }

            options.Validate();
            var outPath = Path.GetFullPath(parse.GetValue(output)!);
            using var loaded = ImageClassifier.Load(parse.GetValue(model)!);
            var evaluation = await loaded.WriteHtmlReportAsync(parse.GetValue(data)!, outPath, options, null, cancellationToken);
            if (!parse.GetValue(quiet))
            {
                var m = evaluation.Metrics;
                var ci = CultureInfo.InvariantCulture;
                Console.WriteLine($"Report written to {outPath}");
                Console.WriteLine($"{m.Count} images, accuracy {m.MicroAccuracy.ToString("F3", ci)}, macro accuracy {m.MacroAccuracy.ToString("F3", ci)}, log-loss {m.LogLoss.ToString("F3", ci)}; {evaluation.Skipped.Count} skipped, {evaluation.IgnoredFileCount} ignored.");
            }

            return 0;
        }));
        return command;
    }
}
