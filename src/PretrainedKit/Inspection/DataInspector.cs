using System.Numerics.Tensors;
using PretrainedKit.Imaging;
using PretrainedKit.Models;
using PretrainedKit.Onnx;

namespace PretrainedKit.Inspection;

/// <summary>One image as inspection sees it.</summary>
/// <param name="Path">The file.</param>
/// <param name="Label">Its label.</param>
/// <param name="IsTest">Whether it is a test or validation image (compared for leakage only).</param>
/// <param name="ContentHash">The SHA-256 of its bytes, or <see langword="null"/> when unknown.</param>
/// <param name="Vector">Its features for similarity (any length; compared by cosine).</param>
/// <param name="Mirrored">Its features as its mirror image would give them, where the layout can tell (grid cells swapped), else <see langword="null"/>.</param>
internal sealed record InspectedImage(string Path, string Label, bool IsTest, byte[]? ContentHash, float[] Vector, float[]? Mirrored = null);

/// <summary>
/// The findings from features and out-of-fold probabilities: confident-learning label issues, exact and near duplicates
/// (with leakage and conflicts), and outliers. Pure arithmetic: no image is read here (the aligned thumbnails of
/// near-duplicate candidates come from the caller), and nothing is trained.
/// </summary>
internal static class DataInspector
{
    /// <summary>
    /// The near-duplicate threshold on grid features, the better of as-is and mirrored cells, where the pixels cannot be
    /// compared (bench/results/duplicates-calibration.md).
    /// </summary>
    public const double GridNearDuplicateThreshold = 0.96;

    /// <summary>
    /// The grid-feature similarity from which a pair is a near-duplicate candidate whose pixels are compared
    /// (<see cref="IsNearDuplicate"/>): every injected copy reached it on Fashion-MNIST and both colour sets.
    /// </summary>
    public const double AlignedCandidateThreshold = 0.92;

    /// <summary>The aligned pixel similarity (<see cref="Imaging.AlignedThumbnail"/>) at which a candidate is a near duplicate.</summary>
    public const double AlignedThreshold = 0.995;

    /// <summary>The grid-feature similarity above which a lower aligned pixel similarity (<see cref="AlignedLowThreshold"/>) suffices.</summary>
    public const double AlignedHighFeatureThreshold = 0.98;

    /// <summary>The aligned pixel similarity that suffices for a candidate whose features are almost identical.</summary>
    public const double AlignedLowThreshold = 0.95;

    /// <summary>The near-duplicate threshold on multi-stage features.</summary>
    public const double MultiStageNearDuplicateThreshold = 0.97;

    /// <summary>The near-duplicate threshold on the backbone's pooled output.</summary>
    public const double PooledNearDuplicateThreshold = 0.92;

    /// <summary>The modified z-score above which an image is an outlier (Iglewicz and Hoaglin's rule: 3.5).</summary>
    public const double OutlierThreshold = 3.5;

    /// <summary>How many nearest images an image's distance to the set is averaged over.</summary>
    public const int Neighbours = 5;

    /// <summary>
    /// Confident learning (Northcutt, Jiang and Chuang, JAIR 2021), the "confident joint" filter ranked by self-confidence:
    /// per class k a threshold t_k, the mean out-of-fold probability of k over the images labelled k; an image labelled i
    /// counts for the class j with the highest probability among those at or above their threshold, and is an issue when
    /// j is not i. Its score is 1 minus the probability of its given label.
    /// </summary>
    /// <param name="probabilities">Per image, the out-of-fold class probabilities (<see langword="null"/>: not judged).</param>
    /// <param name="labels">Per image, its class index.</param>
    /// <param name="classes">The class names.</param>
    /// <param name="paths">Per image, its file.</param>
    /// <returns>The issues, most certain first.</returns>
    public static IReadOnlyList<LabelIssue> FindLabelIssues(IReadOnlyList<double[]?> probabilities, IReadOnlyList<int> labels, IReadOnlyList<string> classes, IReadOnlyList<string> paths)
    {
        var destinations = ConfidentClasses(probabilities, labels, classes.Count);
        var issues = new List<LabelIssue>();
        for (var n = 0; n < labels.Count; n++)
        {
            var given = labels[n];
            var destination = destinations[n];
            if (destination >= 0 && destination != given)
            {
                var p = probabilities[n]!;
                issues.Add(new LabelIssue(paths[n], classes[given], classes[destination], 1 - p[given], p[given], p[destination]));
            }
        }

        return [.. issues.OrderByDescending(i => i.Score).ThenBy(i => i.Path, StringComparer.Ordinal)];
    }

