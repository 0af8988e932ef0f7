using PretrainedKit.Data;

namespace PretrainedKit.Inspection;

/// <summary>
/// What inspection found in a labelled image set: likely label errors, duplicates (and leakage between the training
/// images and the test or validation images), and outliers, each list most certain first. Nothing is moved or deleted:
/// the user decides.
/// </summary>
public sealed record DataInspectionReport
{
    /// <summary>Gets the images whose given label is likely wrong, most certain first.</summary>
    public required IReadOnlyList<LabelIssue> LabelIssues { get; init; }

    /// <summary>Gets the pairs of identical or near-identical images: exact byte copies first, then by similarity.</summary>
    public required IReadOnlyList<DuplicatePair> Duplicates { get; init; }

    /// <summary>Gets the images far from every other image of the set, most distant first.</summary>
    public required IReadOnlyList<OutlierImage> Outliers { get; init; }

    /// <summary>Gets, per class, a typical image: the one its out-of-fold model was surest of (shown next to a suspect label's image in the HTML report).</summary>
    public IReadOnlyDictionary<string, string> TypicalImages { get; init; } = new Dictionary<string, string>();

    /// <summary>Gets how many labelled (training) images were inspected.</summary>
    public required int ImageCount { get; init; }

    /// <summary>Gets how many test or validation images were compared with them for leakage.</summary>
    public required int TestImageCount { get; init; }

    /// <summary>Gets the images that could not be read (named with the reason, as in training); they were not inspected.</summary>
    public required IReadOnlyList<SkippedImage> Skipped { get; init; }

    /// <summary>Gets how the out-of-fold probabilities behind <see cref="LabelIssues"/> were computed (folds, head, temperature).</summary>
    public required string LabelMethod { get; init; }

    /// <summary>Gets the cosine similarity of the features at or above which two different files count as near duplicates where their pixels are not compared (see <see cref="NearDuplicateRule"/>).</summary>
    public required double NearDuplicateThreshold { get; init; }

    /// <summary>Gets the near-duplicate rule that was applied, in words (features alone, or features then aligned pixels).</summary>
    public string NearDuplicateRule { get; init; } = string.Empty;

    /// <summary>Gets the robust z-score (median and median absolute deviation of the distance to the nearest images) above which an image is an outlier.</summary>
    public required double OutlierThreshold { get; init; }

    /// <summary>Gets what could not be judged and why (for example a class with too few images for out-of-fold predictions).</summary>
    public required IReadOnlyList<string> Notes { get; init; }

    /// <summary>Gets how long the inspection took after the features were ready (head fits and similarity search).</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>Gets how long the out-of-fold head fits behind <see cref="LabelIssues"/> took (part of <see cref="Duration"/>).</summary>
    public TimeSpan LabelDuration { get; init; }

    /// <summary>Gets how long the similarity search behind <see cref="Duplicates"/> and <see cref="Outliers"/> took (part of <see cref="Duration"/>).</summary>
    public TimeSpan SimilarityDuration { get; init; }

    /// <summary>Gets whether anything was found.</summary>
    public bool HasFindings => LabelIssues.Count > 0 || Duplicates.Count > 0 || Outliers.Count > 0;

    /// <summary>Gets the duplicates that cross from the training images to the test or validation images (leakage).</summary>
    public IReadOnlyList<DuplicatePair> Leakage => [.. Duplicates.Where(d => d.IsLeakage)];

