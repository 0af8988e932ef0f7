using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using PretrainedKit.Backbones;
using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Imaging;
using PretrainedKit.Prediction;
using PretrainedKit.Serialization;
using PretrainedKit.Training;

namespace PretrainedKit.Cli;

internal static partial class Commands
{
    private const int UserError = 2;

    public static Command Train()
    {
        var data = new Argument<string>("DATA_DIR") { Description = "Folder with one sub-folder per class (images may be nested below a class folder)." };
        var model = new Option<string>("--model") { Description = "Where to write the model file (written atomically).", Required = true };
        var testDir = new Option<string?>("--test-dir") { Description = "A labelled folder to report metrics on instead of the validation split." };
        var split = new Option<double>("--validation-split") { Description = "Fraction of each class held out for validation.", DefaultValueFactory = _ => ImageClassifierOptions.DefaultValidationFraction };
        var seed = new Option<int>("--seed") { Description = "Seed for the split and the trainer.", DefaultValueFactory = _ => 1 };
        var metrics = new Option<string?>("--metrics") { Description = "Write the metrics as JSON to this file." };
        var strict = new Option<bool>("--strict") { Description = "Fail on any bad image, naming all of them, instead of skipping them." };
        var quiet = new Option<bool>("--quiet") { Description = "Print only errors." };
        var command = new Command("train", "Train a classifier. Example: pretrainedkit train photos --model pets.pkmodel --test-dir photos-test --metrics metrics.json")
        {
            data, model, testDir, split, seed, metrics, strict, quiet,
        };
        command.SetAction((parse, cancellationToken) => Run(async () =>
        {
            var isQuiet = parse.GetValue(quiet);
            var builder = ImageClassifier.Create()
                .FromFolder(parse.GetValue(data)!)
                .WithSeed(parse.GetValue(seed))
                .WithValidationSplit(parse.GetValue(split))
                .WithStrictMode(parse.GetValue(strict));
            var progress = new PhasePrinter(isQuiet);
            using var trained = await builder.TrainAsync(progress, cancellationToken);
            var report = trained.TrainingReport!;
            trained.Save(parse.GetValue(model)!);

            ClassificationMetrics? shown = report.ValidationMetrics;
            var on = "validation";
            var skipped = report.Skipped.ToList();
            var ignored = report.IgnoredFileCount;
            var seconds = MetricsDocument.Seconds(report.PhaseDurations).ToDictionary();
            if (parse.GetValue(testDir) is { } test)
            {
                var evaluation = await trained.EvaluateAsync(test, progress, cancellationToken);
                shown = evaluation.Metrics;
                on = "test";
                skipped.AddRange(evaluation.Skipped);
                ignored += evaluation.IgnoredFileCount;
                seconds["testEvaluation"] = Math.Round(evaluation.Elapsed.TotalSeconds, 3);
            }

            if (!isQuiet)
            {
                Console.WriteLine($"Model written to {Path.GetFullPath(parse.GetValue(model)!)}");
                Console.WriteLine($"Classes: {report.Classes.Count}; images used: {report.ImagesUsed} ({string.Join(", ", report.Counts.Select(c => $"{c.Label} {c.Training}+{c.Validation}"))})");
                PrintSkipped(skipped, ignored);
                foreach (var warning in report.Warnings)
                {
                    Console.WriteLine($"warning: {warning}");
                }

                if (shown is not null)
                {
                    PrintMetrics(on, shown);
                }
                else
                {
                    Console.WriteLine("No validation images (validation split 0 and no --test-dir): no metrics.");
                }
            }

            if (parse.GetValue(metrics) is { } metricsPath)
            {
                if (shown is null)
                {
                    throw new UserException("--metrics needs validation or test images: use --validation-split above 0 or --test-dir.");
                }

                JsonOutput.WriteFile(metricsPath, MetricsDocument.Create(on, shown, skipped, ignored, report.ImagesUsed, seconds));
            }
        }));
        return command;
    }

