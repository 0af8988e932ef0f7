using Microsoft.Extensions.Logging;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;
using PretrainedKit.Inspection;
using PretrainedKit.Internal;
using PretrainedKit.Models;

namespace PretrainedKit.Training;

/// <summary>What a training run produces: the model definition, the featurisation session that predicts with it, and the report.</summary>
/// <param name="Definition">What the trained classifier is.</param>
/// <param name="Extractor">The latency session over the backbone, for the model to keep.</param>
/// <param name="Report">What happened.</param>
internal sealed record TrainingResult(ModelDefinition Definition, FeatureExtractor Extractor, TrainingReport Report);

/// <summary>
/// One training run as named stages: scan, validate the dataset, load the backbone, featurise (and split), fit the
/// head, calibrate, build the report. Each stage is a small method; <see cref="RunAsync"/> only chains them.
/// </summary>
internal static partial class TrainingRun
{
    public static async Task<TrainingResult> RunAsync(
        Func<FolderScan> source,
        ImageClassifierOptions options,
        ILogger logger,
        IProgress<TrainingProgress>? progress,
        CancellationToken cancellationToken)
    {
        var reporter = new ProgressReporter(progress, logger);
        var (scan, validationScan) = Scan(source, options, reporter);
        cancellationToken.ThrowIfCancellationRequested();
        await ValidateDatasetAsync(scan, validationScan, options, reporter, cancellationToken).ConfigureAwait(false);

        reporter.Report(TrainingPhase.LoadingBackbone, 0, 1, null);
        var (space, layout, trainViews, testViews) = Plan(options);
        var runtime = OpenBackbone(options, layout, scan, logger, cancellationToken);
        Featurized data;
        using (var featurizer = new FeatureExtractor(runtime, options.Image, options.FeatureCache.Enabled ? new FeatureCache(options.FeatureCache) : null))
        {
            featurizer.Warm(SessionProfile.Throughput);
            reporter.EndPhase(TrainingPhase.LoadingBackbone);
            data = await FeaturizeAsync(scan, validationScan, options, trainViews, testViews, featurizer, reporter, cancellationToken).ConfigureAwait(false);
        }

        var warnings = CheckUsable(scan, data, options, logger);
        LeverSearchReport? search = null;
        var (featurised, featurisedLayout) = (data, runtime.Layout); // Before the search keeps a prefix: similarity uses all of it.
        if (space is not null)
        {
                (search, options, data) = SearchLevers(data, trainViews, testViews, scan.Classes.Count, options, space, runtime, reporter, cancellationToken);
            if (options.FeatureLayout != runtime.Layout)
            {
                runtime = runtime.WithLayout(options.FeatureLayout, logger);
            }
        }

        var inspection = options.InspectData ? InspectData(data, featurised, scan.Classes, options, featurisedLayout, reporter, cancellationToken) : null;

        // The model keeps only the session that Predict uses; opening it counts as loading the backbone. Its evaluations
        // and batch predictions use the run's cache.
        var extractor = new FeatureExtractor(runtime, options.Image, options.FeatureCache.Enabled ? new FeatureCache(options.FeatureCache) : null);
        try
        {
            extractor.Warm(SessionProfile.Latency);
            reporter.EndPhase(TrainingPhase.LoadingBackbone);
            var fit = FitHead(data, scan.Classes.Count, options, reporter, cancellationToken);
            var (calibration, metrics) = Calibrate(fit.Head, data, scan.Classes, options, reporter, warnings, logger);
            var definition = new ModelDefinition
            {
                Backbone = options.Backbone,
                WeightsSha256 = runtime.WeightsSha256,
                FeatureLayout = runtime.Layout,
                Int8 = runtime.Int8,
                Image = options.Image,
                Classes = scan.Classes,
                Head = fit.Head,
                TestTimeAugmentation = options.TestTimeAugmentation,
                Temperature = calibration.Temperature,
                UnknownThreshold = calibration.UnknownThreshold,
            };
            var trainingMetrics = MeasureTraining(fit.Head, data, scan.Classes, calibration.Temperature);
            var report = BuildReport(scan, validationScan, data, fit, calibration, metrics, warnings, options, reporter) with
            {
                TrainingMetrics = trainingMetrics,
                LeverSearch = search,
                Inspection = inspection,
                TrainingImageHashes = data.TrainPaths
                    .Where(data.ContentHashes.ContainsKey)
                    .GroupBy(p => Convert.ToHexString(data.ContentHashes[p]), StringComparer.Ordinal)
                    .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal),
            };
            reporter.Complete();
            return new TrainingResult(definition, extractor, report);
        }
        catch
        {
            extractor.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Stage 3: open the backbone; for <see cref="Precision.Int8"/>, calibrate its integer graph on up to
    /// <see cref="Int8Calibration.MaxImages"/> of the training images (spread over the classes, in scan order, before the
    /// validation split: the same images give the same calibration, so feature shards agree with the run).
    /// </summary>
    internal static BackboneRuntime OpenBackbone(ImageClassifierOptions options, FeatureLayout layout, FolderScan scan, ILogger? logger, CancellationToken cancellationToken)
    {
        var runtime = BackboneRuntime.Open(options.Backbone, layout, logger);
        if (options.Precision == Precision.Float32)
        {
            return runtime;
        }

        var byClass = scan.Classes.Select(c => (IReadOnlyList<string>)[.. scan.Images.Where(i => i.Label == c).Select(i => i.Path)]).ToList();
        return runtime.WithInt8(Int8Calibrator.Calibrate(runtime, options.Image, Int8Calibrator.Choose(byClass), cancellationToken));
    }

    /// <summary>Stage 1: list the training data and the validation folder or list.</summary>
    private static (FolderScan Scan, FolderScan? Validation) Scan(Func<FolderScan> source, ImageClassifierOptions options, ProgressReporter reporter)
    {
        reporter.Report(TrainingPhase.Scanning, 0, 0, null);
        var scan = source();
        var validation = options.ValidationFolder is { } folder ? DatasetScanner.ScanFolder(folder)
            : options.ValidationImages is { } list ? DatasetScanner.FromList(list)
            : null;
        reporter.EndPhase(TrainingPhase.Scanning);
        return (scan, validation);
    }

    /// <summary>
    /// Stage 2: the dataset rules that need no image read, before any expensive work. When one fails, the images' headers
    /// are checked too (this failure path only), so that the exception lists every problem at once.
    /// </summary>
    private static async Task ValidateDatasetAsync(FolderScan scan, FolderScan? validation, ImageClassifierOptions options, ProgressReporter reporter, CancellationToken cancellationToken)
    {
        reporter.Report(TrainingPhase.Validating, 0, 1, null);
        var problems = DatasetRules.CheckTraining(scan, validation);
        if (problems.Count > 0)
        {
            var bad = new System.Collections.Concurrent.ConcurrentDictionary<string, InvalidImageException>(StringComparer.Ordinal);
            await Parallel.ForEachAsync(
                scan.Images.Concat(validation?.Images ?? []),
                new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount },
                (image, _) =>
                {
                    try
                    {
                        ImageDecoder.Probe(ImageDecoder.ReadFile(image.Path), image.Path, options.Image);
                    }
                    catch (InvalidImageException ex)
                    {
                        bad[image.Path] = ex;
                    }

                    return ValueTask.CompletedTask;
                }).ConfigureAwait(false);
            problems.AddRange(DatasetRules.CheckUsable(scan, bad, options.Strict));
            throw new InvalidDatasetException(problems);
        }

        reporter.Report(TrainingPhase.Validating, 1, 1, null);
        reporter.EndPhase(TrainingPhase.Validating);
    }

