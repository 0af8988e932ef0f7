using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using PretrainedKit.Backbones;
using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Imaging;
using PretrainedKit.Internal;
using PretrainedKit.Prediction;

namespace PretrainedKit.Training;

/// <summary>One training run: scan, validate everything, split, featurise, train the head, evaluate.</summary>
internal static class TrainingRun
{
    public static async Task<ImageClassifierModel> RunAsync(
        Func<FolderScan> source,
        ImageClassifierOptions options,
        ILogger logger,
        IProgress<TrainingProgress>? progress,
        CancellationToken cancellationToken)
    {
        var total = Stopwatch.StartNew();
        var phase = Stopwatch.StartNew();
        var durations = new Dictionary<TrainingPhase, TimeSpan>();
        void EndPhase(TrainingPhase p)
        {
            durations[p] = phase.Elapsed;
            Log.PhaseDone(logger, p, phase.Elapsed);
            phase.Restart();
        }

        // Validation and featurisation report from several threads: one report at a time, so the receiver never runs
        // concurrently with itself and sees Elapsed in order.
        var reportGate = new object();
        void Report(TrainingPhase p, int done, int count, TimeSpan? eta)
        {
            if (progress is null)
            {
                return;
            }

            lock (reportGate)
            {
                progress.Report(new TrainingProgress(p, done, count, total.Elapsed, eta));
            }
        }

        // Scanning.
        Report(TrainingPhase.Scanning, 0, 0, null);
        var scan = source();
        FolderScan? validationScan = options.ValidationFolder is { } vf ? DatasetScanner.ScanFolder(vf) : null;
        var classes = scan.Classes;
        EndPhase(TrainingPhase.Scanning);
        cancellationToken.ThrowIfCancellationRequested();

        // Validating: every problem is collected and reported at once, before any expensive work.
        var all = scan.Images.Concat(validationScan?.Images ?? []).ToList();
        var bad = await CheckImagesAsync(all, options, (d, n) => Report(TrainingPhase.Validating, d, n, null), cancellationToken).ConfigureAwait(false);
        var problems = new List<DatasetProblem>();
        if (classes.Count < 2)
        {
            var where = scan.Root.Length > 0 ? $"'{scan.Root}' has" : "The image list has";
            problems.Add(new DatasetProblem(
                scan.Root,
                DatasetProblemKind.TooFewClasses,
                $"{where} {classes.Count} class{(classes.Count == 1 ? $" ('{classes[0]}')" : "es")}; at least 2 are needed. Put each class's images in its own sub-folder, for example data/cats and data/dogs."));
        }

        if (options.Strict)
        {
            problems.AddRange(bad.Values.OrderBy(b => b.Path, StringComparer.Ordinal).Select(b => new DatasetProblem(b.Path!, DatasetProblemKind.BadImage, b.Message)));
        }

        foreach (var label in classes)
        {
            var usable = scan.Images.Count(i => i.Label == label && !bad.ContainsKey(i.Path));
            if (usable == 0)
            {
                var folder = scan.Root.Length > 0 ? Path.Combine(scan.Root, label) : label;
                var unusable = scan.Images.Count(i => i.Label == label);
                problems.Add(new DatasetProblem(
                    folder,
                    DatasetProblemKind.EmptyClass,
                    unusable == 0
                        ? $"The class '{label}' ('{folder}') has no image file. Add images (JPEG, PNG, BMP, GIF or WebP) or remove the folder."
                        : $"The class '{label}' ('{folder}') has no usable image: all {unusable} were bad (see the other problems or the log). Replace them or remove the folder."));
            }
        }

        if (validationScan is not null)
        {
            foreach (var label in validationScan.Classes.Where(c => !classes.Contains(c, StringComparer.Ordinal)))
            {
                var folder = Path.Combine(validationScan.Root, label);
                problems.Add(new DatasetProblem(folder, DatasetProblemKind.UnknownClass, $"The validation class folder '{folder}' has no counterpart in the training data. Rename or remove it."));
            }
        }

        if (problems.Count > 0)
        {
            throw new InvalidDatasetException(problems);
        }

        var warnings = new List<string>();
        foreach (var label in classes)
        {
            var usable = scan.Images.Count(i => i.Label == label && !bad.ContainsKey(i.Path));
            if (usable < ImageClassifierOptions.FewImagesWarningThreshold)
            {
                var warning = $"The class '{label}' has only {usable} usable image{(usable == 1 ? string.Empty : "s")}; {ImageClassifierOptions.FewImagesWarningThreshold} or more give more reliable results.";
                warnings.Add(warning);
                Log.Warning(logger, warning);
            }
        }

        if (scan.IgnoredFiles.Count > 0)
        {
            Log.Ignored(logger, scan.IgnoredFiles.Count);
        }

        EndPhase(TrainingPhase.Validating);

        // Split (or take the validation folder).
        var classIndex = classes.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
        var usableTrain = scan.Images.Where(i => !bad.ContainsKey(i.Path)).ToList();
        List<LabeledImage> trainImages;
        List<LabeledImage> validationImages;
        if (validationScan is not null)
        {
            trainImages = usableTrain;
            validationImages = validationScan.Images.Where(i => !bad.ContainsKey(i.Path)).ToList();
        }
        else
        {
            var (trainIdx, valIdx) = StratifiedSplit.Split(usableTrain.Select(i => classIndex[i.Label]).ToList(), classes.Count, options.ValidationFraction, options.Seed);
            trainImages = trainIdx.Select(i => usableTrain[i]).ToList();
            validationImages = valIdx.Select(i => usableTrain[i]).ToList();
        }

        if (options.UnknownPrecisionTarget is not null && validationImages.Count == 0)
        {
            throw new InvalidDatasetException($"No image was left for validation (each class needs at least 2 usable images for a split). {ImageClassifierOptions.NoValidationForTargetMessage}");
        }

        Report(TrainingPhase.LoadingBackbone, 0, 1, null);
        var session = BackboneSession.Open(options.Backbone, logger, options.FeatureLayout, forFeaturizing: true);
        EndPhase(TrainingPhase.LoadingBackbone);
        try
        {
            // Featurizing: training images with their augmentation views, validation images with the test-time views.
            var paths = trainImages.Concat(validationImages).Select(i => i.Path).ToList();
            var cache = options.FeatureCache.Enabled ? new Caching.FeatureCache(options.FeatureCache) : null;
            var trainViews = Levers.TrainingViews(options.Augmentation);
            var testViews = Levers.TestViews(options.TestTimeAugmentation);
            var features = await FeaturePipeline.RunAsync(
                session,
                paths,
                options.Image,
                (d, n, eta) => Report(TrainingPhase.Featurizing, d, n, eta),
                cancellationToken,
                cache,
                viewsOf: i => i < trainImages.Count ? trainViews : testViews).ConfigureAwait(false);
            EndPhase(TrainingPhase.Featurizing);

            // The model keeps only the session that Predict uses; opening it counts as loading the backbone.
            session.SwitchToLatency();
            durations[TrainingPhase.LoadingBackbone] += phase.Elapsed;
            phase.Restart();

            var skipped = bad.Values.Select(b => new SkippedImage(b.Path!, b.Reason, b.Message)).Concat(features.Skipped).OrderBy(s => s.Path, StringComparer.Ordinal).ToList();
            foreach (var s in skipped)
            {
                Log.Skipped(logger, s.Path, s.Message);
            }

            if (options.Strict && features.Skipped.Count > 0)
            {
                throw new InvalidDatasetException(features.Skipped.Select(s => new DatasetProblem(s.Path, DatasetProblemKind.BadImage, s.Message)).ToList());
            }

            var trainFeatures = new List<float[][]>();
            var trainLabels = new List<int>();
            for (var i = 0; i < trainImages.Count; i++)
            {
                if (features.Views[i] is { } f)
                {
                    trainFeatures.Add(f);
                    trainLabels.Add(classIndex[trainImages[i].Label]);
                }
            }

            var lost = classes.Where((c, i) => !trainLabels.Contains(i)).ToList();
            if (lost.Count > 0)
            {
                throw new InvalidDatasetException(lost.Select(c => new DatasetProblem(
                    scan.Root.Length > 0 ? Path.Combine(scan.Root, c) : c,
                    DatasetProblemKind.EmptyClass,
                    $"The class '{c}' has no image left for training: its images failed to decode (see the skipped files).")).ToList());
            }

            // Training the head.
            Report(TrainingPhase.Training, 0, 1, null);
            var fit = HeadTrainer.Train(trainFeatures, trainLabels, classes.Count, options, cancellationToken);
            var head = fit.Head;
            EndPhase(TrainingPhase.Training);
            Report(TrainingPhase.Training, 1, 1, TimeSpan.Zero);

            // Evaluating on the validation images: calibrate, choose the unknown threshold, then measure.
            ClassificationMetrics? metrics = null;
            var valActual = new List<int>();
            var valLogits = new List<double[]>();
            for (var i = 0; i < validationImages.Count; i++)
            {
                if (features.Views[trainImages.Count + i] is { } f)
                {
                    valActual.Add(classIndex[validationImages[i].Label]);
                    valLogits.Add(head.Logits(f));
                }
            }

            if (options.UnknownPrecisionTarget is not null && valActual.Count == 0)
            {
                throw new InvalidDatasetException($"No validation image could be used (see the skipped files). {ImageClassifierOptions.NoValidationForTargetMessage}");
            }

            if (valActual.Count > 0)
            {
                Report(TrainingPhase.Evaluating, 0, 1, null);
            }

            var calibration = Calibration.Calibrate(valLogits, valActual, options);
            head = head.WithTemperature(calibration.Temperature);
            foreach (var warning in Calibration.Warnings(calibration))
            {
                warnings.Add(warning);
                Log.Warning(logger, warning);
            }

            if (valActual.Count > 0)
            {
                var valProbabilities = valLogits.Select(l => (IReadOnlyList<float>)LinearHead.Softmax(l, head.Temperature)).ToList();
                metrics = ClassificationMetrics.Compute(classes, valActual, valProbabilities);
                EndPhase(TrainingPhase.Evaluating);
            }

            var counts = classes.Select((c, i) => new ClassCount(
                c,
                trainLabels.Count(l => l == i),
                valActual.Count(l => l == i))).ToList();

            var ignored = scan.IgnoredFiles.Concat(validationScan?.IgnoredFiles ?? []).ToList();
            var report = new TrainingReport
            {
                Classes = classes,
                Counts = counts,
                Skipped = skipped,
                IgnoredFileCount = ignored.Count,
                IgnoredFiles = ignored,
                Warnings = warnings,
                PhaseDurations = durations,
                ValidationMetrics = metrics,
                Options = options,
                FeatureCacheHits = features.CacheHits,
                Calibration = calibration,
                Levers = Levers.Describe(options, fit.Search),
                Regularization = fit.Search,
            };
            Report(TrainingPhase.Completed, 1, 1, TimeSpan.Zero);
            return new ImageClassifierModel(session, head, classes, options.Image, calibration.UnknownThreshold, report, logger, options.TestTimeAugmentation);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads every image's header (and in strict mode decodes it fully), in parallel. Returns the bad ones by path.
    /// </summary>
    private static async Task<IReadOnlyDictionary<string, InvalidImageException>> CheckImagesAsync(
        List<LabeledImage> images,
        ImageClassifierOptions options,
        Action<int, int> progress,
        CancellationToken cancellationToken)
    {
        var bad = new ConcurrentDictionary<string, InvalidImageException>(StringComparer.Ordinal);
        var done = 0;
        var gate = new object(); // Counts and reports together, so Completed only grows.
        var backbone = options.Backbone;
        await Parallel.ForEachAsync(
            images,
            new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount },
            (image, token) =>
            {
                try
                {
                    var bytes = ImageDecoder.ReadFile(image.Path);
                    if (options.Strict)
                    {
                        var rgb = new byte[backbone.InputWidth * backbone.InputHeight * 3];
                        ImageDecoder.DecodeNormalized(bytes, image.Path, options.Image, backbone.InputWidth, backbone.InputHeight, rgb, token);
                    }
                    else
                    {
                        ImageDecoder.Probe(bytes, image.Path, options.Image);
                    }
                }
                catch (InvalidImageException ex)
                {
                    bad[image.Path] = ex;
                }

                lock (gate)
                {
                    progress(++done, images.Count);
                }

                return ValueTask.CompletedTask;
            }).ConfigureAwait(false);
        return bad;
    }
}
