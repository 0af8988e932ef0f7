namespace PretrainedKit.ActiveLearning;

/// <summary>How the uncertainty of a prediction is measured, from its calibrated probabilities.</summary>
public enum UncertaintyMeasure
{
    /// <summary>1 minus the margin between the two most probable classes: 1 when they tie, 0 when one class has all the probability.</summary>
    Margin,

    /// <summary>The entropy of the probabilities divided by its largest possible value (log of the class count): 1 when every class is equally probable.</summary>
    Entropy,
}

/// <summary>
/// How <c>ImageClassifierModel.SuggestLabelsAsync</c> ranks unlabelled images. Options are immutable; make a changed copy
/// with <c>with</c>.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record LabelingSuggestionOptions
{
    /// <summary>The default number of suggestions.</summary>
    public const int DefaultTop = 20;

    /// <summary>The default robust z-score of the distance to the nearest labelled image above which an image is listed as likely unknown.</summary>
    public const double DefaultUnknownScore = 3.5;

    /// <summary>Gets the default options.</summary>
    public static LabelingSuggestionOptions Default { get; } = new();

    /// <summary>Gets how many images to suggest.</summary>
    /// <value>The default is 20.</value>
    public int Top { get; init; } = DefaultTop;

    /// <summary>Gets how the uncertainty of each prediction is measured.</summary>
    /// <value>The default is <see cref="UncertaintyMeasure.Margin"/>.</value>
    public UncertaintyMeasure Uncertainty { get; init; } = UncertaintyMeasure.Margin;

    /// <summary>
    /// Gets a value indicating whether near-copies are kept apart: among the most uncertain images (<see cref="CandidateFactor"/>
    /// times <see cref="Top"/>), each next suggestion maximises uncertainty times min(1, d / s), d being its embedding
    /// distance to the nearest image already suggested or labelled and s the typical distance between neighbouring candidates;
    /// a greedy, uncertainty-weighted form of k-center selection. Off: the most uncertain images, near-copies and all.
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool Diversity { get; init; } = true;

    /// <summary>
    /// Gets a value indicating whether typical images are preferred over atypical ones: each candidate's score is also
    /// multiplied by the percentile, among the unlabelled images, of its mean similarity to its 10 nearest unlabelled
    /// images (1 for the most typical), so that a label teaches about many images rather than an odd one.
    /// </summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool Typicality { get; init; }

    /// <summary>Gets how many times <see cref="Top"/> of the most uncertain images are candidates for the diverse choice (at most 4,096 in all).</summary>
    /// <value>The default is 10.</value>
    public int CandidateFactor { get; init; } = 10;

    /// <summary>
    /// Gets the images already labelled (for example the training images): suggestions far from them count as new, and an
    /// image unusually far from all of them (and from the model's kernel centres, for a kernel head) is listed apart as
    /// likely unknown. Without them and with a linear head there is nothing to measure "far from every class" against, and
    /// no image is listed as likely unknown.
    /// </summary>
    /// <value>The default is none.</value>
    public IReadOnlyList<string> LabelledImages { get; init; } = [];

    /// <summary>Gets the robust z-score (median and median absolute deviation over the unlabelled images, when there are at least 20) of the distance to the nearest labelled image above which an image is listed as likely unknown.</summary>
    /// <value>The default is 3.5.</value>
    public double UnknownScore { get; init; } = DefaultUnknownScore;

    /// <summary>Checks every option; all problems are reported together.</summary>
    /// <exception cref="ArgumentException">An option is out of range; the message lists every problem.</exception>
    public void Validate()
    {
        var problems = new List<string>();
        if (Top < 1)
        {
            problems.Add($"Top must be at least 1 (it is {Top}).");
        }

        if (CandidateFactor < 1)
        {
            problems.Add($"CandidateFactor must be at least 1 (it is {CandidateFactor}).");
        }

        if (!Enum.IsDefined(Uncertainty))
        {
            problems.Add($"Uncertainty must be Margin or Entropy (it is {Uncertainty}).");
        }

        if (!(UnknownScore > 0) || double.IsInfinity(UnknownScore))
        {
            problems.Add($"UnknownScore must be a finite number above 0 (it is {UnknownScore}).");
        }

        if (LabelledImages is null || LabelledImages.Any(string.IsNullOrEmpty))
        {
            problems.Add("LabelledImages must not hold a null or empty path.");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid labelling suggestion options: " + string.Join(" ", problems));
        }
    }
}
