using System.Diagnostics;
using System.Globalization;
using PretrainedKit.Backbones;
using PretrainedKit.Data;
using PretrainedKit.Inspection;
using PretrainedKit.Models;

namespace PretrainedKit.Training;

/// <summary>
/// One image for <see cref="DataInspection.Inspect"/>: its file, class (an index into the training classes, or -1 for a
/// test image of another class), label, content hash, the features the head sees (original view, chosen layout) and the
/// features as featurised (original view, the richest layout: what similarity is measured on).
/// </summary>
internal sealed record InspectionItem(string Path, int Class, string Label, byte[]? ContentHash, float[] Features, float[] Featurised);

/// <summary>
/// Inspection's training half: out-of-fold probabilities for every labelled image from the same head and settings as
/// the real training (closed-form heads; the L-BFGS linear head is stood in for by the closed-form ridge head), then
/// <see cref="DataInspector"/> for the findings.
/// </summary>
internal static class DataInspection
{
    /// <summary>The most folds the out-of-fold predictions use.</summary>
    public const int MaxFolds = 5;

    /// <summary>Inspects labelled images (label issues, duplicates, outliers) and test images (leakage only).</summary>
    public static DataInspectionReport Inspect(
        IReadOnlyList<InspectionItem> labelled, IReadOnlyList<InspectionItem> test, IReadOnlyList<string> classes, ImageClassifierOptions options,
        FeatureLayout featurisedLayout, IReadOnlyList<SkippedImage> skipped, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var (probabilities, method, notes) = OutOfFold(labelled.Select(i => i.Features).ToList(), labelled.Select(i => i.Class).ToList(), classes, options, cancellationToken);
        var issues = DataInspector.FindLabelIssues(probabilities, labelled.Select(i => i.Class).ToList(), classes, labelled.Select(i => i.Path).ToList());
        var stages = featurisedLayout == FeatureLayout.Pooled ? [] : options.Backbone.Stages;
        var threshold = NearDuplicateThreshold(featurisedLayout, stages);
        InspectedImage Image(InspectionItem i, bool isTest) => new(i.Path, i.Label, isTest, i.ContentHash, i.Featurised, featurisedLayout == FeatureLayout.MultiStageGrid ? MirrorCells(i.Featurised, stages) : null);
        var images = labelled.Select(i => Image(i, false)).Concat(test.Select(i => Image(i, true))).ToList();
        var (duplicates, outliers) = DataInspector.FindDuplicatesAndOutliers(images, threshold, cancellationToken);
        return new DataInspectionReport
        {
            LabelIssues = issues,
            Duplicates = duplicates,
            Outliers = outliers,
            ImageCount = labelled.Count,
            TestImageCount = test.Count,
            Skipped = skipped,
            LabelMethod = method,
            NearDuplicateThreshold = threshold,
            OutlierThreshold = DataInspector.OutlierThreshold,
            Notes = notes,
            Duration = stopwatch.Elapsed,
        };
    }

    /// <summary>
    /// The near-duplicate threshold for the layout similarity is measured on, chosen from the measurement in
    /// bench/results/duplicates-calibration.md (the lowest false-pair rate at which at least 98 % of re-encoded, resized,
    /// cropped and mirrored copies were found on both colour sets): grid features (with mirrored cells) 0.96, multi-stage
    /// features 0.98, pooled features 0.92.
    /// </summary>
    public static double NearDuplicateThreshold(FeatureLayout layout, IReadOnlyList<BackboneStage> stages) => layout switch
    {
        _ when stages.Count == 0 => DataInspector.PooledNearDuplicateThreshold,
        FeatureLayout.MultiStageGrid => DataInspector.GridNearDuplicateThreshold,
        FeatureLayout.MultiStage => DataInspector.MultiStageNearDuplicateThreshold,
        _ => DataInspector.PooledNearDuplicateThreshold,
    };