    /// <summary>
    /// The confident joint's assignment of each image: per class k a threshold t_k, the mean out-of-fold probability of k
    /// over the images labelled k; an image counts for the class with the highest probability among those at or above
    /// their threshold (-1 when none is, or when the image was not judged).
    /// </summary>
    /// <param name="probabilities">Per image, the out-of-fold class probabilities (<see langword="null"/>: not judged).</param>
    /// <param name="labels">Per image, its class index.</param>
    /// <param name="classCount">The number of classes.</param>
    /// <returns>Per image, the class it confidently belongs to, or -1.</returns>
    internal static int[] ConfidentClasses(IReadOnlyList<double[]?> probabilities, IReadOnlyList<int> labels, int classCount)
    {
        var sums = new double[classCount];
        var counts = new int[classCount];
        for (var n = 0; n < labels.Count; n++)
        {
            if (probabilities[n] is { } p)
            {
                sums[labels[n]] += p[labels[n]];
                counts[labels[n]]++;
            }
        }

        // A class nobody is judged in has no threshold: it is never a confident destination.
        var thresholds = sums.Select((s, c) => counts[c] > 0 ? s / counts[c] : double.PositiveInfinity).ToArray();
        var destinations = new int[labels.Count];
        for (var n = 0; n < labels.Count; n++)
        {
            destinations[n] = -1;
            if (probabilities[n] is not { } p)
            {
                continue;
            }

            for (var c = 0; c < classCount; c++)
            {
                if (p[c] >= thresholds[c] && (destinations[n] < 0 || p[c] > p[destinations[n]]))
                {
                    destinations[n] = c;
                }
            }
        }

        return destinations;
    }

    /// <summary>
    /// The near-duplicate rule where pixels are compared (chosen on half A of bench/results/duplicates-aligned.md, checked
    /// on half B): grid features at least <see cref="AlignedCandidateThreshold"/>, and the pixels line up
    /// (<see cref="AlignedThreshold"/>), or the features are almost identical (<see cref="AlignedHighFeatureThreshold"/>)
    /// and the pixels line up roughly (<see cref="AlignedLowThreshold"/>: line drawings cropped by a few percent).
    /// </summary>
    /// <param name="featureSimilarity">The pair's grid-feature similarity.</param>
    /// <param name="alignedSimilarity">The pair's aligned pixel similarity.</param>
    /// <returns>Whether the pair is a near duplicate.</returns>
    public static bool IsNearDuplicate(double featureSimilarity, double alignedSimilarity) =>
        featureSimilarity >= AlignedCandidateThreshold
        && (alignedSimilarity >= AlignedThreshold || (featureSimilarity >= AlignedHighFeatureThreshold && alignedSimilarity >= AlignedLowThreshold));

