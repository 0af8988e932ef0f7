using PretrainedKit.Data;
using PretrainedKit.Evaluation;

namespace PretrainedKit.Training;

/// <summary>How many images of one class were used for training and for validation.</summary>
/// <param name="Label">The class.</param>
/// <param name="Training">Images used to train.</param>
/// <param name="Validation">Images used to validate.</param>
public sealed record ClassCount(string Label, int Training, int Validation);

/// <summary>What happened during training: data used, files left out and why, time per phase, validation metrics.</summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record TrainingReport
{
    /// <summary>Gets the classes, in the model's order.</summary>
    public required IReadOnlyList<string> Classes { get; init; }

    /// <summary>Gets the number of images per class used for training and for validation.</summary>
    public required IReadOnlyList<ClassCount> Counts { get; init; }

    /// <summary>Gets every image that could not be used, with its path and reason.</summary>
    public required IReadOnlyList<SkippedImage> Skipped { get; init; }

    /// <summary>Gets the number of files ignored because they do not have an image extension (or sit outside any class folder).</summary>
    public required int IgnoredFileCount { get; init; }

    /// <summary>Gets the ignored files themselves.</summary>
    public required IReadOnlyList<string> IgnoredFiles { get; init; }

    /// <summary>Gets warnings, such as classes with fewer than <see cref="ImageClassifierOptions.FewImagesWarningThreshold"/> images.</summary>
    public required IReadOnlyList<string> Warnings { get; init; }

    /// <summary>Gets the time spent in each phase.</summary>
    public required IReadOnlyDictionary<TrainingPhase, TimeSpan> PhaseDurations { get; init; }

    /// <summary>Gets the metrics on the validation images (with calibrated probabilities), or <see langword="null"/> when there were none.</summary>
    public ClassificationMetrics? ValidationMetrics { get; init; }

    /// <summary>
    /// Gets the metrics of the trained head on its own training images (the original view of each, with the calibrated
    /// probabilities, as <see cref="ValidationMetrics"/>), so that overfitting shows: a training accuracy near 1 and a
    /// training log-loss far below the validation log-loss mean the head learned the training images rather than the classes.
    /// </summary>
    /// <value>The default is <see langword="null"/> (a report made by hand); a training run always sets it.</value>
    public ClassificationMetrics? TrainingMetrics { get; init; }

    /// <summary>Gets how the probabilities were calibrated and the "unknown" threshold chosen on the validation images.</summary>
    /// <value>The default is <see langword="null"/> (a report made by hand); a training run always sets it.</value>
    public CalibrationReport? Calibration { get; init; }

    /// <summary>Gets the options the model was trained with.</summary>
    public required ImageClassifierOptions Options { get; init; }

    /// <summary>Gets how many images' features came from the feature cache instead of the backbone.</summary>
    public int FeatureCacheHits { get; init; }

    /// <summary>Gets every accuracy lever (feature layout, normalisation, augmentation, test-time augmentation, class weighting, regularisation) with the setting this run used.</summary>
    public IReadOnlyList<TrainingLever> Levers { get; init; } = [];

    /// <summary>Gets how the L2 weight was chosen when <see cref="LinearHeadOptions.AutoRegularization"/> was on; otherwise <see langword="null"/>.</summary>
    public RegularizationSearch? Regularization { get; init; }

    /// <summary>
    /// Gets what automatic lever choice did (<see cref="ImageClassifierOptions.Auto"/>): every candidate with its
    /// cross-validated score, the chosen one and why, and the time it took; <see langword="null"/> when it was off or
    /// every lever was set explicitly. <see cref="Options"/> holds the settings the model was trained with.
    /// </summary>
    public LeverSearchReport? LeverSearch { get; init; }

    /// <summary>Gets what inspecting the data found (likely label errors, duplicates, leakage to the validation images, outliers), or <see langword="null"/> when <see cref="ImageClassifierOptions.InspectData"/> is off.</summary>
    public Inspection.DataInspectionReport? Inspection { get; init; }

    /// <summary>Gets the training images by the SHA-256 of their bytes (hex), so that an evaluation by the trained model can name exact copies of them (leakage). Not saved with the model.</summary>
    internal IReadOnlyDictionary<string, string> TrainingImageHashes { get; init; } = new Dictionary<string, string>();

    /// <summary>Gets the number of images used for training and validation together.</summary>
    public int ImagesUsed => Counts.Sum(c => c.Training + c.Validation);
}
