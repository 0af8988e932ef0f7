using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PretrainedKit.ActiveLearning;
using PretrainedKit.Search;

namespace PretrainedKit.Cli;

internal static partial class Commands
{
    public static Command Index()
    {
        var folder = new Argument<string>("DIR") { Description = "Folder of images to index (sub-folders included; files judged by content)." };
        var output = new Option<string>("--out") { Description = "The index file to write (written atomically).", Required = true };
        var model = new Option<string?>("--model") { Description = "Embed with this model (its features as its head scales them) instead of the backbone's plain pooled features." };
        var add = new Option<bool>("--add") { Description = "Add DIR's images to the existing index --out (only the new ones are embedded) instead of building a new one." };
        var (quiet, json) = OutputOptions("a summary (images indexed, skipped, seconds, file size)");
        var command = new Command("index", Help(
            "Build a similar-image index over a folder: one embedding per image, saved to one file. Reads and fills the feature cache.",
            "pretrainedkit index photos --out photos.pkindex",
            "pretrainedkit index photos --out photos.pkindex --model pets.pkmodel",
            "pretrainedkit index new-photos --out photos.pkindex --add"))
        {
            folder, output, model, add, quiet, json,
        };
        command.SetAction((parse, cancellationToken) => Run(async () =>
        {
            var ui = new ConsoleUi(parse.GetValue(quiet), parse.GetValue(json));
            var outPath = Path.GetFullPath(parse.GetValue(output)!);
            var watch = Stopwatch.StartNew();
            ImageIndex index;
            if (parse.GetValue(add))
            {
                if (parse.GetValue(model) is not null)
                {
                    throw new UserException("--add embeds with what the existing index was built with; leave out --model.");
                }

                var existing = ImageIndex.Load(outPath);
                using var embedder = existing.OpenEmbedder();
                index = await ui.WithProgressAsync(progress => existing.AddAsync(embedder, [parse.GetValue(folder)!], progress, cancellationToken));
                ui.Info($"Added {index.Count - existing.Count} images to the {existing.Count} already indexed.");
            }
            else if (parse.GetValue(model) is { } modelPath)
            {
                using var loaded = ImageClassifier.Load(modelPath);
                index = await ui.WithProgressAsync(progress => ImageIndex.BuildAsync(loaded.Embedder, parse.GetValue(folder)!, progress, cancellationToken));
            }
            else
            {
                using var embedder = ImageEmbedder.Open();
                index = await ui.WithProgressAsync(progress => ImageIndex.BuildAsync(embedder, parse.GetValue(folder)!, progress, cancellationToken));
            }

            index.Save(outPath);
            var bytes = new FileInfo(outPath).Length;
            if (ui.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(
                    new IndexDocument(outPath, index.Count, index.Dimension, index.EmbeddingId, bytes, Math.Round(watch.Elapsed.TotalSeconds, 3), [.. index.Skipped.Select(s => new SkippedDocument(s.Path, s.Reason.ToString(), s.Message))], index.IgnoredFileCount),
                    JsonOutput.Indented));
                return;
            }

            ui.Skipped(index.Skipped, index.IgnoredFileCount);
            ui.Info(string.Create(CultureInfo.InvariantCulture, $"Indexed {index.Count} images ({index.Dimension} values each, {index.EmbeddingId}) in {watch.Elapsed.TotalSeconds:F1} s; wrote {outPath} ({bytes / 1024.0 / 1024.0:F1} MiB)."));
        }));
        return command;
    }

    public static Command Similar()
    {
        var file = new Argument<string>("FILE") { Description = "An index file written by 'pretrainedkit index'." };
        var image = new Argument<string>("IMAGE") { Description = "The query image." };
        var top = new Option<int>("--top") { Description = "How many neighbours to show.", DefaultValueFactory = _ => ImageIndex.DefaultTop };
        var html = new Option<string?>("--html") { Description = "Also write a self-contained gallery page: the query and its neighbours as thumbnails (written atomically)." };
        var (quiet, json) = OutputOptions("the neighbours (rank, path, similarity) and the query time");
        var command = new Command("similar", Help(
            "Find the indexed images most similar to an image (cosine similarity of embeddings, exact search).",
            "pretrainedkit similar photos.pkindex query.jpg",
            "pretrainedkit similar photos.pkindex query.jpg --top 20 --json",
            "pretrainedkit similar photos.pkindex query.jpg --html neighbours.html"))
        {
            file, image, top, html, quiet, json,
        };
        command.SetAction((parse, cancellationToken) => Run(async () =>
        {
            var ui = new ConsoleUi(parse.GetValue(quiet), parse.GetValue(json));
            var k = parse.GetValue(top);
            if (k < 1)
            {
                throw new UserException("--top must be at least 1.");
            }

            var htmlPath = parse.GetValue(html);
            if (htmlPath is not null && Path.GetDirectoryName(Path.GetFullPath(htmlPath)) is { } htmlFolder && !Directory.Exists(htmlFolder))
            {
                throw new UserException($"The folder of --html does not exist: {htmlFolder}");
            }

            var index = ImageIndex.Load(parse.GetValue(file)!);
            using var embedder = index.OpenEmbedder();
            var query = Path.GetFullPath(parse.GetValue(image)!);
            var embedWatch = Stopwatch.StartNew();
            var embedding = embedder.Embed(query);
            var embedSeconds = embedWatch.Elapsed.TotalSeconds;
            var searchWatch = Stopwatch.StartNew();
            var neighbours = index.Search(embedding, k);
            var searchSeconds = searchWatch.Elapsed.TotalSeconds;
            if (htmlPath is not null)
            {
                await Reporting.HtmlReport.WriteSimilarAsync(query, neighbours, htmlPath, Reporting.HtmlReportOptions.Default with { Title = "PretrainedKit similar images" }, cancellationToken);
                ui.Info($"Gallery written to {Path.GetFullPath(htmlPath)}");
            }

            if (ui.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new SimilarDocument(query, index.Count, [.. neighbours], Math.Round(embedSeconds * 1000, 3), Math.Round(searchSeconds * 1000, 3)), JsonOutput.Indented));
                return;
            }

            ui.Info(string.Create(CultureInfo.InvariantCulture, $"{neighbours.Count} most similar of {index.Count} indexed images (embedding {embedSeconds * 1000:F0} ms, search {searchSeconds * 1000:F1} ms):"));
            foreach (var n in neighbours)
            {
                ui.Line(string.Create(CultureInfo.InvariantCulture, $"{n.Rank,4}  {n.Similarity:F3}  {n.Path}"));
            }
        }));
        return command;
    }

    public static Command Suggest()
    {
        var model = new Argument<string>("MODEL") { Description = "The model file." };
        var folder = new Argument<string>("UNLABELLED_DIR") { Description = "Folder of unlabelled images (sub-folders included)." };
        var top = new Option<int>("--top") { Description = "How many images to suggest.", DefaultValueFactory = _ => LabelingSuggestionOptions.DefaultTop };
        var labelled = new Option<string?>("--labelled") { Description = "The labelled images (a class folder such as the training data): suggestions far from them count as new, and images far from all of them are listed as likely unknown." };
        var uncertainty = new Option<UncertaintyMeasure>("--uncertainty") { Description = "Margin (between the two most probable classes) or Entropy.", DefaultValueFactory = _ => UncertaintyMeasure.Margin };
        var noDiversity = new Option<bool>("--no-diversity") { Description = "Rank by uncertainty alone (near-copies may be suggested together)." };
        var copyTo = new Option<string?>("--copy-to") { Description = "Copy the suggested images into this folder for labelling (never moved, changed or deleted; nothing is overwritten)." };
        var (quiet, json) = OutputOptions("the suggestions and likely unknowns (path, best guess, why)");
        var command = new Command("suggest", Help(
            "Rank unlabelled images by how much labelling them should help the model (uncertain, and not near-copies of each other), and list images that look like no class. Reads the feature cache; moves and deletes nothing.",
            "pretrainedkit suggest pets.pkmodel unlabelled",
            "pretrainedkit suggest pets.pkmodel unlabelled --top 50 --labelled photos --copy-to to-label",
            "pretrainedkit suggest pets.pkmodel unlabelled --json > suggestions.json"))
        {
            model, folder, top, labelled, uncertainty, noDiversity, copyTo, quiet, json,
        };
        command.SetAction((parse, cancellationToken) => Run(async () =>
        {
            var ui = new ConsoleUi(parse.GetValue(quiet), parse.GetValue(json));
            if (parse.GetValue(top) < 1)
            {
                throw new UserException("--top must be at least 1.");
            }

            var labelledImages = new List<string>();
            if (parse.GetValue(labelled) is { } labelledDir)
            {
                labelledImages = IsCsv(labelledDir)
                    ? [.. Data.LabeledImage.ReadCsv(labelledDir).Select(i => i.Path)]
                    : Data.ImageFolder.List(labelledDir).Images;
            }

            var options = LabelingSuggestionOptions.Default with
            {
                Top = parse.GetValue(top),
                Uncertainty = parse.GetValue(uncertainty),
                Diversity = !parse.GetValue(noDiversity),
                LabelledImages = labelledImages,
            };
            using var loaded = ImageClassifier.Load(parse.GetValue(model)!);
            var report = await ui.WithProgressAsync(progress => loaded.SuggestLabelsAsync(parse.GetValue(folder)!, options, progress, cancellationToken));
            IReadOnlyList<string> copies = [];
            if (parse.GetValue(copyTo) is { } copyFolder)
            {
                copies = report.CopySuggestionsTo(copyFolder);
            }

            if (ui.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(SuggestDocument.Create(report, copies), JsonOutput.Indented));
                return;
            }

            ui.Skipped(report.Skipped, report.IgnoredFileCount);
            ui.Info(string.Create(CultureInfo.InvariantCulture, $"Ranked {report.ImageCount} unlabelled images against {report.ReferenceCount} labelled ones in {report.Elapsed.TotalSeconds:F1} s: {report.Summary}."));
            ui.Info("Label these next (best first):");
            foreach (var s in report.Suggestions)
            {
                ui.Line(string.Create(CultureInfo.InvariantCulture, $"{s.Rank,4}  {s.Path}  guess '{s.BestGuess}' {s.BestGuessProbability:P0}: {s.Reason}"));
            }

            if (report.LikelyUnknown.Count > 0)
            {
                ui.Info("Likely unknown (far from every labelled image; check whether they belong to the task):");
                foreach (var u in report.LikelyUnknown)
                {
                    ui.Line(string.Create(CultureInfo.InvariantCulture, $"      {u.Path}: {u.Reason}"));
                }
            }

            foreach (var note in report.Notes)
            {
                ui.Info(note);
            }

            if (copies.Count > 0)
            {
                ui.Info($"Copied {copies.Count} images to {Path.GetFullPath(parse.GetValue(copyTo)!)}. Nothing was moved or deleted.");
            }
        }));
        return command;
    }
}

