using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using PretrainedKit.Backbones;
using PretrainedKit.Data;
using PretrainedKit.Imaging;
using PretrainedKit.Inspection;
using PretrainedKit.Models;
using PretrainedKit.Onnx;

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

    /// <summary>
    /// The most training images of a fold fitted with the exact kernel (one Cholesky of that size per fold: about 10 s
    /// at this size on one core). Larger folds are fitted as training fits the head, with its bounded centres.
    /// </summary>
    public const int MaxExactFoldImages = 3000;

    /// <summary>Inspects labelled images (label issues, duplicates, outliers) and test images (leakage only).</summary>
    public static DataInspectionReport Inspect(
        IReadOnlyList<InspectionItem> labelled, IReadOnlyList<InspectionItem> test, IReadOnlyList<string> classes, ImageClassifierOptions options,
        FeatureLayout featurisedLayout, IReadOnlyList<SkippedImage> skipped, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var (probabilities, method, notes) = OutOfFold(labelled.Select(i => i.Features).ToList(), labelled.Select(i => i.Class).ToList(), classes, options, cancellationToken);
        var labelDuration = stopwatch.Elapsed;
        var issues = DataInspector.FindLabelIssues(probabilities, labelled.Select(i => i.Class).ToList(), classes, labelled.Select(i => i.Path).ToList());
        var stages = featurisedLayout == FeatureLayout.Pooled ? [] : options.Backbone.Stages;
        var threshold = NearDuplicateThreshold(featurisedLayout, stages);
        InspectedImage Image(InspectionItem i, bool isTest) => new(i.Path, i.Label, isTest, i.ContentHash, i.Featurised, featurisedLayout == FeatureLayout.MultiStageGrid ? MirrorCells(i.Featurised, stages) : null);
        var images = labelled.Select(i => Image(i, false)).Concat(test.Select(i => Image(i, true))).ToList();
        var similarityStart = stopwatch.Elapsed;
        var pixels = featurisedLayout == FeatureLayout.MultiStageGrid && stages.Count > 0;
        var thumbnails = pixels ? Thumbnails(images, options.Image, cancellationToken) : null;
        var (duplicates, outliers) = DataInspector.FindDuplicatesAndOutliers(images, threshold, cancellationToken, thumbnails);
        var similarityDuration = stopwatch.Elapsed - similarityStart;
        var typical = labelled.Select((item, n) => (item, p: probabilities[n]?[item.Class] ?? -1))
            .GroupBy(x => x.item.Label, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.MaxBy(x => x.p).item.Path, StringComparer.Ordinal);
        return new DataInspectionReport
        {
            TypicalImages = typical,
            LabelIssues = issues,
            Duplicates = duplicates,
            Outliers = outliers,
            ImageCount = labelled.Count,
            TestImageCount = test.Count,
            Skipped = skipped,
            LabelMethod = method,
            NearDuplicateThreshold = threshold,
            NearDuplicateRule = pixels
                ? string.Create(CultureInfo.InvariantCulture, $"feature similarity at least {DataInspector.AlignedCandidateThreshold:F2}, then the pixels compared: aligned similarity at least {DataInspector.AlignedThreshold:F3}, or at least {DataInspector.AlignedLowThreshold:F2} where the features reach {DataInspector.AlignedHighFeatureThreshold:F2} (feature similarity at least {threshold:F2} where a file could not be read again)")
                : string.Create(CultureInfo.InvariantCulture, $"feature similarity at least {threshold:F2}"),
            OutlierThreshold = DataInspector.OutlierThreshold,
            Notes = notes,
            Duration = stopwatch.Elapsed,
            LabelDuration = labelDuration,
            SimilarityDuration = similarityDuration,
        };
    }

    /// <summary>
    /// The aligned thumbnails of near-duplicate candidates, read again from their files on first use (each at most once;
    /// a file that cannot be read or decoded now gives <see langword="null"/>, and its pairs are judged on features alone).
    /// </summary>
    private static Func<int, AlignedThumbnail?> Thumbnails(List<InspectedImage> images, ImagePreprocessingOptions imageOptions, CancellationToken cancellationToken)
    {
        var made = new Lazy<AlignedThumbnail?>[images.Count];
        for (var i = 0; i < made.Length; i++)
        {
            var path = images[i].Path;
            made[i] = new Lazy<AlignedThumbnail?>(() =>
            {
                try
                {
                    return AlignedThumbnail.Decode(ImageDecoder.ReadFile(path), path, imageOptions, cancellationToken);
                }
                catch (InvalidImageException)
                {
                    return null;
                }
            });
        }

        return i => made[i].Value;
    }

    /// <summary>
    /// The near-duplicate threshold on features alone for the layout similarity is measured on, chosen from the
    /// measurement in bench/results/duplicates-calibration.md (the lowest false-pair rate at which at least 98 % of
    /// re-encoded, resized, cropped and mirrored copies were found on both colour sets): grid features (with mirrored
    /// cells) 0.96, multi-stage features 0.97, pooled features 0.92. With grid features it applies only to pairs whose
    /// pixels cannot be compared; the others follow <see cref="DataInspector.IsNearDuplicate"/>.
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

        // Per fold, as the head would be trained on that fold alone: its own feature scaling and class weights, then one
        // kernel ridge fit on the fold's kernel matrix (two matrix products on ONNX Runtime's Gemm, not pairwise dots).
        var n = labels.Count;
        var dimension = features[0].Length;
        var fitHead = options.Head is LinearHeadOptions ? RidgeHeadOptions.Default : options.Head;
        var (kernel, ridge) = LeverSearch.KernelOf(fitHead, dimension);
        var gamma = KernelTrainer.Gamma(dimension);
        var logits = new double[]?[n];
        // The folds in parallel: each factorisation runs on one thread (as in LeverSearch), the products on all of them.
        Parallel.For(0, folds, new ParallelOptions { CancellationToken = cancellationToken }, f =>
        {
            var train = Enumerable.Range(0, n).Where(i => !judgedClass[labels[i]] || fold[i] != f).ToArray();
            var held = Enumerable.Range(0, n).Where(i => judgedClass[labels[i]] && fold[i] == f).ToArray();
            if (train.Length > MaxExactFoldImages)
            {
                // Large folds: the head exactly as training fits it (its bounded centres), at the cost of pairwise products.
                var head = HeadTrainer.Train([.. train.Select(i => features[i])], [.. train.Select(i => labels[i])], k, options with { Head = fitHead }, cancellationToken).Head;
                foreach (var i in held)
                {
                    logits[i] = head.Logits(features[i]);
                }

                return;
            }

            var scaling = HeadTrainer.FitScaling([.. train.Select(i => features[i])], options.Normalization);
            float[] Rows(int[] of) => MatrixProduct.Rows([.. of.Select(i => scaling.Apply(features[i]))], dimension);
            var trainRows = Rows(train);
            var heldRows = Rows(held);
            var m = train.Length;
            var trainGram = MatrixProduct.MultiplyTransposed(trainRows, m, trainRows, m, dimension);
            var heldGram = MatrixProduct.MultiplyTransposed(heldRows, held.Length, trainRows, m, dimension);
            var heldNorms = Enumerable.Range(0, held.Length).Select(h => TensorPrimitives.Dot<float>(heldRows.AsSpan(h * dimension, dimension), heldRows.AsSpan(h * dimension, dimension))).ToArray();
            float Norm(int row) => row < m ? trainGram[((long)row * m) + row] : heldNorms[row - m];

            // Rows 0..m-1 are the fold's training images, m.. its held-out ones; only (training, training) and (held-out, training) are asked.
            double K(int i, int j) => KernelTrainer.Value(kernel, Norm(i), Norm(j), i < m ? trainGram[((long)i * m) + j] : heldGram[((long)(i - m) * m) + j], gamma);
            var foldCounts = new int[k];
            foreach (var i in train)
            {
                foldCounts[labels[i]]++;
            }

            var scores = KernelTrainer.FoldScores(
                K,
                [.. Enumerable.Range(0, m)],
                [.. Enumerable.Range(m, held.Length)],
                row => labels[train[row]],
                row => options.ClassWeighting == ClassWeighting.Balanced ? (double)m / (k * foldCounts[labels[train[row]]]) : 1.0,
                ridge,
                k,
                cancellationToken);
            for (var h = 0; h < held.Length; h++)
            {
                logits[held[h]] = [.. scores[h].Select(v => v * KernelTrainer.LogitScale)];
            }
        });

        var judged = Enumerable.Range(0, labels.Count).Where(i => logits[i] is not null).ToList();
        var temperature = Calibration.FitTemperature(judged.Select(i => logits[i]!).ToList(), judged.Select(i => labels[i]).ToList());
        foreach (var i in judged)
        {
            probabilities[i] = [.. ModelDefinition.Softmax(logits[i], temperature).Select(p => (double)p)];
        }

        var standIn = options.Head is LinearHeadOptions;
        var head = LeverCandidate.HeadDescription(fitHead) + (standIn ? " (the closed-form stand-in for the L-BFGS linear head)" : string.Empty);
        return (probabilities, string.Create(CultureInfo.InvariantCulture, $"{folds}-fold out-of-fold probabilities, {head}, temperature {temperature:F2}"), notes);
    }
}
