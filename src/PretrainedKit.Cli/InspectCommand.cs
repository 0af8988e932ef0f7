using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using PretrainedKit.Data;
using PretrainedKit.Inspection;

namespace PretrainedKit.Cli;

internal static partial class Commands
{
    /// <summary>How many findings of each kind the text output shows when --top is not given.</summary>
    private const int InspectTextTop = 20;

    public static Command Inspect()
    {
        var data = new Argument<string>("DATA_DIR") { Description = "Folder with one sub-folder per class, or a .csv file with the header 'path,label'." };
        var testDir = new Option<string?>("--test-dir") { Description = "A labelled folder (or .csv file) of test or validation images: those that are also training images are reported (leakage)." };
        var top = new Option<int?>("--top") { Description = $"Show at most N findings of each kind (default: {InspectTextTop} in the text output, all with --json)." };
        var seed = new Option<int>("--seed") { Description = "Seed for the folds.", DefaultValueFactory = _ => 1 };
        var html = new Option<string?>("--html") { Description = "Also write the findings as a self-contained HTML page with thumbnails side by side (written atomically)." };
        var noAuto = new Option<bool>("--no-auto") { Description = "Judge the labels with the plain default head instead of the one automatic lever choice picks (as 'train --no-auto' would)." };
        var (quiet, json) = OutputOptions("the findings as JSON (every finding, or --top N of each kind)");
        var command = new Command("inspect", Help(
            "Find likely label errors, duplicates (and images shared with a test folder), and outliers. Reads the feature cache; moves and deletes nothing.",
            "pretrainedkit inspect photos",
            "pretrainedkit inspect photos --test-dir photos-test --top 50",
            "pretrainedkit inspect photos --html findings.html",
            "pretrainedkit inspect labels.csv --json > findings.json"))
        {
            data, testDir, top, html, seed, noAuto, quiet, json,
        };
        command.SetAction((parse, cancellationToken) => Run(async () =>
        {
            var ui = new ConsoleUi(parse.GetValue(quiet), parse.GetValue(json));
            var limit = parse.GetValue(top);
            if (limit is < 1)
            {
                throw new UserException("--top must be at least 1.");
            }

            var builder = FromData(ImageClassifier.Create(), parse.GetValue(data)!).WithSeed(parse.GetValue(seed)).WithAutomaticLevers(!parse.GetValue(noAuto));
            if (parse.GetValue(testDir) is { } test)
            {
                builder = IsCsv(test) ? builder.WithValidationImages(LabeledImage.ReadCsv(test)) : builder.WithValidationFolder(test);
            }

            var htmlPath = parse.GetValue(html);
            if (htmlPath is not null && Path.GetDirectoryName(Path.GetFullPath(htmlPath)) is { } folder && !Directory.Exists(folder))
            {
                throw new UserException($"The folder of --html does not exist: {folder}");
            }

            var report = await ui.WithProgressAsync(progress => builder.InspectAsync(progress, cancellationToken));
            if (htmlPath is not null)
            {
                await Reporting.HtmlReport.WriteInspectionAsync(report, htmlPath, Reporting.HtmlReportOptions.Default with { Title = "PretrainedKit data inspection", InspectionFindings = limit ?? Reporting.HtmlReportOptions.DefaultInspectionFindings }, cancellationToken);
                ui.Info($"Findings page written to {Path.GetFullPath(htmlPath)}");
            }

            if (ui.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(InspectionDocument.Create(report, limit), JsonOutput.Indented));
                return;
            }

            ui.Skipped(report.Skipped, 0);
            var shown = limit ?? InspectTextTop;
            ui.Info(string.Create(CultureInfo.InvariantCulture, $"Inspected {report.ImageCount} images{(report.TestImageCount > 0 ? $" and {report.TestImageCount} test images" : string.Empty)} in {report.Duration.TotalSeconds:F1} s (out-of-fold fits {report.LabelDuration.TotalSeconds:F1} s, similarity search {report.SimilarityDuration.TotalSeconds:F1} s): {report.Summary}."));
            Section(ui, "Likely label errors (score = 1 - out-of-fold probability of the given label)", report.LabelIssues, shown, i => string.Create(
                CultureInfo.InvariantCulture, $"{i.Score:F3}  {i.Path}  labelled '{i.GivenLabel}', looks like '{i.SuggestedLabel}' (p {i.GivenLabelProbability:F2} vs {i.SuggestedLabelProbability:F2})"));
            Section(ui, "Duplicates (exact: same bytes; near: feature similarity, then pixels where compared)", report.Duplicates, shown, d => string.Create(
                CultureInfo.InvariantCulture, $"{(d.Kind == DuplicateKind.Exact ? "exact" : $"near {d.Similarity:F3}{(d.AlignedSimilarity is { } a ? $", pixels {a:F3}" : string.Empty)}")}{(d.IsLeakage ? " LEAKAGE" : string.Empty)}{(d.IsConflict ? " CONFLICT" : string.Empty)}  {d.Path} ({d.Label}) = {d.OtherPath} ({d.OtherLabel})"));
            Section(ui, "Outliers (robust z-score of the distance to the nearest images)", report.Outliers, shown, o => string.Create(
                CultureInfo.InvariantCulture, $"z {o.Score:F1}  {o.Path} ({o.Label}; closest to '{o.NearestClass}', similarity to its nearest images {o.NeighbourSimilarity:F2})"));
            foreach (var note in report.Notes)
            {
                ui.Info(note);
            }

            ui.Info($"Labels judged by {report.LabelMethod}. Nothing was moved or deleted.");
        }));
        return command;
    }

    private static void Section<T>(ConsoleUi ui, string title, IReadOnlyList<T> findings, int shown, Func<T, string> line)
    {
        if (findings.Count == 0)
        {
            return;
        }

        ui.Info($"{title}: {findings.Count}{(findings.Count > shown ? $", the first {shown} shown (--top N for more)" : string.Empty)}");
        foreach (var finding in findings.Take(shown))
        {
            ui.Line("  " + line(finding));
        }
    }
}

