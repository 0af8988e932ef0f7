namespace PretrainedKit.Training;

/// <summary>
/// How the model's probabilities were calibrated and how its "unknown" threshold was chosen, both on the validation
/// images. See <see cref="ImageClassifierOptions.Calibrate"/> and <see cref="ImageClassifierOptions.UnknownPrecisionTarget"/>.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record CalibrationReport
{
    /// <summary>Gets the number of validation images the temperature and the threshold were chosen on.</summary>
    public required int ValidationImages { get; init; }

    /// <summary>Gets the temperature T that divides the logits before the softmax (1 when calibration was skipped).</summary>
    public required double Temperature { get; init; }

    /// <summary>Gets why calibration was skipped (and T is 1), or <see langword="null"/> when a temperature was fitted.</summary>
    public string? CalibrationSkippedReason { get; init; }

    /// <summary>Gets a value indicating whether a temperature was fitted on the validation images.</summary>
    public bool Calibrated => CalibrationSkippedReason is null;

    /// <summary>Gets the validation log-loss (mean negative log-likelihood) with T = 1, or <see langword="null"/> without validation images.</summary>
    public double? LogLossBefore { get; init; }

    /// <summary>Gets the validation log-loss with the chosen temperature, or <see langword="null"/> without validation images.</summary>
    public double? LogLossAfter { get; init; }

    /// <summary>Gets the validation expected calibration error (10 equal-width confidence bins) with T = 1, or <see langword="null"/> without validation images.</summary>
    public double? ExpectedCalibrationErrorBefore { get; init; }

    /// <summary>Gets the validation expected calibration error with the chosen temperature, or <see langword="null"/> without validation images.</summary>
    public double? ExpectedCalibrationErrorAfter { get; init; }

    /// <summary>Gets the precision target the threshold was chosen for, or <see langword="null"/> when none was set.</summary>
    public double? UnknownPrecisionTarget { get; init; }

    /// <summary>Gets the chosen threshold: predictions whose top probability is below it are "unknown"; <see langword="null"/> when no target was set.</summary>
    public float? UnknownThreshold { get; init; }

    /// <summary>Gets the fraction of the accepted validation images (top probability at or above the threshold) whose top class is right.</summary>
    public double? ValidationPrecision { get; init; }

    /// <summary>Gets the fraction of validation images accepted at the threshold.</summary>
    public double? ValidationCoverage { get; init; }

    /// <summary>Gets a value indicating whether <see cref="ValidationPrecision"/> reached <see cref="UnknownPrecisionTarget"/>; when it did not, the threshold with the highest precision was taken and a warning was added to the report.</summary>
    public bool? TargetReached { get; init; }
}