    /// <summary>
    /// Stage 3: split and featurise in one pass over the images, each read once. The split is made on all images (it
    /// equals the split on the usable ones when none is bad); when the pass finds bad images, the split is made again on
    /// the usable ones, and only images that changed side and need other views are featurised again.
    /// </summary>
    private static async Task<Featurized> FeaturizeAsync(
        FolderScan scan, FolderScan? validationScan, ImageClassifierOptions options, IReadOnlyList<ImageView> trainViews, IReadOnlyList<ImageView> testViews,
        FeatureExtractor featurizer, ProgressReporter reporter, CancellationToken cancellationToken)
    {
        var classIndex = scan.Classes.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
        (List<LabeledImage> Train, List<LabeledImage> Validation) Split(IReadOnlyList<LabeledImage> usable, IReadOnlyDictionary<string, InvalidImageException> bad)
        {
            if (validationScan is not null)
            {
                return (usable.ToList(), validationScan.Images.Where(i => !bad.ContainsKey(i.Path)).ToList());
            }

            var (train, validation) = StratifiedSplit.Split(usable.Select(i => classIndex[i.Label]).ToList(), scan.Classes.Count, options.ValidationFraction, options.Seed);
            return (train.Select(i => usable[i]).ToList(), validation.Select(i => usable[i]).ToList());
        }

        var (trainImages, validationImages) = Split(scan.Images, new Dictionary<string, InvalidImageException>());
        var images = trainImages.Concat(validationImages).ToList();
        var features = await featurizer.ExtractAsync(
            images.Select(i => ImageInput.FromFile(i.Path)).ToList(),
            i => i < trainImages.Count ? trainViews : testViews,
            (d, n, eta) => reporter.Report(TrainingPhase.Featurizing, d, n, eta),
            cancellationToken,
            hashContent: options.InspectData).ConfigureAwait(false);
        var bad = features.Errors.Where(e => e.Path is not null).GroupBy(e => e.Path!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var byPath = new Dictionary<(string Path, bool Train), float[][]>();
        var hashes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        KeepHashes(images, features, hashes);
        for (var i = 0; i < images.Count; i++)
        {
            if (features.Views[i] is { } v)
            {
                byPath[(images[i].Path, i < trainImages.Count)] = v;
            }
        }

        var hits = features.CacheHits;
        var skipped = features.Skipped.ToList();
        if (bad.Count > 0)
        {
            (trainImages, validationImages) = Split(scan.Images.Where(i => !bad.ContainsKey(i.Path)).ToList(), bad);
            var sameViews = trainViews.SequenceEqual(testViews);
            var moved = new List<(LabeledImage Image, bool Train)>();
            foreach (var m in trainImages.Select(i => (Image: i, Train: true)).Concat(validationImages.Select(i => (Image: i, Train: false))))
            {
                if (byPath.ContainsKey((m.Image.Path, m.Train)))
                {
                    continue;
                }

                if (sameViews && byPath.TryGetValue((m.Image.Path, !m.Train), out var same))
                {
                    byPath[(m.Image.Path, m.Train)] = same;
                    continue;
                }

                moved.Add(m);
            }

            if (moved.Count > 0)
            {
                var again = await featurizer.ExtractAsync(moved.Select(m => ImageInput.FromFile(m.Image.Path)).ToList(), i => moved[i].Train ? trainViews : testViews, null, cancellationToken, hashContent: options.InspectData).ConfigureAwait(false);
                hits += again.CacheHits;
                KeepHashes([.. moved.Select(m => m.Image)], again, hashes);
                skipped.AddRange(again.Skipped);
                foreach (var e in again.Errors.Where(e => e.Path is not null))
                {
                    bad.TryAdd(e.Path!, e);
                }

                for (var i = 0; i < moved.Count; i++)
                {
                    if (again.Views[i] is { } v)
                    {
                        byPath[(moved[i].Image.Path, moved[i].Train)] = v;
                    }
                }
            }
        }

        reporter.EndPhase(TrainingPhase.Featurizing);
        var train = trainImages.Select(i => (Image: i, Views: byPath.GetValueOrDefault((i.Path, true)))).Where(t => t.Views is not null).ToList();
        var validationSet = validationImages.Select(i => (Image: i, Views: byPath.GetValueOrDefault((i.Path, false)))).Where(t => t.Views is not null).ToList();
        return new Featurized(
            train.Select(t => t.Views!).ToList(),
            train.Select(t => classIndex[t.Image.Label]).ToList(),
            validationSet.Select(t => t.Views!).ToList(),
            validationSet.Select(t => classIndex[t.Image.Label]).ToList(),
            validationImages.Count,
            bad,
            skipped.OrderBy(s => s.Path, StringComparer.Ordinal).ToList(),
            hits)
        {
            TrainPaths = [.. train.Select(t => t.Image.Path)],
            ValidationPaths = [.. validationSet.Select(t => t.Image.Path)],
            ContentHashes = hashes,
        };
    }

    /// <summary>Adds the content hash of each image of a featurisation pass (input order) to <paramref name="into"/>, by path.</summary>
    private static void KeepHashes(List<LabeledImage> images, FeatureSet set, Dictionary<string, byte[]> into)
    {
        for (var i = 0; i < images.Count && i < set.ContentHashes.Count; i++)
        {
            if (set.ContentHashes[i] is { } hash)
            {
                into[images[i].Path] = hash;
            }
        }
    }

    /// <summary>
    /// What a run featurises: without a lever search, the options' layout and views. With one (<see cref="ImageClassifierOptions.Auto"/>
    /// and a lever not set explicitly), the richest candidate layout, and for training images the original, the mirror
    /// image when the search may use it, and the views of an explicit augmentation; for validation images every
    /// prediction view set the search may choose (the original first). Shared with <see cref="FeatureShard"/>, so that
    /// distributed featurisation computes exactly what training will read.
    /// </summary>
    internal static (LeverSearch.Space? Space, FeatureLayout Layout, IReadOnlyList<ImageView> Train, IReadOnlyList<ImageView> Test) Plan(ImageClassifierOptions options)
    {
        var space = options.Auto ? LeverSearch.SpaceFor(options, options.Backbone.Stages.Count > 0) : null;
        if (space is null or { Searched: AutoLevers.None })
        {
            // Auto off, or every lever set explicitly: nothing to choose.
            return (null, options.FeatureLayout, Levers.TrainingViews(options.Augmentation), ModelDefinition.ViewsOf(options.TestTimeAugmentation));
        }

        var train = new List<ImageView> { ImageView.Original };
        if (space.NeedsMirror)
        {
            train.Add(ImageView.Mirror);
        }

        train.AddRange(space.Augmentations.SelectMany(Levers.TrainingViews).Where(v => !train.Contains(v)));
        var test = space.TestTimeAugmentations.SelectMany(ModelDefinition.ViewsOf).Distinct().ToList();
        return (space, space.FeaturizeLayout, train, test);
    }

    /// <summary>
    /// Stage 3c (automatic lever choice): cross-validates the candidates on the training features only, then keeps the
    /// chosen layout's features (a prefix of the featurised layout) and the chosen views of every image.
    /// </summary>
    private static (LeverSearchReport Report, ImageClassifierOptions Options, Featurized Data) SearchLevers(
        Featurized data, IReadOnlyList<ImageView> trainViews, IReadOnlyList<ImageView> testViews, int classCount, ImageClassifierOptions options,
        LeverSearch.Space space, BackboneRuntime runtime, ProgressReporter reporter, CancellationToken cancellationToken)
    {
        reporter.Report(TrainingPhase.SearchingLevers, 0, 1, null);
        var mirror = trainViews.ToList().IndexOf(ImageView.Mirror);
        var searchViews = data.TrainViews.Select(v => mirror >= 0 ? new[] { v[0], v[mirror] } : new[] { v[0] }).ToList();
        var report = LeverSearch.Run(searchViews, data.TrainLabels, classCount, space, options.Backbone.Stages, options.ClassWeighting, options.Seed, (done, total) => reporter.Report(TrainingPhase.SearchingLevers, done, total, null), cancellationToken);
        var chosen = options;
        if (report.Chosen is { } c)
        {
            var searched = space.Searched;
            chosen = options;
            if (searched.HasFlag(AutoLevers.FeatureLayout))
            {
                chosen = chosen with { FeatureLayout = c.FeatureLayout };
            }

            if (searched.HasFlag(AutoLevers.Normalization))
            {
                chosen = chosen with { Normalization = c.Normalization };
            }

            if (searched.HasFlag(AutoLevers.Augmentation))
            {
                chosen = chosen with { Augmentation = c.Augmentation };
            }

            if (searched.HasFlag(AutoLevers.TestTimeAugmentation))
            {
                chosen = chosen with { TestTimeAugmentation = c.TestTimeAugmentation };
            }

            if (searched.HasFlag(AutoLevers.Head))
            {
                chosen = chosen with { Head = c.Head };
            }
        }
        else
        {
            // Skipped: the plain defaults for every lever not set explicitly (the featurised layout and views still hold them).
            var defaults = ImageClassifierOptions.Default;
            chosen = options with
            {
                FeatureLayout = space.Fixed.HasFlag(AutoLevers.FeatureLayout) ? options.FeatureLayout : space.Layouts[0],
                Augmentation = space.Fixed.HasFlag(AutoLevers.Augmentation) ? options.Augmentation : defaults.Augmentation,
                TestTimeAugmentation = space.Fixed.HasFlag(AutoLevers.TestTimeAugmentation) ? options.TestTimeAugmentation : defaults.TestTimeAugmentation,
                Normalization = space.Fixed.HasFlag(AutoLevers.Normalization) ? options.Normalization : defaults.Normalization,
                Head = space.Fixed.HasFlag(AutoLevers.Head) ? options.Head : defaults.Head,
            };
        }

        var length = chosen.FeatureLayout == FeatureLayout.Pooled ? runtime.FeatureSize : MultiStagePooling.FeatureSize(options.Backbone.Stages, chosen.FeatureLayout);
        // Where each kept view sits among the featurised ones, found once for all images.
        int[] Positions(IReadOnlyList<ImageView> available, IReadOnlyList<ImageView> wanted) => [.. wanted.Select(w => available.ToList().IndexOf(w))];
        float[][] Pick(float[][] views, int[] positions) => [.. positions.Select(p => views[p][..length])];
        var keepTrain = Positions(trainViews, Levers.TrainingViews(chosen.Augmentation));
        var keepTest = Positions(testViews, ModelDefinition.ViewsOf(chosen.TestTimeAugmentation));
        reporter.EndPhase(TrainingPhase.SearchingLevers);
        return (report, chosen, data with
        {
            TrainViews = data.TrainViews.Select(v => Pick(v, keepTrain)).ToList(),
            ValidationViews = data.ValidationViews.Select(v => Pick(v, keepTest)).ToList(),
        });
    }

    /// <summary>
    /// Stage 3d (<see cref="ImageClassifierOptions.InspectData"/>): what is wrong with the data, from the features already
    /// computed (the original view, the chosen layout): label issues and outliers among the training images, duplicates
    /// among them and across to the validation images (leakage).
    /// </summary>
    private static DataInspectionReport InspectData(Featurized data, Featurized featurised, IReadOnlyList<string> classes, ImageClassifierOptions options, FeatureLayout featurisedLayout, ProgressReporter reporter, CancellationToken cancellationToken)
    {
        reporter.Report(TrainingPhase.Inspecting, 0, 1, null);
        InspectionItem Item(string path, int label, float[][] views, float[][] featurisedViews) => new(path, label, classes[label], data.ContentHashes.GetValueOrDefault(path), views[0], featurisedViews[0]);
        var report = DataInspection.Inspect(
            [.. data.TrainPaths.Select((p, i) => Item(p, data.TrainLabels[i], data.TrainViews[i], featurised.TrainViews[i]))],
            [.. data.ValidationPaths.Select((p, i) => Item(p, data.ValidationLabels[i], data.ValidationViews[i], featurised.ValidationViews[i]))],
            classes, options, featurisedLayout, data.Skipped, cancellationToken);
        reporter.Report(TrainingPhase.Inspecting, 1, 1, TimeSpan.Zero);
        reporter.EndPhase(TrainingPhase.Inspecting);
        return report;
    }

    /// <summary>Stage 3b: the dataset rules that need to know the bad images (strict mode, classes left empty), and the few-image warnings.</summary>
    private static List<string> CheckUsable(FolderScan scan, Featurized data, ImageClassifierOptions options, ILogger logger)
    {
        foreach (var s in data.Skipped)
        {
            Log.Skipped(logger, s.Path, s.Message);
        }

        var problems = DatasetRules.CheckUsable(scan, data.Bad, options.Strict);
        if (problems.Count > 0)
        {
            throw new InvalidDatasetException(problems);
        }

        if (options.UnknownPrecisionTarget is not null && data.ValidationLabels.Count == 0)
        {
            throw new InvalidDatasetException(data.ValidationImageCount == 0
                ? $"No image was left for validation (each class needs at least 2 usable images for a split). {ImageClassifierOptions.NoValidationForTargetMessage}"
                : $"No validation image could be used (see the skipped files). {ImageClassifierOptions.NoValidationForTargetMessage}");
        }

        var warnings = DatasetRules.FewImageWarnings(scan, data.Bad, ImageClassifierOptions.FewImagesWarningThreshold).ToList();
        foreach (var warning in warnings)
        {
            Log.Warning(logger, warning);
        }

        if (scan.IgnoredFiles.Count > 0)
        {
            Log.Ignored(logger, scan.IgnoredFiles.Count);
        }

        return warnings;
    }

    /// <summary>Stage 4: fit the head on the training views.</summary>
    private static HeadFit FitHead(Featurized data, int classCount, ImageClassifierOptions options, ProgressReporter reporter, CancellationToken cancellationToken)
    {
        reporter.Report(TrainingPhase.Training, 0, 1, null);
        var fit = HeadTrainer.Train(data.TrainViews, data.TrainLabels, classCount, options, cancellationToken);
        reporter.EndPhase(TrainingPhase.Training);
        reporter.Report(TrainingPhase.Training, 1, 1, TimeSpan.Zero);
        return fit;
    }

    /// <summary>Stage 5: calibrate on the validation images, choose the unknown threshold, and measure.</summary>
    private static (CalibrationReport Calibration, ClassificationMetrics? Metrics) Calibrate(HeadDefinition head, Featurized data, IReadOnlyList<string> classes, ImageClassifierOptions options, ProgressReporter reporter, List<string> warnings, ILogger logger)
    {
        var logits = data.ValidationViews.Select(head.Logits).ToList();
        if (logits.Count > 0)
        {
            reporter.Report(TrainingPhase.Evaluating, 0, 1, null);
        }

        var calibration = Calibration.Calibrate(logits, data.ValidationLabels, options);
        foreach (var warning in Calibration.Warnings(calibration))
        {
            warnings.Add(warning);
            Log.Warning(logger, warning);
        }

        if (logits.Count == 0)
        {
            return (calibration, null);
        }

        var probabilities = logits.Select(l => (IReadOnlyList<float>)ModelDefinition.Softmax(l, calibration.Temperature)).ToList();
        var metrics = ClassificationMetrics.Compute(classes, data.ValidationLabels, probabilities);
        reporter.EndPhase(TrainingPhase.Evaluating);
        return (calibration, metrics);
    }

    /// <summary>Stage 5b: the head's metrics on its own training images (original view, calibrated), to show overfitting.</summary>
    private static ClassificationMetrics? MeasureTraining(HeadDefinition head, Featurized data, IReadOnlyList<string> classes, double temperature)
    {
        if (data.TrainLabels.Count == 0)
        {
            return null;
        }

        var probabilities = data.TrainViews.Select(v => (IReadOnlyList<float>)ModelDefinition.Softmax(head.Logits(v[0]), temperature)).ToList();
        return ClassificationMetrics.Compute(classes, data.TrainLabels, probabilities);
    }

    /// <summary>Stage 6: the training report.</summary>
    private static TrainingReport BuildReport(FolderScan scan, FolderScan? validationScan, Featurized data, HeadFit fit, CalibrationReport calibration, ClassificationMetrics? metrics, List<string> warnings, ImageClassifierOptions options, ProgressReporter reporter)
    {
        var ignored = scan.IgnoredFiles.Concat(validationScan?.IgnoredFiles ?? []).ToList();
        return new TrainingReport
        {
            Classes = scan.Classes,
            Counts = scan.Classes.Select((c, i) => new ClassCount(c, data.TrainLabels.Count(l => l == i), data.ValidationLabels.Count(l => l == i))).ToList(),
            Skipped = data.Skipped,
            IgnoredFileCount = ignored.Count,
            IgnoredFiles = ignored,
            Warnings = warnings,
            PhaseDurations = new Dictionary<TrainingPhase, TimeSpan>(reporter.Durations),
            ValidationMetrics = metrics,
            Options = options,
            FeatureCacheHits = data.CacheHits,
            Calibration = calibration,
            Levers = Levers.Describe(options, fit.Search),
            Regularization = fit.Search,
        };
    }

    /// <summary>The featurised training and validation sets, after the split.</summary>
    private sealed record Featurized(
        List<float[][]> TrainViews,
        List<int> TrainLabels,
        List<float[][]> ValidationViews,
        List<int> ValidationLabels,
        int ValidationImageCount,
        Dictionary<string, InvalidImageException> Bad,
        List<SkippedImage> Skipped,
        int CacheHits)
    {
        /// <summary>Gets the training images' files, in the order of <see cref="TrainViews"/>.</summary>
        public IReadOnlyList<string> TrainPaths { get; init; } = [];

        /// <summary>Gets the validation images' files, in the order of <see cref="ValidationViews"/>.</summary>
        public IReadOnlyList<string> ValidationPaths { get; init; } = [];

        /// <summary>Gets the SHA-256 of every image read, by path.</summary>
        public Dictionary<string, byte[]> ContentHashes { get; init; } = [];
    }
}
