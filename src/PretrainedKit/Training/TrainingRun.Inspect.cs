using Microsoft.Extensions.Logging;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;
using PretrainedKit.Inspection;
using PretrainedKit.Internal;

namespace PretrainedKit.Training;

/// <summary>Inspection without training: the stages a training run shares with it, then <see cref="DataInspection.Inspect"/>.</summary>
internal static partial class TrainingRun
{
    /// <summary>
    /// Inspects labelled images (all of them: no validation split) and, when given, test images (compared for leakage):
    /// scan, the dataset rules that need no image read, featurise (through the cache; bad images are listed, never
    /// thrown), choose the levers as training would (so that the out-of-fold head is the one training would fit), inspect.
    /// </summary>
    public static async Task<DataInspectionReport> InspectAsync(
        Func<FolderScan> source, FolderScan? test, ImageClassifierOptions options, ILogger logger, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var reporter = new ProgressReporter(progress, logger);
        reporter.Report(TrainingPhase.Scanning, 0, 0, null);
        var scan = source();
        reporter.EndPhase(TrainingPhase.Scanning);
        var problems = DatasetRules.CheckTraining(scan, null);
        if (problems.Count > 0)
        {
            throw new InvalidDatasetException(problems);
        }

        cancellationToken.ThrowIfCancellationRequested();
        reporter.Report(TrainingPhase.LoadingBackbone, 0, 1, null);
        var (space, layout, trainViews, _) = Plan(options);
        var runtime = TrainingRun.OpenBackbone(options, layout, scan, logger, cancellationToken);
        var testImages = test?.Images ?? [];
        FeatureSet features;
        using (var featurizer = new FeatureExtractor(runtime, options.Image, options.FeatureCache.Enabled ? new FeatureCache(options.FeatureCache) : null))
        {
            featurizer.Warm(SessionProfile.Throughput);
            reporter.EndPhase(TrainingPhase.LoadingBackbone);
            features = await featurizer.ExtractAsync(
                [.. scan.Images.Concat(testImages).Select(i => ImageInput.FromFile(i.Path))],
                i => i < scan.Images.Count ? trainViews : [ImageView.Original],
                (d, n, eta) => reporter.Report(TrainingPhase.Featurizing, d, n, eta),
                cancellationToken,
                hashContent: true).ConfigureAwait(false);
            reporter.EndPhase(TrainingPhase.Featurizing);
        }

        foreach (var s in features.Skipped)
        {
            Log.Skipped(logger, s.Path, s.Message);
        }

        var classIndex = scan.Classes.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
        var usable = Enumerable.Range(0, scan.Images.Count).Where(i => features.Views[i] is not null).ToList();
        var hashes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        KeepHashes([.. scan.Images.Concat(testImages)], features, hashes);

        var data = new Featurized([.. usable.Select(i => features.Views[i]!)], [.. usable.Select(i => classIndex[scan.Images[i].Label])], [], [], 0, [], [.. features.Skipped], features.CacheHits)
        {
            TrainPaths = [.. usable.Select(i => scan.Images[i].Path)],
            ContentHashes = hashes,
        };
        var featurised = data;
        if (space is not null)
        {
            (_, options, data) = SearchLevers(data, trainViews, [ImageView.Original], scan.Classes.Count, options, space, runtime, reporter, cancellationToken);
        }

        // The test images' vectors, cut like the training ones to the chosen layout (a prefix of the featurised one).
        var length = data.TrainViews.Count > 0 ? data.TrainViews[0][0].Length : runtime.FeatureSize;
        var testItems = Enumerable.Range(0, testImages.Count)
            .Where(t => features.Views[scan.Images.Count + t] is not null)
            .Select(t => (Image: testImages[t], Vector: features.Views[scan.Images.Count + t]![0]))
            .Select(x => new InspectionItem(x.Image.Path, classIndex.GetValueOrDefault(x.Image.Label, -1), x.Image.Label, hashes.GetValueOrDefault(x.Image.Path), x.Vector[..length], x.Vector))
            .ToList();
        reporter.Report(TrainingPhase.Inspecting, 0, 1, null);
        var report = DataInspection.Inspect(
            [.. data.TrainPaths.Select((p, i) => new InspectionItem(p, data.TrainLabels[i], scan.Classes[data.TrainLabels[i]], hashes.GetValueOrDefault(p), data.TrainViews[i][0], featurised.TrainViews[i][0]))],
            testItems, scan.Classes, options, runtime.Layout, data.Skipped, cancellationToken);
        reporter.Report(TrainingPhase.Inspecting, 1, 1, TimeSpan.Zero);
        reporter.EndPhase(TrainingPhase.Inspecting);
        reporter.Complete();
        return report;
    }
}