/// <summary>The <c>index --json</c> document.</summary>
internal sealed record IndexDocument(string Index, int Images, int Dimension, string EmbeddingId, long Bytes, double Seconds, IReadOnlyList<SkippedDocument> Skipped, int Ignored);

/// <summary>The <c>similar --json</c> document.</summary>
internal sealed record SimilarDocument(string Query, int Indexed, IReadOnlyList<SimilarImage> Neighbours, double EmbedMilliseconds, double SearchMilliseconds);

/// <summary>The <c>suggest --json</c> document.</summary>
internal sealed record SuggestDocument(
    string Summary,
    int Images,
    int References,
    IReadOnlyList<LabelingSuggestion> Suggestions,
    IReadOnlyList<LikelyUnknownImage> LikelyUnknown,
    IReadOnlyList<SkippedDocument> Skipped,
    IReadOnlyList<string> Copies,
    IReadOnlyList<string> Notes,
    double Seconds)
{
    public static SuggestDocument Create(LabelingSuggestionReport r, IReadOnlyList<string> copies) => new(
        r.Summary,
        r.ImageCount,
        r.ReferenceCount,
        r.Suggestions,
        r.LikelyUnknown,
        [.. r.Skipped.Select(s => new SkippedDocument(s.Path, s.Reason.ToString(), s.Message))],
        copies,
        r.Notes,
        Math.Round(r.Elapsed.TotalSeconds, 3));
}