    /// <summary>
    /// Exact duplicates (same content hash), near duplicates (cosine similarity at or above <paramref name="threshold"/>)
    /// among the training images and between them and the test images, and the training images' outliers: the mean
    /// similarity to their <see cref="Neighbours"/> nearest training images (exact copies and the image itself left out)
    /// turned into a distance, flagged above <see cref="OutlierThreshold"/> modified z-scores.
    /// </summary>
    /// <param name="images">The images (training and test).</param>
    /// <param name="threshold">The near-duplicate threshold on features alone.</param>
    /// <param name="cancellationToken">Stops the search.</param>
    /// <param name="thumbnails">
    /// Where given (grid features), each pair at or above <see cref="AlignedCandidateThreshold"/> is judged by
    /// <see cref="IsNearDuplicate"/> on the images' aligned thumbnails; a pair with an image whose thumbnail is
    /// <see langword="null"/> (it could not be read again) falls back to <paramref name="threshold"/>.
    /// </param>
    /// <returns>The duplicate pairs (exact first, then by similarity) and the outliers (most distant first).</returns>
    public static (IReadOnlyList<DuplicatePair> Duplicates, IReadOnlyList<OutlierImage> Outliers) FindDuplicatesAndOutliers(IReadOnlyList<InspectedImage> images, double threshold, CancellationToken cancellationToken, Func<int, AlignedThumbnail?>? thumbnails = null)
    {
        var train = Enumerable.Range(0, images.Count).Where(i => !images[i].IsTest).ToArray();
        var test = Enumerable.Range(0, images.Count).Where(i => images[i].IsTest).ToArray();
        var pairs = new List<DuplicatePair>[train.Length];
        var candidates = new List<(int I, int J, double Similarity, bool Leakage)>[train.Length];
        var featureThreshold = thumbnails is null ? threshold : Math.Min(threshold, AlignedCandidateThreshold);
        var neighbourSimilarity = new double[train.Length];
        var nearestClass = new string[train.Length];
        if (train.Length == 0)
        {
            return ([], []);
        }

        // Exact copies: one group number per distinct content hash (-1: unknown).
        var groups = new Dictionary<string, int>(StringComparer.Ordinal);
        var group = images.Select(i => i.ContentHash is { } h ? groups.TryGetValue(Convert.ToHexString(h), out var g) ? g : groups[Convert.ToHexString(h)] = groups.Count : -1).ToArray();
        bool Same(int i, int j) => group[i] >= 0 && group[i] == group[j];

        // Unit rows; the similarity of i and j is the better of u_i.u_j and u_i.m_j (m: the mirrored vector, where known).
        var columns = images[0].Vector.Length;
        float[] Unit(IEnumerable<int> of, bool mirrored) => MatrixProduct.Rows([.. of.Select(i => FeatureScaling.L2Normalized(mirrored ? images[i].Mirrored! : images[i].Vector))], columns);
        var hasMirror = images.All(i => i.Mirrored is not null);
        var unitTrain = Unit(train, false);
        var unitTest = Unit(test, false);
        var mirrorTrain = hasMirror ? Unit(train, true) : null;
        var mirrorTest = hasMirror ? Unit(test, true) : null;
        float[] Similarities(int start, int rows, float[] others, float[]? othersMirrored, int count)
        {
            var block = unitTrain.AsMemory(start * columns, rows * columns);
            var plain = MatrixProduct.MultiplyTransposed(block, rows, others, count, columns);
            if (othersMirrored is not null)
            {
                TensorPrimitives.Max(plain, MatrixProduct.MultiplyTransposed(block, rows, othersMirrored, count, columns), plain);
            }

            return plain;
        }

        // Blocks of rows: each block is two or four matrix products, then every row of it is read on its own.
        const int Block = 256;
        for (var start = 0; start < train.Length; start += Block)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rows = Math.Min(Block, train.Length - start);
            var within = Similarities(start, rows, unitTrain, mirrorTrain, train.Length);
            var across = Similarities(start, rows, unitTest, mirrorTest, test.Length);
            Parallel.For(0, rows, new ParallelOptions { CancellationToken = cancellationToken }, r =>
            {
                var a = start + r;
                var i = train[a];
                var found = new List<DuplicatePair>();
                var verify = new List<(int I, int J, double Similarity, bool Leakage)>();
                var best = new PriorityQueue<double, double>(Neighbours + 1); // The highest similarities: the lowest leaves first.
                var classSum = new Dictionary<string, (double Sum, int Count)>(StringComparer.Ordinal);
                void Pair(int j, double similarity, bool leakage)
                {
                    var exact = Same(i, j);
                    if (exact)
                    {
                        found.Add(new DuplicatePair(images[i].Path, images[i].Label, images[j].Path, images[j].Label, DuplicateKind.Exact, 1.0, leakage));
                    }
                    else if (similarity >= featureThreshold)
                    {
                        if (thumbnails is null)
                        {
                            found.Add(new DuplicatePair(images[i].Path, images[i].Label, images[j].Path, images[j].Label, DuplicateKind.Near, Math.Min(1.0, similarity), leakage));
                        }
                        else
                        {
                            verify.Add((i, j, similarity, leakage));
                        }
                    }
                }

                for (var b = 0; b < train.Length; b++)
                {
                    var j = train[b];
                    if (b == a)
                    {
                        continue;
                    }

                    double similarity = within[((long)r * train.Length) + b];
                    if (b > a)
                    {
                        Pair(j, similarity, leakage: false); // Each pair once, from its earlier image.
                    }

                    if (!Same(i, j))
                    {
                        best.Enqueue(similarity, similarity);
                        if (best.Count > Neighbours)
                        {
                            best.Dequeue();
                        }

                        var (sum, count) = classSum.GetValueOrDefault(images[j].Label);
                        classSum[images[j].Label] = (sum + similarity, count + 1);
                    }
                }

                for (var t = 0; t < test.Length; t++)
                {
                    Pair(test[t], across[((long)r * test.Length) + t], leakage: true);
                }

                pairs[a] = found;
                candidates[a] = verify;
                var kept = new List<double>();
                while (best.TryDequeue(out var similar, out _))
                {
                    kept.Add(similar);
                }

                neighbourSimilarity[a] = kept.Count > 0 ? kept.Average() : 1.0;
                nearestClass[a] = classSum.Count > 0 ? classSum.MaxBy(c => c.Value.Sum / c.Value.Count).Key : images[i].Label;
            });
        }

