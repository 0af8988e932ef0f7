namespace PretrainedKit.Reporting;

/// <summary>What goes into an HTML evaluation report written by <see cref="HtmlReport"/>.</summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record HtmlReportOptions
{
    /// <summary>The default number of worst mistakes shown.</summary>
    public const int DefaultWorstMistakes = 12;

    /// <summary>The default number of most-confused class pairs shown.</summary>
    public const int DefaultConfusedPairs = 10;

    /// <summary>The default edge of a thumbnail, in pixels.</summary>
    public const int DefaultThumbnailSize = 128;

    /// <summary>The default of <see cref="InspectionFindings"/>.</summary>
    public const int DefaultInspectionFindings = 12;

    /// <summary>Gets the title of the page.</summary>
    /// <value>The default is "PretrainedKit evaluation report".</value>
    public string Title { get; init; } = "PretrainedKit evaluation report";

    /// <summary>Gets how many of the worst mistakes (wrongly classified images with the highest loss) are shown as thumbnails.</summary>
    /// <value>The default is 12; 0 leaves the section empty; at most 1000.</value>
    public int WorstMistakes { get; init; } = DefaultWorstMistakes;

    /// <summary>Gets how many of the most-confused (actual, predicted) class pairs are listed.</summary>
    /// <value>The default is 10; 0 leaves the section empty; at most 1000.</value>
    public int ConfusedPairs { get; init; } = DefaultConfusedPairs;

    /// <summary>Gets the edge of the square thumbnails, in pixels (the whole image is shown, padded to a square).</summary>
    /// <value>The default is 128; from 16 to 512.</value>
    public int ThumbnailSize { get; init; } = DefaultThumbnailSize;

    /// <summary>Gets the time printed as the report's creation time.</summary>
    /// <value>The default is <see langword="null"/>: the time the report is rendered.</value>
    public DateTimeOffset? GeneratedAt { get; init; }

    /// <summary>
    /// Gets the metrics of the model on its training images (<see cref="Training.TrainingReport.TrainingMetrics"/>). When set,
    /// the summary shows a "Training set" section with training accuracy and log-loss next to the evaluated ones, so that
    /// overfitting (training far better than evaluation) is visible.
    /// </summary>
    /// <value>The default is <see langword="null"/>: no training-set section. <see cref="HtmlReportExtensions.WriteHtmlReportAsync"/> fills it from a freshly trained model's report when it is not set.</value>
    public Evaluation.ClassificationMetrics? TrainingMetrics { get; init; }

    /// <summary>
    /// Gets what automatic lever choice did when the model was trained (<see cref="Training.TrainingReport.LeverSearch"/>).
    /// When set, the report has a "Lever choice" section: every candidate with its cross-validated score, the chosen one
    /// and why, and the time the search took.
    /// </summary>
    /// <value>The default is <see langword="null"/>: no such section. <see cref="HtmlReportExtensions.WriteHtmlReportAsync"/> fills it from a freshly trained model's report when it is not set.</value>
    public Training.LeverSearchReport? LeverSearch { get; init; }

    /// <summary>
    /// Gets what inspecting the training data found (<see cref="Training.TrainingReport.Inspection"/>, or a
    /// <see cref="Inspection.DataInspectionReport"/> from <c>InspectAsync</c>). When set, the report has a section per
    /// finding kind (likely label errors, duplicates and leakage, outliers) with thumbnails side by side.
    /// </summary>
    /// <value>The default is <see langword="null"/>: no such sections. <see cref="HtmlReportExtensions.WriteHtmlReportAsync"/> fills it from a freshly trained model's report when it is not set.</value>
    public Inspection.DataInspectionReport? Inspection { get; init; }

    /// <summary>Gets how many findings of each kind the inspection sections show (the most certain first).</summary>
    /// <value>The default is <see cref="DefaultInspectionFindings"/> (12); from 0 to 1000.</value>
    public int InspectionFindings { get; init; } = DefaultInspectionFindings;

    /// <summary>Gets the default options.</summary>
    public static HtmlReportOptions Default { get; } = new();

    /// <summary>Checks every option.</summary>
    /// <exception cref="ArgumentException">An option is out of range; the message names it and its allowed range.</exception>
    public void Validate()
    {
        if (WorstMistakes is < 0 or > 1000)
        {
            throw new ArgumentException($"HtmlReportOptions.WorstMistakes must be from 0 to 1000, not {WorstMistakes}.");
        }

        if (ConfusedPairs is < 0 or > 1000)
        {
            throw new ArgumentException($"HtmlReportOptions.ConfusedPairs must be from 0 to 1000, not {ConfusedPairs}.");
        }

        if (InspectionFindings is < 0 or > 1000)
        {
            throw new ArgumentException($"HtmlReportOptions.InspectionFindings must be from 0 to 1000, not {InspectionFindings}.");
        }

        if (ThumbnailSize is < 16 or > 512)
        {
            throw new ArgumentException($"HtmlReportOptions.ThumbnailSize must be from 16 to 512 pixels, not {ThumbnailSize}.");
        }

        if (Title is null)
        {
            throw new ArgumentException("HtmlReportOptions.Title must not be null; use an empty string for no title.");
        }
    }
}
