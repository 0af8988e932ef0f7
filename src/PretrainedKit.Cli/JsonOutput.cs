using System.Text.Json;
using System.Text.Json.Serialization;
using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Models;
using PretrainedKit.Training;

namespace PretrainedKit.Cli;

/// <summary>The metrics file written by <c>train --metrics</c> and <c>evaluate --metrics</c>.</summary>
internal sealed record MetricsDocument(
    string MetricsOn,
    double MicroAccuracy,
    double MacroAccuracy,
    double LogLoss,
    double LogLossReduction,
    IReadOnlyList<double> PerClassLogLoss,
    IReadOnlyList<double> TopKAccuracyForAllK,
    IReadOnlyList<string> Classes,
    IReadOnlyList<PerClassDocument> PerClass,
    IReadOnlyList<IReadOnlyList<int>> ConfusionMatrix,
    IReadOnlyList<SkippedDocument> Skipped,
    int IgnoredFiles,
    int ImagesUsed,
    int ImagesEvaluated,
    IReadOnlyDictionary<string, double> SecondsByPhase)
{
    /// <summary>Gets the calibration and unknown threshold of a training run (<c>train</c> only).</summary>
    public CalibrationReport? Calibration { get; init; }

    /// <summary>Gets the accuracy levers the model was trained with (<c>train</c> only).</summary>
    public IReadOnlyList<TrainingLever>? Levers { get; init; }

    /// <summary>Gets what automatic lever choice did (<c>train</c> only, when it ran).</summary>
    public LeverSearchDocument? LeverSearch { get; init; }

    /// <summary>Gets what inspecting the training data found (<c>train</c> only; see <c>inspect</c> for a test folder too).</summary>
    public InspectionDocument? Inspection { get; init; }

    /// <summary>Gets the test images that are byte-for-byte copies of training images (<c>train --test-dir</c> only).</summary>
    public IReadOnlyList<Evaluation.LeakedImage>? LeakedImages { get; init; }

    /// <summary>Gets the trained head's accuracy and log-loss on its own training images (<c>train</c> only), to compare with the held-out metrics.</summary>
    public TrainingSetDocument? TrainingSet { get; init; }

    public static MetricsDocument Create(string on, ClassificationMetrics m, IEnumerable<SkippedImage> skipped, int ignored, int imagesUsed, IReadOnlyDictionary<string, double> seconds) =>
        new(
            on,
            m.MicroAccuracy,
            m.MacroAccuracy,
            m.LogLoss,
            m.LogLossReduction,
            m.PerClassLogLoss,
            m.TopKAccuracyForAllK,
            m.Classes,
            m.PerClass.Select(c => new PerClassDocument(c.Label, c.Precision, c.Recall, c.F1, c.Support)).ToList(),
            m.ConfusionMatrix,
            skipped.Select(s => new SkippedDocument(s.Path, s.Reason.ToString(), s.Message)).ToList(),
            ignored,
            imagesUsed,
            m.Count,
            seconds);

    public static IReadOnlyDictionary<string, double> Seconds(IReadOnlyDictionary<TrainingPhase, TimeSpan> phases) =>
        phases.ToDictionary(p => JsonNamingPolicy.CamelCase.ConvertName(p.Key.ToString()), p => Math.Round(p.Value.TotalSeconds, 3));
}

internal sealed record TrainingSetDocument(double MicroAccuracy, double MacroAccuracy, double LogLoss, int Images)
{
    public static TrainingSetDocument? Create(ClassificationMetrics? m) => m is null ? null : new(m.MicroAccuracy, m.MacroAccuracy, m.LogLoss, m.Count);
}

internal sealed record PerClassDocument(string Label, double Precision, double Recall, double F1, int Support);

internal sealed record SkippedDocument(string Path, string Reason, string Message);

internal sealed record PredictionDocument(string Path, IReadOnlyList<LabelDocument>? Predictions, string? Error = null)
{
    /// <summary>Gets whether the top probability is below <see cref="Threshold"/> (null on an error line).</summary>
    public bool? IsUnknown { get; init; }

    /// <summary>Gets the unknown threshold applied, if any.</summary>
    public float? Threshold { get; init; }
}

internal sealed record LabelDocument(string Label, double Probability);

internal static class JsonOutput
{
    public static readonly JsonSerializerOptions Indented = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static readonly JsonSerializerOptions Line = new(Indented) { WriteIndented = false };

    /// <summary>Writes a JSON file atomically (temporary file, then rename).</summary>
    public static void WriteFile(string path, object value)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, value.GetType(), Indented);
        PretrainedKit.Internal.AtomicFile.Write(Path.GetFullPath(path), stream => stream.Write(bytes));
    }
}

/// <summary>One candidate of automatic lever choice, with its settings as names.</summary>
internal sealed record LeverCandidateDocument(string FeatureLayout, string Normalization, string Augmentation, string TestTimeAugmentation, string Head, double MeanLogLoss, double StandardError, double Accuracy, string Description)
{
    public static LeverCandidateDocument Create(LeverCandidate c) =>
        new(c.FeatureLayout.ToString(), c.Normalization.ToString(), c.Augmentation.ToString(), c.TestTimeAugmentation.ToString(), c.Head is RidgeHeadOptions ? "Ridge" : c.Head.Kind.ToString(), Math.Round(c.MeanLogLoss, 5), Math.Round(c.StandardError, 5), Math.Round(c.Accuracy, 5), c.Description);
}

/// <summary>What automatic lever choice did, for the <c>train</c> JSON.</summary>
internal sealed record LeverSearchDocument(IReadOnlyList<LeverCandidateDocument> Candidates, LeverCandidateDocument? Chosen, LeverCandidateDocument? Best, string Reason, string Searched, string Fixed, int ImagesUsed, int Folds, int Repetitions, double Seconds)
{
    public static LeverSearchDocument? Create(LeverSearchReport? r) => r is null ? null : new(
        r.Candidates.Select(LeverCandidateDocument.Create).ToList(),
        r.Chosen is null ? null : LeverCandidateDocument.Create(r.Chosen),
        r.Best is null ? null : LeverCandidateDocument.Create(r.Best),
        r.Reason,
        r.Searched.ToString(),
        r.Fixed.ToString(),
        r.ImagesUsed,
        r.Folds,
        r.Repetitions,
        Math.Round(r.Duration.TotalSeconds, 3));
}