        var verified = thumbnails is null ? [] : VerifyNear([.. candidates.SelectMany(c => c)], images, threshold, thumbnails, cancellationToken);
        var duplicates = pairs.SelectMany(p => p).Concat(verified)
            .OrderBy(p => p.Kind)
            .ThenByDescending(p => p.Similarity)
            .ThenBy(p => p.Path, StringComparer.Ordinal)
            .ThenBy(p => p.OtherPath, StringComparer.Ordinal)
            .ToList();

        var outliers = new List<OutlierImage>();
        if (train.Length > Neighbours + 1)
        {
            // Distances to the set; the modified z-score 0.6745 (x - median) / MAD (Iglewicz and Hoaglin, 1993).
            var distances = neighbourSimilarity.Select(s => 1 - s).ToArray();
            var median = Median(distances);
            var mad = Median(distances.Select(d => Math.Abs(d - median)).ToArray());
            if (mad > 0)
            {
                for (var a = 0; a < train.Length; a++)
                {
                    var z = 0.6745 * (distances[a] - median) / mad;
                    if (z > OutlierThreshold)
                    {
                        var i = train[a];
                        outliers.Add(new OutlierImage(images[i].Path, images[i].Label, z, nearestClass[a], neighbourSimilarity[a]));
                    }
                }
            }
        }

        return (duplicates, [.. outliers.OrderByDescending(o => o.Score).ThenBy(o => o.Path, StringComparer.Ordinal)]);
    }

    /// <summary>
    /// Judges the near-duplicate candidates on their aligned thumbnails: each second image's drawings are made once for
    /// all its pairs (grouped, in parallel), so that the work is one set of drawings per image plus one correlation per
    /// drawing and pair.
    /// </summary>
    private static List<DuplicatePair> VerifyNear(
        List<(int I, int J, double Similarity, bool Leakage)> candidates, IReadOnlyList<InspectedImage> images, double threshold, Func<int, AlignedThumbnail?> thumbnails, CancellationToken cancellationToken)
    {
        var found = new DuplicatePair?[candidates.Count];
        var groups = candidates.Select((c, k) => (c, k)).GroupBy(x => x.c.J).ToList();
        Parallel.ForEach(groups, new ParallelOptions { CancellationToken = cancellationToken }, group =>
        {
            var second = thumbnails(group.Key);
            var drawings = second?.Drawings();
            foreach (var ((i, j, similarity, leakage), k) in group)
            {
                var first = thumbnails(i);
                double? aligned = first is not null && drawings is not null ? first.Similarity(drawings) : null;
                var near = aligned is { } value ? IsNearDuplicate(similarity, value) : similarity >= threshold;
                found[k] = near
                    ? new DuplicatePair(images[i].Path, images[i].Label, images[j].Path, images[j].Label, DuplicateKind.Near, Math.Min(1.0, similarity), leakage) { AlignedSimilarity = aligned is { } a ? Math.Min(1.0, a) : null }
                    : null;
            }
        });
        return [.. found.OfType<DuplicatePair>()];
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        var m = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
    }
}
