using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using PretrainedKit.Backbones;
using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Imaging;
using PretrainedKit.Serialization;
using PretrainedKit.Models;
using PretrainedKit.Training;
using Spectre.Console;

namespace PretrainedKit.Cli;

internal static partial class Commands
{
    private const int UserError = 2;

    /// <summary>How many images of a folder <c>predict</c> classifies in one batch (results are printed batch by batch).</summary>
    private const int PredictChunk = 32;

    public static Command Train()
    {
        var data = new Argument<string>("DATA_DIR") { Description = "Folder with one sub-folder per class (images may be nested below a class folder), or a .csv file with the header 'path,label' (paths relative to the CSV file's folder)." };
        var model = new Option<string>("--model") { Description = "Where to write the model file (written atomically).", Required = true };
        var testDir = new Option<string?>("--test-dir") { Description = "A labelled folder (or a .csv file with the header 'path,label') to report metrics on instead of the validation split." };
        var split = new Option<double>("--validation-split") { Description = "Fraction of each class held out for validation.", DefaultValueFactory = _ => ImageClassifierOptions.DefaultValidationFraction };
        var seed = new Option<int>("--seed") { Description = "Seed for the split and the trainer.", DefaultValueFactory = _ => 1 };
        var metrics = new Option<string?>("--metrics") { Description = "Write the metrics as JSON to this file." };
        var strict = new Option<bool>("--strict") { Description = "Fail on any bad image, naming all of them, instead of skipping them." };
        var unknownPrecision = new Option<double?>("--unknown-precision") { Description = "Answer 'unknown' below a top-probability threshold chosen on the validation images so that the answered ones are right this often (above 0, at most 1, e.g. 0.95). Needs a validation split." };
        var noCalibration = new Option<bool>("--no-calibration") { Description = "Keep the raw probabilities: do not fit a temperature on the validation images." };
        var features = new Option<FeatureLayout>("--features") { Description = "Which backbone activations become features: Pooled, MultiStage or MultiStageGrid. Not given: chosen automatically (see --no-auto).", DefaultValueFactory = _ => ImageClassifierOptions.Default.FeatureLayout };
        var augment = new Option<TrainingAugmentation>("--augment") { Description = "Extra views of each training image: None, Mirror, Crops or \"Mirror,Crops\" (each view costs one more backbone run). Not given: chosen automatically.", DefaultValueFactory = _ => ImageClassifierOptions.Default.Augmentation };
        var tta = new Option<TestTimeAugmentation>("--tta") { Description = "Views averaged per prediction, saved with the model: None or Mirror (twice the prediction time). Not given: chosen automatically (--single-view: None).", DefaultValueFactory = _ => ImageClassifierOptions.Default.TestTimeAugmentation };
        var normalize = new Option<FeatureNormalization>("--normalize") { Description = "How features are scaled before the final layer: Standardize, L2ThenStandardize or None. Not given: Standardize, or chosen automatically for pooled features.", DefaultValueFactory = _ => ImageClassifierOptions.Default.Normalization };
        var l2 = new Option<float>("--l2") { Description = "L2 regularisation of the final layer.", DefaultValueFactory = _ => LinearHeadOptions.Default.L2Regularization };
        var autoL2 = new Option<bool>("--auto-l2") { Description = "Choose the L2 regularisation by cross-validation on the training features (one-standard-error rule)." };
        var noAuto = new Option<bool>("--no-auto") { Description = "Do not choose the levers automatically: use the plain defaults (pooled features, linear head, L2 10, no augmentation) for every lever not given." };
        var noInspect = new Option<bool>("--no-inspect") { Description = "Do not inspect the training data (likely label errors, duplicates, leakage to the validation images, outliers); see 'inspect'." };
        var singleView = new Option<bool>("--single-view") { Description = "Automatic choice may not pick test-time mirroring: every prediction costs one backbone run." };
        var head = new Option<HeadKind>("--head") { Description = "What is trained on the features: Linear (a retrained final layer, L-BFGS) or Kernel (kernel ridge regression, at most 1,600 centres). Not given: a closed-form linear or kernel head chosen automatically.", DefaultValueFactory = _ => ImageClassifierOptions.Default.Head.Kind };
        var precision = new Option<Precision>("--precision") { Description = "The backbone's arithmetic, saved with the model: Float32, or Int8 (calibrated on up to 300 training images; faster on some CPUs, see the README; never chosen automatically).", DefaultValueFactory = _ => ImageClassifierOptions.Default.Precision };
        var (quiet, json) = OutputOptions("the metrics document (the same as --metrics writes)");
        var command = new Command("train", Help(
            "Train a classifier on a folder with one sub-folder per class, save it to one file and print metrics.",
            "pretrainedkit train photos --model pets.pkmodel",
            "pretrainedkit train photos --model pets.pkmodel --test-dir photos-test --metrics metrics.json",
            "pretrainedkit train labels.csv --model pets.pkmodel",
            "pretrainedkit train photos --model pets.pkmodel --validation-split 0.3 --seed 7 --strict --json > metrics.json",
            "pretrainedkit train photos --model pets.pkmodel --unknown-precision 0.95",
            "pretrainedkit train photos --model pets.pkmodel --single-view",
            "pretrainedkit train photos --model pets.pkmodel --no-auto",
            "pretrainedkit train photos --model pets.pkmodel --precision int8",
            "pretrainedkit train photos --model pets.pkmodel --features MultiStageGrid --augment Mirror --tta Mirror --auto-l2",
            "pretrainedkit train photos --model pets.pkmodel --features MultiStageGrid --augment Mirror --tta Mirror --head Kernel"))
        {
            data, model, testDir, split, seed, metrics, strict, unknownPrecision, noCalibration, features, augment, tta, normalize, l2, autoL2, head, noAuto, singleView, noInspect, precision, quiet, json,
        };
        command.SetAction((parse, cancellationToken) => Run(async () =>
        {
            var ui = new ConsoleUi(parse.GetValue(quiet), parse.GetValue(json));
            var builder = FromData(ImageClassifier.Create(), parse.GetValue(data)!)
                .WithSeed(parse.GetValue(seed))
                .WithValidationSplit(parse.GetValue(split))
                .WithStrictMode(parse.GetValue(strict))
                .WithCalibration(!parse.GetValue(noCalibration))
                .WithUnknownPrecisionTarget(parse.GetValue(unknownPrecision));
            // Only the levers given on the command line are set, so that automatic choice searches the others.
            var options = builder.Options with { Auto = !parse.GetValue(noAuto), SingleViewPrediction = parse.GetValue(singleView), InspectData = !parse.GetValue(noInspect), Precision = parse.GetValue(precision) };
            options = Given(parse, features) ? options with { FeatureLayout = parse.GetValue(features) } : options;
            options = Given(parse, augment) ? options with { Augmentation = parse.GetValue(augment) } : options;
            options = Given(parse, tta) ? options with { TestTimeAugmentation = parse.GetValue(tta) } : options;
            options = Given(parse, normalize) ? options with { Normalization = parse.GetValue(normalize) } : options;
            options = Given(parse, head) || Given(parse, l2) || parse.GetValue(autoL2)
                ? options with { Head = HeadFromOptions(parse.GetValue(head), Given(parse, l2), parse.GetValue(l2), parse.GetValue(autoL2)) }
                : options;
            builder.WithOptions(options);
            var modelPath = parse.GetValue(model)!;
            var (trained, evaluation) = await ui.WithProgressAsync(async progress =>
            {
                var trained = await builder.TrainAsync(progress, cancellationToken);
                try
                {
                    // An interrupt before the save leaves the old model file as it was. One that arrives during the save
                    // does not stop it: the save is atomic (temporary file, flush, rename) and takes milliseconds, so it
                    // completes, and is never abandoned halfway with a temporary file left behind.
                    cancellationToken.ThrowIfCancellationRequested();
                    trained.Save(modelPath);
                    try
                    {
                        var evaluation = parse.GetValue(testDir) is { } test ? await EvaluateData(trained, test, progress, cancellationToken) : null;
                        return (trained, evaluation);
                    }
                    catch (OperationCanceledException)
                    {
                        Console.Error.WriteLine($"The model had already been saved to {Path.GetFullPath(modelPath)}.");
                        throw;
                    }
                }
                catch
                {
                    trained.Dispose();
                    throw;
                }
            });
            using var disposeModel = trained;
            var report = trained.TrainingReport!;

            ClassificationMetrics? shown = report.ValidationMetrics;
            var on = "validation";
            var skipped = report.Skipped.ToList();
            var ignored = report.IgnoredFileCount;
            var seconds = MetricsDocument.Seconds(report.PhaseDurations).ToDictionary();
            if (evaluation is not null)
            {
                shown = evaluation.Metrics;
                on = "test";
                skipped.AddRange(evaluation.Skipped);
                ignored += evaluation.IgnoredFileCount;
                seconds["testEvaluation"] = Math.Round(evaluation.Elapsed.TotalSeconds, 3);
            }

            ui.Info($"Model written to {Path.GetFullPath(modelPath)}");
            ui.Info($"Classes: {report.Classes.Count}; images used: {report.ImagesUsed} ({string.Join(", ", report.Counts.Select(c => $"{c.Label} {c.Training}+{c.Validation}"))})");
            ui.Skipped(skipped, ignored);
            if (report.LeverSearch is { } search)
            {
                ui.LeverSearch(search);
            }

            var inspectCommand = $"pretrainedkit inspect {parse.GetValue(data)}{(parse.GetValue(testDir) is { } testFolder ? $" --test-dir {testFolder}" : string.Empty)}";
            if (report.Inspection is { HasFindings: true } findings)
            {
                ui.Warning($"Data: {findings.Summary}: run '{inspectCommand}' for the list.");
            }
            if (evaluation is { LeakedImages.Count: > 0 } leaking)
            {
                var first = leaking.LeakedImages[0];
                ui.Warning($"Leakage: {leaking.LeakedImages.Count} test image{(leaking.LeakedImages.Count == 1 ? " is a copy" : "s are copies")} of training images (for example {first.Path} = {first.TrainingPath}), so the test metrics overstate accuracy: run '{inspectCommand}' for the list and for near copies.");
            }
            else if (report.Inspection is { HasFindings: false } && evaluation is not null)
            {
                ui.Info($"Training inspected its own images (nothing found) and no test image is a byte-for-byte copy of one; near copies in the test folder: run '{inspectCommand}'.");
            }

            ui.Info("Levers: " + string.Join("; ", report.Levers.Select(l => $"{l.Name} {l.Setting}{(l.IsDefault ? string.Empty : " (changed)")}{(l.Detail is null ? string.Empty : $" ({l.Detail})")}")));
            if (report.TrainingMetrics is { } fitted)
            {
                ui.Info(string.Create(CultureInfo.InvariantCulture, $"Training set ({fitted.Count} images): accuracy {fitted.MicroAccuracy:0.000}, log-loss {fitted.LogLoss:0.000}; far better than the metrics below means overfitting."));
            }

            if (report.Calibration is { } calibration)
            {
                ui.Info(CalibrationLine(calibration));
                if (calibration.UnknownThreshold is not null)
                {
                    ui.Info(UnknownLine(calibration));
                }
            }

            foreach (var warning in report.Warnings)
            {
                ui.Warning(warning);
            }

            if (shown is not null)
            {
                ui.Metrics(on, shown);
            }
            else
            {
                ui.Info("No validation images (validation split 0 and no --test-dir): no metrics.");
            }

            if ((parse.GetValue(metrics) is not null || ui.Json) && shown is null)
            {
                throw new UserException("--metrics and --json need validation or test images: use --validation-split above 0 or --test-dir.");
            }

            var document = shown is null ? null : MetricsDocument.Create(on, shown, skipped, ignored, report.ImagesUsed, seconds) with { Calibration = report.Calibration, Levers = report.Levers, LeverSearch = LeverSearchDocument.Create(report.LeverSearch), Inspection = report.Inspection is null ? null : InspectionDocument.Create(report.Inspection, null), LeakedImages = evaluation?.LeakedImages, TrainingSet = TrainingSetDocument.Create(report.TrainingMetrics) };
            if (parse.GetValue(metrics) is { } metricsPath)
            {
                JsonOutput.WriteFile(metricsPath, document!);
            }

            if (ui.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(document, JsonOutput.Indented));
            }
        }));
        return command;
    }

    public static Command Evaluate()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file written by 'train'." };
        var data = new Argument<string>("DATA_DIR") { Description = "A labelled folder (one sub-folder per class), or a .csv file with the header 'path,label' (paths relative to the CSV file's folder)." };
        var metrics = new Option<string?>("--metrics") { Description = "Write the metrics as JSON to this file." };
        var (quiet, json) = OutputOptions("the metrics document (the same as --metrics writes)");
        var command = new Command("evaluate", Help(
            "Evaluate a model on a labelled folder (one sub-folder per class) or a CSV file (path,label) and print metrics.",
            "pretrainedkit evaluate pets.pkmodel photos-test",
            "pretrainedkit evaluate pets.pkmodel photos-test --metrics metrics.json --quiet",
            "pretrainedkit evaluate pets.pkmodel test.csv",
            "pretrainedkit evaluate pets.pkmodel photos-test --json | jq .macroAccuracy"))
        {
            model, data, metrics, quiet, json,
        };
        command.SetAction((parse, cancellationToken) => Run(async () =>
        {
            var ui = new ConsoleUi(parse.GetValue(quiet), parse.GetValue(json));
            using var loaded = ImageClassifier.Load(parse.GetValue(model)!);
            var evaluation = await ui.WithProgressAsync(progress => EvaluateData(loaded, parse.GetValue(data)!, progress, cancellationToken));
            ui.Skipped(evaluation.Skipped, evaluation.IgnoredFileCount);
            if (evaluation.FeatureCacheHits > 0)
            {
                ui.Info(string.Create(CultureInfo.InvariantCulture, $"Features of {evaluation.FeatureCacheHits} image views came from the feature cache ({loaded.FeatureCache.ResolveDirectory()})."));
            }

            ui.Metrics("test", evaluation.Metrics);
            if (evaluation.UnknownThreshold is { } threshold)
            {
                ui.Info(string.Create(
                    CultureInfo.InvariantCulture,
                    $"Unknown below {threshold:0.####}: {evaluation.Coverage:P1} of the images answered, {(evaluation.AcceptedPrecision is { } precision ? precision.ToString("P1", CultureInfo.InvariantCulture) : "none")} of those right."));
            }

            var seconds = new Dictionary<string, double> { ["evaluation"] = Math.Round(evaluation.Elapsed.TotalSeconds, 3) };
            var document = MetricsDocument.Create("test", evaluation.Metrics, evaluation.Skipped, evaluation.IgnoredFileCount, evaluation.Metrics.Count, seconds);
            if (parse.GetValue(metrics) is { } metricsPath)
            {
                JsonOutput.WriteFile(metricsPath, document);
            }

            if (ui.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(document, JsonOutput.Indented));
            }
        }));
        return command;
    }

    public static Command Predict()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file written by 'train'." };
        var target = new Argument<string>("IMAGE_OR_DIR") { Description = "An image file, or a folder whose images (searched recursively) are all classified." };
        var top = new Option<int>("--top") { Description = "How many classes to show per image.", DefaultValueFactory = _ => 3 };
        var unknownThreshold = new Option<float?>("--unknown-threshold") { Description = "Show 'unknown' when the top probability is below this (0 to 1), instead of the threshold saved in the model (chosen at training with --unknown-precision)." };
        var (quiet, json) = OutputOptions("one object per line and image: {path, predictions: [{label, probability}], isUnknown, threshold}", "Print only 'path<TAB>label' per image ('unknown' below the threshold): no table, no summary.");
        var command = new Command("predict", Help(
            "Classify an image, or every image in a folder (searched recursively).",
            "pretrainedkit predict pets.pkmodel cat.jpg",
            "pretrainedkit predict pets.pkmodel new-photos --top 3",
            "pretrainedkit predict pets.pkmodel new-photos --json > predictions.jsonl",
            "pretrainedkit predict pets.pkmodel new-photos --unknown-threshold 0.8"))
        {
            model, target, top, unknownThreshold, quiet, json,
        };
        command.SetAction((parse, cancellationToken) => Run(async () =>
        {
            var k = parse.GetValue(top);
            if (k < 1)
            {
                throw new UserException("--top must be at least 1.");
            }

            var threshold = parse.GetValue(unknownThreshold);
            if (threshold is { } t && !(t >= 0 && t <= 1))
            {
                throw new UserException("--unknown-threshold must be a probability from 0 to 1, for example 0.8.");
            }

            using var loaded = ImageClassifier.Load(parse.GetValue(model)!);
            var path = Path.GetFullPath(parse.GetValue(target)!);
            List<string> files;
            var folder = Directory.Exists(path);
            if (folder)
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

            var ui = new ConsoleUi(parse.GetValue(quiet), parse.GetValue(json));
            var table = new PredictionTable(ui, path, k);
            var failures = 0;
            void Show(string file, BatchPrediction result)
            {
                if (result.Error is { } ex)
                {
                    failures++;
                    ui.Error(ex.Message);
                    if (ui.Json)
                    {
                        Console.WriteLine(JsonSerializer.Serialize(new PredictionDocument(file, null, ex.Message), JsonOutput.Line));
                    }
                    else
                    {
                        table.AddError(file, ex);
                    }

                    return;
                }

                var p = result.Prediction!;
                if (threshold is not null)
                {
                    p = p with { UnknownThreshold = threshold };
                }

                if (ui.Json)
                {
                    var doc = new PredictionDocument(file, p.TopK.Select(t => new LabelDocument(t.Label, Math.Round(t.Probability, 6))).ToList())
                    {
                        IsUnknown = p.IsUnknown,
                        Threshold = p.UnknownThreshold,
                    };
                    Console.WriteLine(JsonSerializer.Serialize(doc, JsonOutput.Line));
                }
                else if (ui.Quiet)
                {
                    Console.WriteLine($"{file}\t{(p.IsUnknown ? PredictionTable.Unknown : p.Label)}");
                }
                else
                {
                    table.Add(file, p);
                }
            }

            async Task Classify(Action<int>? advance)
            {
                if (!folder)
                {
                    // One image: the single-image path (the latency session), as one result.
                    BatchPrediction single;
                    try
                    {
                        single = new BatchPrediction { Index = 0, Path = path, Prediction = loaded.Predict(path, k) };
                    }
                    catch (InvalidImageException ex)
                    {
                        single = new BatchPrediction { Index = 0, Path = path, Error = ex };
                    }

                    Show(path, single);
                    return;
                }

                // A folder: batches through the many-image pass; a bad image is one result, never the end of the run.
                foreach (var chunk in files.Chunk(PredictChunk))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var results = await loaded.PredictBatchAsync(chunk, k, cancellationToken);
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        Show(chunk[i], results[i]);
                    }

                    advance?.Invoke(chunk.Length);
                }
            }

            if (ui.ShowsSummary && ui.RichErr && files.Count > 1)
            {
                // A live bar with ETA on a terminal; in a pipe, predict prints results only.
                await ui.Err.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new ElapsedTimeColumn())
                    .StartAsync(async context =>
                    {
                        var task = context.AddTask("Classifying", autoStart: true, maxValue: files.Count);
                        await Classify(n => task.Increment(n));
                    });
            }
            else
            {
                await Classify(null);
            }

            table.Flush();
            return failures == 0 ? 0 : UserError;
        }));
        return command;
    }

    /// <summary>Whether a DATA_DIR argument names a CSV file (a regular file ending in .csv) rather than a folder.</summary>
    private static bool IsCsv(string path) => File.Exists(path) && Path.GetExtension(path).Equals(".csv", StringComparison.OrdinalIgnoreCase);

    /// <summary>Trains on a folder, or on the images a CSV file lists.</summary>
    private static ImageClassifierBuilder FromData(ImageClassifierBuilder builder, string data) => IsCsv(data) ? builder.FromCsv(data) : builder.FromFolder(data);

    /// <summary>Evaluates on a folder, or on the images a CSV file lists.</summary>
    private static Task<EvaluationReport> EvaluateData(ImageClassifierModel model, string data, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken) =>
        IsCsv(data) ? model.EvaluateAsync(LabeledImage.ReadCsv(data), progress, cancellationToken) : model.EvaluateAsync(data, progress, cancellationToken);

    private static string CalibrationLine(CalibrationReport c) => c.Calibrated
        ? string.Create(CultureInfo.InvariantCulture, $"Calibration: temperature {c.Temperature:0.###}; validation calibration error {c.ExpectedCalibrationErrorBefore:0.000} -> {c.ExpectedCalibrationErrorAfter:0.000}, log-loss {c.LogLossBefore:0.000} -> {c.LogLossAfter:0.000} ({c.ValidationImages} images).")
        : $"Calibration skipped: {c.CalibrationSkippedReason}.";

    private static string UnknownLine(CalibrationReport c) => string.Create(
        CultureInfo.InvariantCulture,
        $"Unknown below {c.UnknownThreshold:0.####} (target precision {c.UnknownPrecisionTarget:P1}{(c.TargetReached == true ? string.Empty : ", NOT reached")}): on the {c.ValidationImages} validation images {c.ValidationCoverage:P1} answered, {c.ValidationPrecision:P1} of those right.");

    private static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".webp" };

    private static Task<int> Run(Func<Task> action) => Run(async () =>
    {
        await action();
        return 0;
    });

    /// <summary>Runs a command, mapping user mistakes to a one-line message and exit code 2 (never a stack trace).</summary>
    internal static async Task<int> Run(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (InvalidDatasetException ex)
        {
            WriteError($"error: {ex.Message}");
            return UserError;
        }
        catch (Exception ex) when (ex is UserException or DirectoryNotFoundException or FileNotFoundException or ModelFormatException or Search.ImageIndexFormatException
                                       or InvalidImageException or BackboneNotFoundException or ArgumentException or IOException or UnauthorizedAccessException
                                       or System.ComponentModel.Win32Exception)
        {
            WriteError($"error: {ex.Message.TrimEnd()}{(IsOutOfFileDescriptors(ex) ? $" The process may have run out of file descriptors. {FileLimitHint}" : string.Empty)}");
            return UserError;
        }
        catch (Exception ex) when (ex is TypeInitializationException or DllNotFoundException && IsOutOfFileDescriptors(ex))
        {
            // A native library (ONNX Runtime, SkiaSharp) could not be opened for want of file descriptors; its message
            // lists every path tried, so one line says what happened instead.
            WriteError($"error: a native library could not be loaded: the process has too many open files. {FileLimitHint}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("Cancelled.");
            return 130;
        }
    }

    private const string FileLimitHint = "Raise the open-file limit (ulimit -n; the .NET runtime alone keeps about 80 files open).";

    /// <summary>Whether an error looks like the open-file limit: EMFILE itself, or the runtime failing to open one of its own assemblies.</summary>
    private static bool IsOutOfFileDescriptors(Exception ex) =>
        ex.Message.Contains("Too many open files", StringComparison.Ordinal)
        || (ex.InnerException is { } inner && IsOutOfFileDescriptors(inner))
        || (ex is FileNotFoundException or FileLoadException && (ex as FileNotFoundException)?.FileName is { } name && name.Contains(", Version=", StringComparison.Ordinal))
        || (ex is FileLoadException { FileName: { } loadName } && loadName.Contains(", Version=", StringComparison.Ordinal));

    /// <summary>
    /// Writes an error line to standard error; if the console cannot start (it needs file descriptors of its own, and
    /// under a low open-file limit there may be none left), writes the bytes straight to descriptor 2.
    /// </summary>
    private static void WriteError(string line)
    {
        try
        {
            Console.Error.WriteLine(line);
        }
        catch (Exception ex) when (ex is IOException or System.ComponentModel.Win32Exception)
        {
            using var stderr = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(2, ownsHandle: false), FileAccess.Write, 1);
            stderr.Write(System.Text.Encoding.UTF8.GetBytes(line + Environment.NewLine));
        }
    }

    /// <summary>The <c>--quiet</c> and <c>--json</c> switches, the same on every command.</summary>
    private static (Option<bool> Quiet, Option<bool> Json) OutputOptions(string jsonWhat, string quietWhat = "Print only errors and the requested files: no progress, no tables.") =>
        (new Option<bool>("--quiet", "-q") { Description = quietWhat },
         new Option<bool>("--json") { Description = $"Print JSON to stdout: {jsonWhat}. No progress or tables." });

    /// <summary>A command description followed by examples, as shown by <c>--help</c>.</summary>
    private static string Help(string what, params string[] examples) =>
        what + Environment.NewLine + Environment.NewLine + "Examples:" + Environment.NewLine + string.Join(Environment.NewLine, examples.Select(e => "  " + e));

    internal sealed class UserException(string message) : Exception(message);

    /// <summary>Whether an option was given on the command line (not its default).</summary>
    internal static bool Given<T>(ParseResult parse, Option<T> option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>The head settings the train options ask for; L2 settings with the kernel head are a usage error, as in the library.</summary>
    private static HeadOptions HeadFromOptions(HeadKind kind, bool l2Given, float l2, bool autoL2)
    {
        if (kind == HeadKind.Kernel)
        {
            return l2Given || autoL2
                ? throw new ArgumentException("--l2 and --auto-l2 set the linear head's L2 weight; the kernel head has a fixed ridge weight. Leave them out, or use --head Linear.")
                : KernelHeadOptions.Default;
        }

        return HeadOptions.For(kind) is LinearHeadOptions linear ? linear with { L2Regularization = l2, AutoRegularization = autoL2 } : HeadOptions.For(kind);
    }
}
