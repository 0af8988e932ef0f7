using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Models;
using PretrainedKit.Training;

namespace PretrainedKit.Reporting;

/// <summary>Evaluate a model and write the HTML report in one call.</summary>
/// <threadsafety>Stateless; safe to call from many threads at once (the model is thread-safe).</threadsafety>
public static class HtmlReportExtensions
{
    /// <summary>
    /// Evaluates the model on a labelled folder and writes the self-contained HTML report of <see cref="HtmlReport"/> to
    /// <paramref name="outputPath"/>. The output path is checked before any image is read.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="dataDirectory">A labelled folder: one sub-folder per class, named as in <see cref="ImageClassifierModel.Classes"/>.</param>
    /// <param name="outputPath">The HTML file to write (atomically); its folder must exist.</param>
    /// <param name="options">What to include; by default <see cref="HtmlReportOptions.Default"/>.</param>
    /// <param name="progress">Receives evaluation progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the evaluation and the rendering.</param>
    /// <returns>The evaluation the report shows.</returns>
    /// <exception cref="DirectoryNotFoundException">The data folder or the report's folder does not exist.</exception>
    /// <exception cref="InvalidDatasetException">A class folder names an unknown class, or no image is usable.</exception>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <exception cref="IOException">The report cannot be written, or the output path is a folder.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static async Task<EvaluationReport> WriteHtmlReportAsync(
        this ImageClassifierModel model,
        string dataDirectory,
        string outputPath,
        HtmlReportOptions? options = null,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= HtmlReportOptions.Default;
        options.Validate();
        if (options.TrainingMetrics is null && model.TrainingReport?.TrainingMetrics is { } training)
        {
            options = options with { TrainingMetrics = training };
        }

        if (options.LeverSearch is null && model.TrainingReport?.LeverSearch is { } search)
        {
            options = options with { LeverSearch = search };
        }

        if (options.Inspection is null && model.TrainingReport?.Inspection is { } inspection)
        {
            options = options with { Inspection = inspection };
        }

        HtmlReport.CheckOutputPath(outputPath);
        var evaluation = await model.EvaluateAsync(dataDirectory, progress, cancellationToken).ConfigureAwait(false);
        await HtmlReport.WriteAsync(evaluation, outputPath, options, cancellationToken).ConfigureAwait(false);
        return evaluation;
    }
}