    public static Command Evaluate()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file written by 'train'." };
        var data = new Argument<string>("DATA_DIR") { Description = "A labelled folder: one sub-folder per class." };
        var metrics = new Option<string?>("--metrics") { Description = "Write the metrics as JSON to this file." };
        var quiet = new Option<bool>("--quiet") { Description = "Print only errors." };
        var command = new Command("evaluate", "Evaluate a model on a labelled folder. Example: pretrainedkit evaluate pets.pkmodel photos-test --metrics metrics.json")
        {
            model, data, metrics, quiet,
        };
        command.SetAction((parse, cancellationToken) => Run(async () =>
        {
            using var loaded = ImageClassifier.Load(parse.GetValue(model)!);
            var evaluation = await loaded.EvaluateAsync(parse.GetValue(data)!, new PhasePrinter(parse.GetValue(quiet)), cancellationToken);
            if (!parse.GetValue(quiet))
            {
                PrintSkipped(evaluation.Skipped, evaluation.IgnoredFileCount);
                PrintMetrics("test", evaluation.Metrics);
            }

            if (parse.GetValue(metrics) is { } metricsPath)
            {
                var seconds = new Dictionary<string, double> { ["evaluation"] = Math.Round(evaluation.Elapsed.TotalSeconds, 3) };
                JsonOutput.WriteFile(metricsPath, MetricsDocument.Create("test", evaluation.Metrics, evaluation.Skipped, evaluation.IgnoredFileCount, evaluation.Metrics.Count, seconds));
            }
        }));
        return command;
    }

    public static Command Predict()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file written by 'train'." };
        var target = new Argument<string>("IMAGE_OR_DIR") { Description = "An image file, or a folder whose images (searched recursively) are all classified." };
        var top = new Option<int>("--top") { Description = "How many classes to show per image.", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per line and image: {path, predictions: [{label, probability}]}." };
        var command = new Command("predict", "Classify images. Example: pretrainedkit predict pets.pkmodel new-photos --top 3 --json")
        {
            model, target, top, json,
        };
        command.SetAction((parse, cancellationToken) => Run(() =>
        {
            var k = parse.GetValue(top);
            if (k < 1)
            {
                throw new UserException("--top must be at least 1.");
            }

            using var loaded = ImageClassifier.Load(parse.GetValue(model)!);
            var path = Path.GetFullPath(parse.GetValue(target)!);
            List<string> files;
            if (Directory.Exists(path))
            {
                files = Directory.EnumerateFiles(path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
                    .Where(f => ImageExtensions.Contains(Path.GetExtension(f)))
                    .OrderBy(f => f, StringComparer.Ordinal)
                    .ToList();
                if (files.Count == 0)
                {
                    throw new UserException($"'{path}' holds no image file (.jpg, .jpeg, .png, .bmp, .gif, .webp).");
                }
            }
            else if (File.Exists(path))
            {
                files = [path];
            }
            else
            {
                throw new UserException($"'{path}' does not exist. Give an image file or a folder of images.");
            }

            var failures = 0;
            foreach (var file in files)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    var p = loaded.Predict(file, k);
                    if (parse.GetValue(json))
                    {
                        var doc = new PredictionDocument(file, p.TopK.Select(t => new LabelDocument(t.Label, Math.Round(t.Probability, 6))).ToList());
                        Console.WriteLine(JsonSerializer.Serialize(doc, JsonOutput.Line));
                    }
                    else
                    {
                        Console.WriteLine($"{file}: {string.Join(", ", p.TopK.Select(t => $"{t.Label} {t.Probability.ToString("P1", CultureInfo.InvariantCulture)}"))}");
                    }
                }
                catch (InvalidImageException ex)
                {
                    failures++;
                    Console.Error.WriteLine($"error: {ex.Message}");
                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(JsonSerializer.Serialize(new PredictionDocument(file, null, ex.Message), JsonOutput.Line));
                    }
                }
            }

            return Task.FromResult(failures == 0 ? 0 : UserError);
        }));
        return command;
    }

    private static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".webp" };

    private static Task<int> Run(Func<Task> action) => Run(async () =>
    {
        await action();
        return 0;
    });

    /// <summary>Runs a command, mapping user mistakes to a one-line message and exit code 2 (never a stack trace).</summary>
    private static async Task<int> Run(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (InvalidDatasetException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return UserError;
        }
        catch (Exception ex) when (ex is UserException or DirectoryNotFoundException or FileNotFoundException or ModelFormatException
                                       or InvalidImageException or BackboneNotFoundException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("Cancelled.");
            return 130;
        }
    }

    private static void PrintSkipped(IReadOnlyCollection<SkippedImage> skipped, int ignored)
    {
        if (skipped.Count > 0)
        {
            Console.WriteLine($"Skipped {skipped.Count} bad image{(skipped.Count == 1 ? string.Empty : "s")}:");
            foreach (var s in skipped)
            {
                Console.WriteLine($"  [{s.Reason}] {s.Message}");
            }
        }

        if (ignored > 0)
        {
            Console.WriteLine($"Ignored {ignored} file{(ignored == 1 ? string.Empty : "s")} without an image extension or outside class folders.");
        }
    }

    private static void PrintMetrics(string on, ClassificationMetrics m)
    {
        var ci = CultureInfo.InvariantCulture;
        Console.WriteLine($"Metrics on {m.Count} {on} images:");
        Console.WriteLine($"  micro accuracy {m.MicroAccuracy.ToString("F3", ci)}   macro accuracy {m.MacroAccuracy.ToString("F3", ci)}   log-loss {m.LogLoss.ToString("F3", ci)}");
        Console.WriteLine("  top-k accuracy " + string.Join("  ", m.TopKAccuracy.Select((a, i) => $"top-{i + 1} {a.ToString("F3", ci)}")));
        var width = Math.Max(5, m.Classes.Max(c => c.Length));
        Console.WriteLine($"  {"class".PadRight(width)}  precision  recall     f1  support");
        foreach (var c in m.PerClass)
        {
            Console.WriteLine($"  {c.Label.PadRight(width)}  {c.Precision.ToString("F3", ci),9}  {c.Recall.ToString("F3", ci),6}  {c.F1.ToString("F3", ci),5}  {c.Support,7}");
        }
    }

    private sealed class UserException(string message) : Exception(message);

    /// <summary>Prints one line per phase to stderr (stdout stays clean for results).</summary>
    private sealed class PhasePrinter(bool quiet) : IProgress<TrainingProgress>
    {
        private TrainingPhase? _last;
        private int _lastPercent = -1;

        public void Report(TrainingProgress value)
        {
            if (quiet)
            {
                return;
            }

            if (value.Phase != _last)
            {
                _last = value.Phase;
                _lastPercent = -1;
                if (value.Phase != TrainingPhase.Completed)
                {
                    Console.Error.WriteLine($"{value.Phase}...");
                }
            }

            if (value.Phase == TrainingPhase.Featurizing && value.Total > 0)
            {
                var percent = 100 * value.Completed / value.Total;
                if (percent / 25 != _lastPercent / 25)
                {
                    _lastPercent = percent;
                    Console.Error.WriteLine($"  {value.Completed}/{value.Total} images, {value.Elapsed.TotalSeconds:F0} s elapsed, ETA {value.EstimatedRemaining?.TotalSeconds ?? 0:F0} s");
                }
            }
        }
    }
}