    /// <summary>
    /// A grid-layout vector as the mirror image would give it, approximately: the quadrant blocks swapped left for right
    /// (the pooled blocks, which are nearly mirror-invariant, kept). Other layouts are returned as they are.
    /// </summary>
    public static float[] MirrorCells(float[] features, IReadOnlyList<BackboneStage> stages)
    {
        var multiStage = MultiStagePooling.FeatureSize(stages, FeatureLayout.MultiStage);
        if (stages.Count == 0 || features.Length != MultiStagePooling.FeatureSize(stages, FeatureLayout.MultiStageGrid))
        {
            return features;
        }

        var result = features.ToArray();
        var offset = multiStage;
        foreach (var stage in stages.Skip(stages.Count - MultiStagePooling.GridStages))
        {
            // Cells 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right: 0 <-> 1 and 2 <-> 3.
            foreach (var (a, b) in new[] { (0, 1), (1, 0), (2, 3), (3, 2) })
            {
                Array.Copy(features, offset + (b * stage.Channels), result, offset + (a * stage.Channels), stage.Channels);
            }

            offset += 4 * stage.Channels;
        }

        return result;
    }

    /// <summary>
    /// Stratified k-fold (at most <see cref="MaxFolds"/>) out-of-fold probabilities, calibrated by one temperature fitted on
    /// all of them. Images of a class with fewer than <see cref="LeverSearch.MinimumImagesPerClass"/> images are never held
    /// out and get no probabilities (they are not judged; the notes say so).
    /// </summary>
    public static (double[]?[] Probabilities, string Method, List<string> Notes) OutOfFold(
        IReadOnlyList<float[]> features, IReadOnlyList<int> labels, IReadOnlyList<string> classes, ImageClassifierOptions options, CancellationToken cancellationToken)
    {
        var k = classes.Count;
        var counts = new int[k];
        foreach (var label in labels)
        {
            counts[label]++;
        }

        var notes = new List<string>();
        var judgedClass = counts.Select(c => c >= LeverSearch.MinimumImagesPerClass).ToArray();
        for (var c = 0; c < k; c++)
        {
            if (!judgedClass[c] && counts[c] > 0)
            {
                notes.Add($"Class '{classes[c]}' has {counts[c]} image{(counts[c] == 1 ? string.Empty : "s")}: its labels were not judged (out-of-fold predictions need at least {LeverSearch.MinimumImagesPerClass} per class).");
            }
        }

        var probabilities = new double[]?[labels.Count];
        if (judgedClass.Count(j => j) < 2)
        {
            notes.Add($"Fewer than two classes have at least {LeverSearch.MinimumImagesPerClass} images: no label was judged.");
            return (probabilities, "not run", notes);
        }

        var folds = Math.Min(MaxFolds, counts.Where((_, c) => judgedClass[c]).Min());
        var fold = HeadTrainer.AssignFolds(labels, k, folds, options.Seed);
        var standIn = options.Head is LinearHeadOptions;
        var fitOptions = standIn ? options with { Head = new RidgeHeadOptions() } : options;
        var logits = new double[]?[labels.Count];
        for (var f = 0; f < folds; f++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var train = Enumerable.Range(0, labels.Count).Where(i => !judgedClass[labels[i]] || fold[i] != f).ToList();
            var held = Enumerable.Range(0, labels.Count).Where(i => judgedClass[labels[i]] && fold[i] == f).ToList();
            var fit = HeadTrainer.Train(train.Select(i => features[i]).ToList(), train.Select(i => labels[i]).ToList(), k, fitOptions, cancellationToken);
            foreach (var i in held)
            {
                logits[i] = fit.Head.Logits(features[i]);
            }
        }

        var judged = Enumerable.Range(0, labels.Count).Where(i => logits[i] is not null).ToList();
        var temperature = Calibration.FitTemperature(judged.Select(i => logits[i]!).ToList(), judged.Select(i => labels[i]).ToList());
        foreach (var i in judged)
        {
            probabilities[i] = [.. ModelDefinition.Softmax(logits[i], temperature).Select(p => (double)p)];
        }

        var head = LeverCandidate.HeadDescription(fitOptions.Head) + (standIn ? " (the closed-form stand-in for the L-BFGS linear head)" : string.Empty);
        return (probabilities, string.Create(CultureInfo.InvariantCulture, $"{folds}-fold out-of-fold probabilities, {head}, temperature {temperature:F2}"), notes);
    }
}
