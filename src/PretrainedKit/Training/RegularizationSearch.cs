namespace PretrainedKit.Training;

/// <summary>One candidate of the regularisation search and how it scored.</summary>
/// <param name="L2">The L2 weight tried.</param>
/// <param name="MeanLogLoss">The mean held-out log-loss over the folds (lower is better).</param>
/// <param name="StandardError">The standard error of that mean.</param>
public sealed record RegularizationCandidate(float L2, double MeanLogLoss, double StandardError);

/// <summary>
/// How <see cref="LinearHeadOptions.L2Regularization"/> was chosen when <see cref="LinearHeadOptions.AutoRegularization"/>
/// is on: stratified k-fold cross-validation on the training features (all views of one image stay in one fold), scored
/// by held-out log-loss, then the one-standard-error rule: the strongest regularisation whose score is within one
/// standard error of the best. With few images the fold scores are noisy and the plain minimum often picks a weak
/// penalty that does not generalise; the rule trades a statistically invisible loss for a stable, conservative choice.
/// With fewer than <see cref="MinimumImagesPerClass"/> images in some class no search runs and the given value is kept.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record RegularizationSearch
{
    /// <summary>The fewest training images per class for which the search runs.</summary>
    public const int MinimumImagesPerClass = 3;

    /// <summary>Gets the L2 weights tried.</summary>
    public static IReadOnlyList<float> DefaultCandidates { get; } = [0.3f, 1f, 3f, 10f, 30f, 100f, 300f];

    /// <summary>Gets every candidate with its score, weakest penalty first; empty when the search did not run.</summary>
    public required IReadOnlyList<RegularizationCandidate> Candidates { get; init; }

    /// <summary>Gets the L2 weight the final layer was trained with.</summary>
    public required float ChosenL2 { get; init; }

    /// <summary>Gets the candidate with the lowest mean log-loss, or <see langword="null"/> when the search did not run.</summary>
    public float? BestL2 { get; init; }

    /// <summary>Gets the number of folds per repetition (0 when the search did not run).</summary>
    public required int Folds { get; init; }

    /// <summary>Gets how many times the folds were drawn anew (more with fewer images, to steady the scores).</summary>
    public required int Repetitions { get; init; }

    /// <summary>Gets why the search did not run, or <see langword="null"/> when it did.</summary>
    public string? SkippedBecause { get; init; }
}