/// <summary>The <c>inspect --json</c> document: every finding (or the first N of each kind), paths and scores, for scripts to act on.</summary>
internal sealed record InspectionDocument(
    string Summary,
    int ImagesInspected,
    int TestImagesCompared,
    IReadOnlyList<LabelIssue> LabelIssues,
    IReadOnlyList<DuplicateDocument> Duplicates,
    IReadOnlyList<OutlierImage> Outliers,
    int LabelIssueCount,
    int DuplicateCount,
    int OutlierCount,
    IReadOnlyList<SkippedDocument> Skipped,
    string LabelMethod,
    double NearDuplicateThreshold,
    string NearDuplicateRule,
    double OutlierThreshold,
    IReadOnlyList<string> Notes,
    double Seconds,
    double LabelSeconds,
    double SimilaritySeconds)
{
    public static InspectionDocument Create(DataInspectionReport r, int? top) => new(
        r.Summary,
        r.ImageCount,
        r.TestImageCount,
        [.. r.LabelIssues.Take(top ?? int.MaxValue)],
        [.. r.Duplicates.Take(top ?? int.MaxValue).Select(DuplicateDocument.Create)],
        [.. r.Outliers.Take(top ?? int.MaxValue)],
        r.LabelIssues.Count,
        r.Duplicates.Count,
        r.Outliers.Count,
        [.. r.Skipped.Select(s => new SkippedDocument(s.Path, s.Reason.ToString(), s.Message))],
        r.LabelMethod,
        r.NearDuplicateThreshold,
        r.NearDuplicateRule,
        r.OutlierThreshold,
        r.Notes,
        Math.Round(r.Duration.TotalSeconds, 3),
        Math.Round(r.LabelDuration.TotalSeconds, 3),
        Math.Round(r.SimilarityDuration.TotalSeconds, 3));
}

/// <summary>A duplicate pair in JSON (the kind as a word; the aligned pixel similarity null where the pixels were not compared).</summary>
internal sealed record DuplicateDocument(string Path, string Label, string OtherPath, string OtherLabel, string Kind, double Similarity, double? AlignedSimilarity, bool Leakage, bool Conflict)
{
    public static DuplicateDocument Create(DuplicatePair d) => new(d.Path, d.Label, d.OtherPath, d.OtherLabel, d.Kind.ToString(), Math.Round(d.Similarity, 5), d.AlignedSimilarity is { } a ? Math.Round(a, 5) : null, d.IsLeakage, d.IsConflict);
}