    /// <summary>Gets one line that names what was found, for example "3 likely label errors, 2 duplicates across training and test".</summary>
    public string Summary
    {
        get
        {
            if (!HasFindings)
            {
                return "nothing found";
            }

            static string Count(int n, string one, string many) => $"{n} {(n == 1 ? one : many)}";
            var parts = new List<string>();
            if (LabelIssues.Count > 0)
            {
                parts.Add(Count(LabelIssues.Count, "likely label error", "likely label errors"));
            }

            var leakage = Duplicates.Count(d => d.IsLeakage);
            var within = Duplicates.Count - leakage;
            if (within > 0)
            {
                parts.Add(Count(within, "duplicate pair", "duplicate pairs") + " within the training images");
            }

            if (leakage > 0)
            {
                parts.Add(Count(leakage, "duplicate pair", "duplicate pairs") + " across training and test");
            }

            var conflicts = Duplicates.Count(d => d.IsConflict);
            if (conflicts > 0)
            {
                parts.Add(Count(conflicts, "conflict", "conflicts") + " (the same image under two labels)");
            }

            if (Outliers.Count > 0)
            {
                parts.Add(Count(Outliers.Count, "outlier", "outliers"));
            }

            return string.Join(", ", parts);
        }
    }
}

/// <summary>An image whose given label is likely wrong: a model that had not seen it is confident it belongs to another class.</summary>
/// <param name="Path">The image file.</param>
/// <param name="GivenLabel">The label it has (its folder).</param>
/// <param name="SuggestedLabel">The class the out-of-fold model puts it in.</param>
/// <param name="Score">How certain the label is wrong: 1 minus the out-of-fold probability of <paramref name="GivenLabel"/> (0 to 1, higher is more certain).</param>
/// <param name="GivenLabelProbability">The out-of-fold (calibrated) probability of the given label.</param>
/// <param name="SuggestedLabelProbability">The out-of-fold (calibrated) probability of the suggested label.</param>
public sealed record LabelIssue(string Path, string GivenLabel, string SuggestedLabel, double Score, double GivenLabelProbability, double SuggestedLabelProbability);

/// <summary>How two files are the same image.</summary>
public enum DuplicateKind
{
    /// <summary>The same bytes.</summary>
    Exact,

    /// <summary>Different files that are the same picture: re-encoded, resized, slightly cropped or mirrored copies (similar features, and where the pixels were compared, pixels that line up).</summary>
    Near,
}

/// <summary>Two files that are the same image.</summary>
/// <param name="Path">The first file (the training image when the pair crosses to the test images).</param>
/// <param name="Label">Its label.</param>
/// <param name="OtherPath">The second file (the test or validation image when <paramref name="IsLeakage"/>).</param>
/// <param name="OtherLabel">Its label.</param>
/// <param name="Kind">Exact (same bytes) or near (similar features).</param>
/// <param name="Similarity">The cosine similarity of their features (1 for exact copies).</param>
/// <param name="IsLeakage">Whether one is a training image and the other a test or validation image: the model is tested on an image it learned from.</param>
public sealed record DuplicatePair(string Path, string Label, string OtherPath, string OtherLabel, DuplicateKind Kind, double Similarity, bool IsLeakage)
{
    /// <summary>
    /// Gets how well the two pictures line up pixel for pixel, from -1 to 1 (the best correlation of small grey
    /// thumbnails of the first with the second drawn mirrored, scaled and shifted a little); <see langword="null"/> for
    /// exact copies and where the pixels were not compared (features other than the grid layout, or a file that could not
    /// be read again).
    /// </summary>
    public double? AlignedSimilarity { get; init; }

    /// <summary>Gets whether the two copies carry different labels (at least one label is wrong).</summary>
    public bool IsConflict => !string.Equals(Label, OtherLabel, StringComparison.Ordinal);
}

/// <summary>An image far from every other image of the set (for example a screenshot or a blank image in a folder of photos).</summary>
/// <param name="Path">The image file.</param>
/// <param name="Label">Its label.</param>
/// <param name="Score">Its robust z-score: how many (scaled) median absolute deviations its distance to its nearest images lies above the median distance.</param>
/// <param name="NearestClass">The class whose images it is closest to on average.</param>
/// <param name="NeighbourSimilarity">The mean cosine similarity to its nearest images (low means far from everything).</param>
public sealed record OutlierImage(string Path, string Label, double Score, string NearestClass, double NeighbourSimilarity);
