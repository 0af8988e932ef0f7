using PretrainedKit.Data;

namespace PretrainedKit.Evaluation;

/// <summary>The result of evaluating a model on a labelled folder: metrics plus what was left out.</summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record EvaluationReport
{
    /// <summary>Gets the metrics.</summary>
    public required ClassificationMetrics Metrics { get; init; }

    /// <summary>Gets the images that could not be used, with reasons.</summary>
    public required IReadOnlyList<SkippedImage> Skipped { get; init; }

    /// <summary>Gets the number of files ignored because they do not have an image extension.</summary>
    public required int IgnoredFileCount { get; init; }

    /// <summary>Gets how long the evaluation took.</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>Gets how many image views' features came from the feature cache instead of the backbone (see <see cref="ImageClassifierModel.FeatureCache"/>).</summary>
    public int FeatureCacheHits { get; init; }

    /// <summary>Gets every evaluated image with its true class and probabilities, in the order of the files on disk (used for the worst mistakes of an HTML report).</summary>
    /// <value>The default is empty (a report made by hand without per-image results).</value>
    public IReadOnlyList<EvaluatedImage> Images { get; init; } = [];

    /// <summary>
    /// Gets the evaluated images whose bytes equal one of the model's training images (leakage: the metrics count images
    /// the model learned from). Known only for a model trained in this process with the feature cache or data inspection on
    /// (a loaded model does not know its training images); near copies (re-encoded, resized, mirrored) are found by <c>ImageClassifierBuilder.InspectAsync</c>.
    /// </summary>
    public IReadOnlyList<LeakedImage> LeakedImages { get; init; } = [];

    /// <summary>Gets the model's unknown threshold the evaluation applied, or <see langword="null"/> when the model has none.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public float? UnknownThreshold { get; init; }

    /// <summary>Gets the fraction of images answered (top probability at or above <see cref="UnknownThreshold"/>), or <see langword="null"/> without a threshold.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public double? Coverage { get; init; }

    /// <summary>Gets the fraction of answered images whose class is right, or <see langword="null"/> without a threshold or when no image was answered. <see cref="ClassificationMetrics"/> count every image, answered or not.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public double? AcceptedPrecision { get; init; }
}

/// <summary>An evaluated image that is a byte-for-byte copy of a training image.</summary>
/// <param name="Path">The evaluated image.</param>
/// <param name="TrainingPath">The training image it copies.</param>
public sealed record LeakedImage(string Path, string TrainingPath);
