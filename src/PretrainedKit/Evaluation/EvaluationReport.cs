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
}
