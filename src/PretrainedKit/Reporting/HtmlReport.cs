using System.Globalization;
using System.Net;
using System.Text;
using PretrainedKit.Evaluation;
using PretrainedKit.Imaging;
using PretrainedKit.Inspection;
using PretrainedKit.Internal;
using PretrainedKit.Models;
using PretrainedKit.Training;

namespace PretrainedKit.Reporting;

/// <summary>
/// Renders an <see cref="EvaluationReport"/> as ONE self-contained HTML page: summary metrics, a per-class table, a
/// confusion-matrix heatmap, the most-confused class pairs, the worst mistakes as embedded thumbnails, and the skipped
/// files with their reasons. Styles are inline and thumbnails are base64 data URIs, so the page works offline and loads
/// no script, font, style sheet or image from anywhere else. It is laid out to read well from phone to desktop width.
/// </summary>
/// <remarks>
/// Every name taken from the data (class names, file paths, messages) is HTML-encoded. Thumbnails are made from the image
/// files listed in <see cref="EvaluationReport.Images"/>, which must still exist; one that cannot be read is shown as a
/// placeholder with the reason.
/// </remarks>
/// <threadsafety>Stateless; safe to call from many threads at once.</threadsafety>
public static class HtmlReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Renders the report as an HTML string.</summary>
    /// <param name="report">The evaluation, for example from <see cref="ImageClassifierModel.EvaluateAsync(string, IProgress{Training.TrainingProgress}, CancellationToken)"/>.</param>
    /// <param name="options">What to include; by default <see cref="HtmlReportOptions.Default"/>.</param>
    /// <param name="cancellationToken">Stops the rendering between thumbnails.</param>
    /// <returns>The whole HTML document.</returns>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static string Render(EvaluationReport report, HtmlReportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(report);
        options ??= HtmlReportOptions.Default;
        options.Validate();
        var m = report.Metrics;
        var html = Begin(options, Inv, $"{m.Count} images evaluated, {m.Classes.Count} classes, {report.Skipped.Count} skipped, {report.IgnoredFileCount} ignored; generated {(options.GeneratedAt ?? DateTimeOffset.UtcNow).ToUniversalTime():yyyy-MM-dd HH:mm} UTC in {report.Elapsed.TotalSeconds:F1} s of evaluation.");
        AppendSummary(html, report);
        AppendTrainingSet(html, m, options.TrainingMetrics);
        AppendLeverSearch(html, options.LeverSearch);
        AppendPerClass(html, m);
        AppendConfusion(html, m);
        AppendConfusedPairs(html, m, options.ConfusedPairs);
        AppendWorstMistakes(html, report, options, cancellationToken);
        AppendInspection(html, options.Inspection, options, cancellationToken);
        AppendSkipped(html, report);
        return End(html);
    }

    /// <summary>
    /// Renders what inspecting a labelled image set found as a self-contained page (no scripts, fonts or network): a
    /// section per finding kind with thumbnails side by side (a suspect image and a typical image of the class it looks
    /// like; both images of a duplicate; each outlier).
    /// </summary>
    /// <param name="inspection">The findings (from <c>ImageClassifierBuilder.InspectAsync</c> or <see cref="Training.TrainingReport.Inspection"/>).</param>
    /// <param name="options">The title, thumbnail size and how many findings of each kind; the evaluation options are not used.</param>
    /// <param name="cancellationToken">Stops the rendering between thumbnails.</param>
    /// <returns>The whole HTML document.</returns>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static string RenderInspection(DataInspectionReport inspection, HtmlReportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inspection);
        options ??= HtmlReportOptions.Default with { Title = "PretrainedKit data inspection" };
        options.Validate();
        var html = Begin(options, Inv, $"{inspection.ImageCount} images inspected, {inspection.TestImageCount} test images compared, {inspection.Skipped.Count} skipped; generated {(options.GeneratedAt ?? DateTimeOffset.UtcNow).ToUniversalTime():yyyy-MM-dd HH:mm} UTC. Found: {inspection.Summary}.");
        AppendInspection(html, inspection, options, cancellationToken);
        return End(html);
    }

    /// <summary>Renders <see cref="RenderInspection"/> and writes it to a file, atomically.</summary>
    /// <param name="inspection">The findings.</param>
    /// <param name="path">The HTML file to write; its folder must exist.</param>
    /// <param name="options">The title, thumbnail size and how many findings of each kind.</param>
    /// <param name="cancellationToken">Stops the rendering between thumbnails.</param>
    /// <returns>A task that completes when the file is written.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist; the message names it.</exception>
    /// <exception cref="IOException">The file cannot be written; a previous file is left unchanged.</exception>
    /// <exception cref="ArgumentException">An option is out of range, or the path is empty.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled; nothing is written.</exception>
    public static Task WriteInspectionAsync(DataInspectionReport inspection, string path, HtmlReportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inspection);
        var full = CheckOutputPath(path);
        return WriteHtmlAsync(full, RenderInspection(inspection, options, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// Renders a similar-image search as a self-contained gallery page (no scripts, fonts or network): the query's
    /// thumbnail, then each neighbour's thumbnail with its rank, similarity and file.
    /// </summary>
    /// <param name="queryPath">The query image.</param>
    /// <param name="neighbours">What <see cref="Search.ImageIndex.Search(Search.ImageEmbedder, string, int)"/> returned.</param>
    /// <param name="options">The title and thumbnail size; the other options are not used.</param>
    /// <param name="cancellationToken">Stops the rendering between thumbnails.</param>
    /// <returns>The whole HTML document.</returns>
    /// <exception cref="ArgumentException">An option is out of range, or the query path is empty.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static string RenderSimilar(string queryPath, IReadOnlyList<Search.SimilarImage> neighbours, HtmlReportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(queryPath);
        ArgumentNullException.ThrowIfNull(neighbours);
        options ??= HtmlReportOptions.Default with { Title = "PretrainedKit similar images" };
        options.Validate();
        var html = Begin(options, Inv, $"{neighbours.Count} most similar indexed images (cosine similarity of embeddings); generated {(options.GeneratedAt ?? DateTimeOffset.UtcNow).ToUniversalTime():yyyy-MM-dd HH:mm} UTC.");
        html.Append("<section id=\"query\"><h2>Query</h2><div class=\"findings\"><figure class=\"finding\"><div class=\"pair\"><div class=\"side\">");
        AppendThumbnail(html, queryPath, options.ThumbnailSize);
        html.Append("<div class=\"file\" title=\"").Append(Encode(queryPath)).Append("\">").Append(Encode(ShortName(queryPath))).Append("</div></div></div></figure></div></section>\n");
        html.Append("<section id=\"neighbours\"><h2>Most similar</h2>");
        if (neighbours.Count == 0)
        {
            html.Append("<p class=\"empty\">The index is empty.</p>");
        }
        else
        {
            html.Append("<div class=\"findings\">");
            foreach (var n in neighbours)
            {
                cancellationToken.ThrowIfCancellationRequested();
                html.Append("<figure class=\"finding neighbour\"><div class=\"pair\"><div class=\"side\">");
                AppendThumbnail(html, n.Path, options.ThumbnailSize);
                html.Append("<div class=\"file\" title=\"").Append(Encode(n.Path)).Append("\">").Append(Encode(ShortName(n.Path))).Append("</div></div></div><figcaption>")
                    .Append(Encode(Inv, $"#{n.Rank}, similarity {n.Similarity:F3}")).Append("</figcaption></figure>");
            }

            html.Append("</div>");
        }

        html.Append("</section>\n");
        return End(html);
    }

    /// <summary>Renders <see cref="RenderSimilar"/> and writes it to a file, atomically.</summary>
    /// <param name="queryPath">The query image.</param>
    /// <param name="neighbours">The search result.</param>
    /// <param name="path">The HTML file to write; its folder must exist.</param>
    /// <param name="options">The title and thumbnail size.</param>
    /// <param name="cancellationToken">Stops the rendering between thumbnails.</param>
    /// <returns>A task that completes when the file is written.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist; the message names it.</exception>
    /// <exception cref="IOException">The file cannot be written; a previous file is left unchanged.</exception>
    /// <exception cref="ArgumentException">An option is out of range, or a path is empty.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled; nothing is written.</exception>
    public static Task WriteSimilarAsync(string queryPath, IReadOnlyList<Search.SimilarImage> neighbours, string path, HtmlReportOptions? options = null, CancellationToken cancellationToken = default)
    {
        var full = CheckOutputPath(path);
        return WriteHtmlAsync(full, RenderSimilar(queryPath, neighbours, options, cancellationToken), cancellationToken);
    }

    private static StringBuilder Begin(HtmlReportOptions options, IFormatProvider provider, FormattableString subtitle)
    {
        var html = new StringBuilder(64 * 1024);
        var title = Encode(options.Title);
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
            .Append("<meta name=\"generator\" content=\"PretrainedKit ").Append(Encode(Version)).Append("\">\n")
            .Append("<title>").Append(title).Append("</title>\n<style>").Append(Css).Append("</style>\n</head>\n<body>\n<main id=\"report\">\n")
            .Append("<header><h1>").Append(title).Append("</h1><p class=\"sub\">").Append(Encode(provider, subtitle)).Append("</p></header>\n");
        return html;
    }

    private static string End(StringBuilder html) =>
        html.Append("<footer>Made by PretrainedKit ").Append(Encode(Version))
            .Append(". This page is self-contained: no scripts, fonts or network access.</footer>\n</main>\n</body>\n</html>\n").ToString();

    private static async Task WriteHtmlAsync(string full, string html, CancellationToken cancellationToken)
    {
        var bytes = new UTF8Encoding(false).GetBytes(html);
        await AtomicFile.WriteAsync(full, (stream, token) => stream.WriteAsync(bytes, token).AsTask(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Renders the report and writes it to a file, atomically (a temporary file next to it, then a rename).</summary>
    /// <param name="report">The evaluation.</param>
    /// <param name="path">The HTML file to write; its folder must exist.</param>
    /// <param name="options">What to include; by default <see cref="HtmlReportOptions.Default"/>.</param>
    /// <param name="cancellationToken">Stops the rendering between thumbnails.</param>
    /// <returns>A task that completes when the file is written.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist; the message names it.</exception>
    /// <exception cref="IOException">The file cannot be written; a previous file is left unchanged.</exception>
    /// <exception cref="ArgumentException">An option is out of range, or the path is empty.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled; nothing is written.</exception>
    public static async Task WriteAsync(EvaluationReport report, string path, HtmlReportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(report);
        var full = CheckOutputPath(path);
        await WriteHtmlAsync(full, Render(report, options, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Checks that a report can be written to <paramref name="path"/> before any expensive work.</summary>
    /// <returns>The absolute path.</returns>
    internal static string CheckOutputPath(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new IOException($"'{full}' is a folder. Give the report a file name, for example '{Path.Combine(full, "report.html")}'.");
        }

        var folder = Path.GetDirectoryName(full);
        if (folder is not null && !Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"The folder '{folder}' for the report '{Path.GetFileName(full)}' does not exist. Create it or write the report elsewhere.");
        }

        return full;
    }

    /// <summary>The (actual, predicted) pairs with the most mistakes, most first; ties by share of the actual class, then by class order.</summary>
    internal static IReadOnlyList<(int Actual, int Predicted, int Count, double ShareOfActual)> MostConfused(ClassificationMetrics metrics, int count)
    {
        var k = metrics.Classes.Count;
        var pairs = new List<(int, int, int, double)>();
        for (var a = 0; a < k; a++)
        {
            var support = metrics.ConfusionMatrix[a].Sum();
            for (var p = 0; p < k; p++)
            {
                var n = metrics.ConfusionMatrix[a][p];
                if (a != p && n > 0)
                {
                    pairs.Add((a, p, n, (double)n / support));
                }
            }
        }

        return pairs.OrderByDescending(x => x.Item3).ThenByDescending(x => x.Item4).ThenBy(x => x.Item1).ThenBy(x => x.Item2).Take(count).ToList();
    }

    /// <summary>The wrongly classified images with the highest loss, worst first; ties by path.</summary>
    internal static IReadOnlyList<EvaluatedImage> WorstMistakes(EvaluationReport report, int count) =>
        report.Images.Where(i => !i.IsCorrect).OrderByDescending(i => i.Loss).ThenBy(i => i.Path, StringComparer.Ordinal).Take(count).ToList();

    private static string Version =>
        LibraryVersion.Short;

    private static void AppendSummary(StringBuilder html, EvaluationReport report)
    {
        var m = report.Metrics;
        html.Append("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">");
        Card(html, "micro-accuracy", "Accuracy", Percent(m.MicroAccuracy), "share of images whose top class is right");
        Card(html, "macro-accuracy", "Macro accuracy", Percent(m.MacroAccuracy), "mean recall over classes");
        Card(html, "log-loss", "Log-loss", m.LogLoss.ToString("F3", Inv), "mean −ln p(true class); lower is better");
        Card(html, "log-loss-reduction", "Log-loss reduction", m.LogLossReduction.ToString("F3", Inv), "vs. predicting the class frequencies; 1 is perfect, 0 no better");
        for (var k = 2; k <= m.TopKAccuracyForAllK.Count; k++)
        {
            if (k is 2 or 3 or 5)
            {
                Card(html, $"top-{k}", $"Top-{k} accuracy", Percent(m.TopKAccuracyForAllK[k - 1]), $"true class among the {k} most probable");
            }
        }

        Card(html, "images", "Images", m.Count.ToString(Inv), $"{report.Skipped.Count} skipped, {report.IgnoredFileCount} non-image files ignored");
        html.Append("</div></section>\n");
    }

    private static void Card(StringBuilder html, string id, string name, string value, string hint) =>
        html.Append("<div class=\"card\" id=\"card-").Append(id).Append("\"><div class=\"name\">").Append(Encode(name))
            .Append("</div><div class=\"value\">").Append(Encode(value)).Append("</div><div class=\"hint\">").Append(Encode(hint)).Append("</div></div>");

    private static void AppendTrainingSet(StringBuilder html, ClassificationMetrics m, ClassificationMetrics? training)
    {
        if (training is null)
        {
            return;
        }

        html.Append("<section id=\"training-set\"><h2>Training set</h2>")
            .Append("<p class=\"note\">The model on its own training images. Much better here than above means overfitting: more images or stronger regularisation help.</p>")
            .Append("<div class=\"scroll\"><table id=\"training-set-table\"><thead><tr><th scope=\"col\">Metric</th><th scope=\"col\">Training</th><th scope=\"col\">Evaluated</th></tr></thead><tbody>")
            .Append("<tr><th scope=\"row\">Accuracy</th><td>").Append(Percent(training.MicroAccuracy)).Append("</td><td>").Append(Percent(m.MicroAccuracy)).Append("</td></tr>")
            .Append("<tr><th scope=\"row\">Log-loss</th><td>").Append(training.LogLoss.ToString("F3", Inv)).Append("</td><td>").Append(m.LogLoss.ToString("F3", Inv)).Append("</td></tr>")
            .Append("<tr><th scope=\"row\">Images</th><td>").Append(training.Count.ToString(Inv)).Append("</td><td>").Append(m.Count.ToString(Inv)).Append("</td></tr>")
            .Append("</tbody></table></div></section>\n");
    }

    private static void AppendLeverSearch(StringBuilder html, LeverSearchReport? search)
    {
        if (search is null)
        {
            return;
        }

        html.Append("<section id=\"lever-choice\"><h2>Lever choice</h2>");
        if (search.Chosen is not { } chosen)
        {
            html.Append("<p class=\"note\">Automatic lever choice ").Append(Encode(search.Reason)).Append("</p></section>\n");
            return;
        }

        html.Append("<p class=\"note\">Chosen by ").Append(search.Folds.ToString(Inv)).Append("-fold cross-validation x").Append(search.Repetitions.ToString(Inv))
            .Append(" on ").Append(search.ImagesUsed.ToString(Inv)).Append(" training images (validation and test images never decide) in ")
            .Append(search.Duration.TotalSeconds.ToString("F1", Inv)).Append(" s: <strong>").Append(Encode(chosen.Description)).Append("</strong>. Why: ")
            .Append(Encode(search.Reason)).Append(". Kept as given: ").Append(Encode(search.Fixed == AutoLevers.None ? "none" : search.Fixed.ToString())).Append('.');
        if (chosen.TestTimeAugmentation != TestTimeAugmentation.None)
        {
            html.Append(" Each prediction runs the backbone twice (the image and its mirror image); SingleViewPrediction (CLI --single-view) keeps it to one run.");
        }

        html.Append("</p><div class=\"scroll\"><table id=\"lever-choice-table\"><thead><tr><th scope=\"col\"></th><th scope=\"col\">Candidate</th><th scope=\"col\">Held-out log-loss</th><th scope=\"col\">Standard error</th><th scope=\"col\">Held-out accuracy</th></tr></thead><tbody>");
        foreach (var c in search.Candidates)
        {
            html.Append(c == chosen ? "<tr class=\"chosen\"><td>chosen</td>" : "<tr><td></td>").Append("<td>").Append(Encode(c.Description)).Append("</td><td>")
                .Append(c.MeanLogLoss.ToString("F3", Inv)).Append("</td><td>").Append(c.StandardError.ToString("F3", Inv)).Append("</td><td>")
                .Append(Percent(c.Accuracy)).Append("</td></tr>");
        }

        html.Append("</tbody></table></div></section>\n");
    }

    private static void AppendPerClass(StringBuilder html, ClassificationMetrics m)
    {
        html.Append("<section id=\"per-class\"><h2>Per class</h2><div class=\"scroll\"><table id=\"per-class-table\"><thead><tr>")
            .Append("<th scope=\"col\">Class</th><th scope=\"col\">Precision</th><th scope=\"col\">Recall</th><th scope=\"col\">F1</th><th scope=\"col\">Log-loss</th><th scope=\"col\">Images</th></tr></thead><tbody>");
        for (var i = 0; i < m.PerClass.Count; i++)
        {
            var c = m.PerClass[i];
            html.Append("<tr><th scope=\"row\">").Append(Encode(c.Label)).Append("</th>")
                .Append("<td>").Append(c.Precision.ToString("F3", Inv)).Append("</td>")
                .Append("<td>").Append(c.Recall.ToString("F3", Inv)).Append("</td>")
                .Append("<td>").Append(c.F1.ToString("F3", Inv)).Append("</td>")
                .Append("<td>").Append(i < m.PerClassLogLoss.Count ? m.PerClassLogLoss[i].ToString("F3", Inv) : "–").Append("</td>")
                .Append("<td>").Append(c.Support.ToString(Inv)).Append("</td></tr>");
        }

        html.Append("</tbody></table></div></section>\n");
    }

    private static void AppendConfusion(StringBuilder html, ClassificationMetrics m)
    {
        var k = m.Classes.Count;
        html.Append("<section id=\"confusion\"><h2>Confusion matrix</h2>")
            .Append("<p class=\"note\">Rows are the true classes, columns the predicted ones (numbered as the rows). ")
            .Append("The colour shows the share of the row: green on the diagonal (right), red elsewhere (mistakes).</p>")
            .Append("<div class=\"scroll\"><table id=\"confusion-matrix\" class=\"matrix\"><thead><tr><th scope=\"col\" class=\"corner\">true \\ predicted</th>");
        for (var p = 0; p < k; p++)
        {
            html.Append("<th scope=\"col\" title=\"").Append(Encode(m.Classes[p])).Append("\">").Append(p + 1).Append("</th>");
        }

        html.Append("</tr></thead><tbody>");
        for (var a = 0; a < k; a++)
        {
            var row = m.ConfusionMatrix[a];
            var support = row.Sum();
            html.Append("<tr><th scope=\"row\"><span class=\"idx\">").Append(a + 1).Append("</span> ").Append(Encode(m.Classes[a])).Append("</th>");
            for (var p = 0; p < k; p++)
            {
                var n = row[p];
                var share = support == 0 ? 0 : (double)n / support;
                var (r, g, b) = a == p ? (22, 140, 70) : (200, 40, 40);
                var alpha = n == 0 ? 0 : 0.12 + (0.88 * share);
                html.Append("<td class=\"").Append(a == p ? "diag" : "off").Append(alpha > 0.55 ? " dark" : string.Empty).Append('"')
                    .Append(Inv, $" style=\"background:rgba({r},{g},{b},{alpha:F2})\"")
                    .Append(" title=\"").Append(Encode(Inv, $"true {m.Classes[a]}, predicted {m.Classes[p]}: {n} of {support} ({Percent(share)})")).Append("\">")
                    .Append(n == 0 ? string.Empty : n.ToString(Inv)).Append("</td>");
            }

            html.Append("</tr>");
        }

        html.Append("</tbody></table></div></section>\n");
    }

    private static void AppendConfusedPairs(StringBuilder html, ClassificationMetrics m, int count)
    {
        html.Append("<section id=\"confused-pairs\"><h2>Most confused classes</h2>");
        var pairs = MostConfused(m, count);
        if (pairs.Count == 0)
        {
            html.Append("<p class=\"empty\">").Append(count == 0 ? "Not shown (ConfusedPairs is 0)." : "No mistakes: every image got its true class.").Append("</p></section>\n");
            return;
        }

        html.Append("<ol class=\"pairs\">");
        foreach (var (a, p, n, share) in pairs)
        {
            html.Append("<li><span class=\"pair\"><b>").Append(Encode(m.Classes[a])).Append("</b> taken for <b>").Append(Encode(m.Classes[p])).Append("</b></span>")
                .Append("<span class=\"count\">").Append(Inv, $"{n} image{(n == 1 ? string.Empty : "s")}, {Percent(share)} of {Encode(m.Classes[a])}").Append("</span>")
                .Append("<span class=\"bar\" style=\"width:").Append(Math.Round(share * 100).ToString(Inv)).Append("%\"></span></li>");
        }

        html.Append("</ol></section>\n");
    }

    private static void AppendWorstMistakes(StringBuilder html, EvaluationReport report, HtmlReportOptions options, CancellationToken cancellationToken)
    {
        html.Append("<section id=\"worst-mistakes\"><h2>Worst mistakes</h2>");
        if (report.Images.Count == 0)
        {
            html.Append("<p class=\"empty\">This evaluation has no per-image results (EvaluationReport.Images is empty).</p></section>\n");
            return;
        }

        var worst = WorstMistakes(report, options.WorstMistakes);
        if (worst.Count == 0)
        {
            html.Append("<p class=\"empty\">").Append(options.WorstMistakes == 0 ? "Not shown (WorstMistakes is 0)." : "No mistakes: every image got its true class.").Append("</p></section>\n");
            return;
        }

        html.Append("<p class=\"note\">The wrongly classified images with the highest loss (−ln of the probability given to the true class), worst first.</p><div class=\"mistakes\">");
        foreach (var image in worst)
        {
            cancellationToken.ThrowIfCancellationRequested();
            html.Append("<figure class=\"mistake\">");
            AppendThumbnail(html, image.Path, options.ThumbnailSize);

            html.Append("<figcaption><div class=\"truth\">true <b>").Append(Encode(image.Label)).Append("</b> ").Append(Percent(image.LabelProbability)).Append("</div>")
                .Append("<div class=\"predicted\">predicted <b>").Append(Encode(image.PredictedLabel)).Append("</b> ").Append(Percent(image.PredictedProbability)).Append("</div>")
                .Append("<div class=\"loss\">loss ").Append(image.Loss.ToString("F2", Inv)).Append("</div>")
                .Append("<div class=\"file\" title=\"").Append(Encode(image.Path)).Append("\">").Append(Encode(ShortName(image.Path))).Append("</div></figcaption></figure>");
        }

        html.Append("</div></section>\n");
    }

    /// <summary>The inspection sections: likely label errors, duplicates and leakage, outliers; each with thumbnails side by side.</summary>
    private static void AppendInspection(StringBuilder html, DataInspectionReport? inspection, HtmlReportOptions options, CancellationToken cancellationToken)
    {
        if (inspection is null)
        {
            return;
        }

        void Section<T>(string id, string title, string note, IReadOnlyList<T> findings, Func<T, (string Path, string Name)[]> images, Func<T, string> caption)
        {
            html.Append("<section id=\"").Append(id).Append("\"><h2>").Append(Encode(title)).Append("</h2><p class=\"note\">").Append(Encode(note));
            if (findings.Count > options.InspectionFindings)
            {
                html.Append(Inv, $" The first {options.InspectionFindings} of {findings.Count} are shown (HtmlReportOptions.InspectionFindings; the CLI's inspect --json lists all).");
            }

            html.Append("</p>");
            if (findings.Count == 0)
            {
                html.Append("<p class=\"empty\">None found.</p></section>\n");
                return;
            }

            html.Append("<div class=\"findings\">");
            foreach (var finding in findings.Take(options.InspectionFindings))
            {
                cancellationToken.ThrowIfCancellationRequested();
                html.Append("<figure class=\"finding\"><div class=\"pair\">");
                foreach (var (path, name) in images(finding))
                {
                    html.Append("<div class=\"side\">");
                    AppendThumbnail(html, path, options.ThumbnailSize);
                    html.Append("<div class=\"file\" title=\"").Append(Encode(path)).Append("\">").Append(Encode(name)).Append("</div></div>");
                }

                html.Append("</div><figcaption>").Append(caption(finding)).Append("</figcaption></figure>");
            }

            html.Append("</div></section>\n");
        }

        Section(
            "label-issues",
            "Likely label errors",
            $"Images that a model which had not seen them (out-of-fold: {inspection.LabelMethod}) confidently puts in another class, most certain first; each next to a typical image of that class. Nothing was moved: check them, then fix the label or remove the image.",
            inspection.LabelIssues,
            i => inspection.TypicalImages.TryGetValue(i.SuggestedLabel, out var typical)
                ? [(i.Path, ShortName(i.Path)), (typical, "typical " + i.SuggestedLabel)]
                : [(i.Path, ShortName(i.Path))],
            i => $"labelled <b class=\"given\">{Encode(i.GivenLabel)}</b> {Percent(i.GivenLabelProbability)}, looks like <b class=\"suggested\">{Encode(i.SuggestedLabel)}</b> {Percent(i.SuggestedLabelProbability)}");
        Section(
            "duplicates",
            "Duplicates and leakage",
            $"The same image twice: exact (same bytes) or near (re-encoded, resized, cropped or mirrored copies: {(inspection.NearDuplicateRule.Length > 0 ? inspection.NearDuplicateRule : "feature similarity at least " + inspection.NearDuplicateThreshold.ToString("F2", Inv))}). Leakage: a test or validation image that is also a training image, so the model is measured on what it learned. Conflict: the copies carry different labels.",
            inspection.Duplicates,
            d => [(d.Path, ShortName(d.Path)), (d.OtherPath, ShortName(d.OtherPath))],
            d => (d.Kind == DuplicateKind.Exact ? "exact copy" : "near copy, similarity " + d.Similarity.ToString("F3", Inv) + (d.AlignedSimilarity is { } a ? ", pixels " + a.ToString("F3", Inv) : string.Empty))
                + (d.IsLeakage ? " <b class=\"leak\">leakage</b>" : string.Empty) + (d.IsConflict ? $" <b class=\"conflict\">conflict: {Encode(d.Label)} / {Encode(d.OtherLabel)}</b>" : string.Empty));
        Section(
            "outliers",
            "Outliers",
            $"Images far from every other image of the set (robust z-score of the distance to their nearest images above {inspection.OutlierThreshold.ToString("F1", Inv)}), most distant first: a screenshot, a blank or a wrong kind of picture.",
            inspection.Outliers,
            o => [(o.Path, ShortName(o.Path))],
            o => Encode(Inv, $"labelled {o.Label}; z {o.Score:F1}; similarity to its nearest images {o.NeighbourSimilarity:F2}; closest class {o.NearestClass}"));
    }

    private static void AppendThumbnail(StringBuilder html, string path, int size)
    {
        try
        {
            var uri = Thumbnail.DataUri(path, size);
            html.Append(Inv, $"<img src=\"{uri}\" width=\"{size}\" height=\"{size}\" alt=\"").Append(Encode(ShortName(path))).Append("\">");
        }
        catch (InvalidImageException ex)
        {
            html.Append("<div class=\"missing\">").Append(Encode("No thumbnail: " + ex.Message)).Append("</div>");
        }
    }

    private static void AppendSkipped(StringBuilder html, EvaluationReport report)
    {
        html.Append("<section id=\"skipped\"><h2>Skipped files</h2>");
        if (report.IgnoredFileCount > 0)
        {
            html.Append("<p class=\"note\">").Append(Inv, $"{report.IgnoredFileCount} file{(report.IgnoredFileCount == 1 ? string.Empty : "s")} without an image extension or outside class folders were ignored.").Append("</p>");
        }

        if (report.Skipped.Count == 0)
        {
            html.Append("<p class=\"empty\">No image was skipped.</p></section>\n");
            return;
        }

        html.Append("<div class=\"scroll\"><table id=\"skipped-table\"><thead><tr><th scope=\"col\">File</th><th scope=\"col\">Reason</th><th scope=\"col\">Message</th></tr></thead><tbody>");
        foreach (var s in report.Skipped)
        {
            html.Append("<tr><td class=\"file\" title=\"").Append(Encode(s.Path)).Append("\">").Append(Encode(ShortName(s.Path))).Append("</td>")
                .Append("<td>").Append(Encode(s.Reason.ToString())).Append("</td><td class=\"message\">").Append(Encode(s.Message)).Append("</td></tr>");
        }

        html.Append("</tbody></table></div></section>\n");
    }

    /// <summary>The file name with its class folder, e.g. <c>Shirt/00123.png</c>.</summary>
    private static string ShortName(string path)
    {
        var parent = Path.GetFileName(Path.GetDirectoryName(path));
        return string.IsNullOrEmpty(parent) ? Path.GetFileName(path) : parent + "/" + Path.GetFileName(path);
    }

    private static string Percent(double value) => (value * 100).ToString("F1", Inv) + "%";

    private static string Encode(string text) => WebUtility.HtmlEncode(text);

    private static string Encode(IFormatProvider provider, FormattableString text) => WebUtility.HtmlEncode(text.ToString(provider));

    private const string Css = """
:root{--fg:#1d2329;--muted:#5b6670;--line:#dde2e7;--bg:#f6f8fa;--card:#fff;--accent:#2f6feb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.2em 0}
h2{font-size:1.15rem;margin:0 0 .6em}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px;margin:14px 0;overflow-wrap:anywhere}
header{overflow-wrap:anywhere}
.sub,.note,.hint,footer{color:var(--muted)}
.sub{margin:.2em 0 0}
.note{margin:0 0 .8em;font-size:.9rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px}
.card .name{font-size:.85rem;color:var(--muted)}
.card .value{font-size:1.6rem;font-weight:600}
.card .hint{font-size:.75rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th[scope=row],td.file,td.message{text-align:left}
th[scope=row]{white-space:normal;max-width:12em}
td.message{white-space:normal;min-width:14em}
thead th{font-size:.85rem;color:var(--muted)}
#per-class-table thead th:first-child{text-align:left}
.matrix td{min-width:2.4em;text-align:center;border:1px solid #fff}
.matrix td.dark{color:#fff}
.matrix .idx{display:inline-block;min-width:1.6em;color:var(--muted)}
.matrix .corner{font-size:.7rem;text-align:left}
ol.pairs{margin:0;padding-left:1.6em}
ol.pairs li{margin:.35em 0;position:relative}
ol.pairs .pair{margin-right:.6em}
ol.pairs .count{color:var(--muted);font-size:.9rem}
ol.pairs .bar{display:block;height:3px;background:rgba(200,40,40,.45);border-radius:2px;margin-top:2px}
.mistakes{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}
.mistake{margin:0;border:1px solid var(--line);border-radius:8px;padding:8px;background:#fff}
.mistake img{display:block;width:100%;height:auto;max-width:256px;margin:0 auto;border-radius:4px;image-rendering:auto}
.mistake figcaption{font-size:.85rem;margin-top:6px;overflow-wrap:anywhere}
.mistake .truth b{color:#167a3c}
.mistake .predicted b{color:#b42318}
.mistake .loss,.mistake .file{color:var(--muted);font-size:.78rem}
.findings{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.finding{margin:0;border:1px solid var(--line);border-radius:8px;padding:8px;background:#fff}
.finding .pair{display:flex;gap:6px}
.finding .side{flex:1 1 0;min-width:0}
.finding img{display:block;width:100%;height:auto;border-radius:4px}
.finding .file{color:var(--muted);font-size:.75rem;overflow-wrap:anywhere}
.finding figcaption{font-size:.85rem;margin-top:6px;overflow-wrap:anywhere}
.finding .given,.finding .conflict{color:#b42318}
.finding .suggested{color:#167a3c}
.finding .leak{color:#b54708}
.missing{padding:1em;background:var(--bg);color:var(--muted);font-size:.8rem}
.empty{color:var(--muted);margin:0}
footer{font-size:.8rem;text-align:center;margin:20px 0}
@media (max-width:520px){main{padding:8px}section{padding:10px}th,td{padding:4px 5px}.card .value{font-size:1.3rem}.mistakes{grid-template-columns:repeat(2,minmax(0,1fr));gap:8px}.findings{grid-template-columns:minmax(0,1fr)}}
""";
}
