using System.Text.RegularExpressions;
using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Imaging;
using PretrainedKit.Reporting;
using SkiaSharp;

namespace PretrainedKit.Tests.Reporting;

/// <summary>The HTML report rendered from a hand-made evaluation (no model needed): content, ordering, escaping, self-containment.</summary>
public partial class HtmlReportTests
{
    private static readonly string[] Classes = ["cat", "dog", "<b>fox&co</b>"];
    private string _folder = null!;
    private EvaluationReport _report = null!;

    [OneTimeSetUp]
    public void CreateEvaluation()
    {
        _folder = TestPaths.NewTempFolder("report");
        var truth = new List<int>();
        var probabilities = new List<IReadOnlyList<float>>();
        var images = new List<EvaluatedImage>();

        void Add(string file, int actual, float[] p)
        {
            var path = Path.Combine(_folder, Classes[actual] == "<b>fox&co</b>" ? "fox" : Classes[actual], file);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using (var bitmap = TestImages.Pattern(40, 24))
            {
                File.WriteAllBytes(path, TestImages.Png(bitmap));
            }

            truth.Add(actual);
            probabilities.Add(p);
            images.Add(EvaluatedImage.Create(path, Classes, actual, p));
        }

        Add("cat-right.png", 0, [0.9f, 0.05f, 0.05f]);
        Add("cat-as-dog.png", 0, [0.3f, 0.6f, 0.1f]);        // loss -ln 0.3 = 1.20
        Add("cat-as-dog-bad.png", 0, [0.05f, 0.9f, 0.05f]);  // loss -ln 0.05 = 3.00, the worst
        Add("dog-as-fox.png", 1, [0.1f, 0.2f, 0.7f]);        // loss -ln 0.2 = 1.61
        Add("dog-right.png", 1, [0.1f, 0.8f, 0.1f]);
        Add("<script>x=1&y=\"2\".png", 2, [0.6f, 0.1f, 0.3f]); // loss -ln 0.3 = 1.20, ties with cat-as-dog
        _report = new EvaluationReport
        {
            Metrics = ClassificationMetrics.Compute(Classes, truth, probabilities),
            Skipped = [new SkippedImage(Path.Combine(_folder, "dog", "empty.png"), BadImageReason.Empty, "the file is empty (0 bytes).")],
            IgnoredFileCount = 2,
            Elapsed = TimeSpan.FromSeconds(1.5),
            Images = images,
        };
    }

    [Test]
    public void Render_Evaluation_HasEverySection()
    {
        var html = HtmlReport.Render(_report);
        Assert.Multiple(() =>
        {
            foreach (var id in new[] { "summary", "per-class", "per-class-table", "confusion", "confusion-matrix", "confused-pairs", "worst-mistakes", "skipped", "skipped-table" })
            {
                Assert.That(html, Does.Contain($"id=\"{id}\""), id);
            }

            Assert.That(Regex.Count(html, "<td class=\"(diag|off)"), Is.EqualTo(9), "a 3x3 confusion matrix");
            Assert.That(html, Does.Contain("33.3%"), "micro accuracy: 2 of 6 right");
            Assert.That(html, Does.Contain("the file is empty (0 bytes).").And.Contain("Empty").And.Contain("dog/empty.png"));
            Assert.That(html, Does.Contain("2 files without an image extension"));
        });
    }

    [Test]
    public void Render_Anything_IsSelfContained()
    {
        var html = HtmlReport.Render(_report);
        Assert.Multiple(() =>
        {
            Assert.That(html, Does.Not.Contain("http://").And.Not.Contain("https://").And.Not.Contain("//cdn"));
            Assert.That(html, Does.Not.Contain("<script").IgnoreCase, "no script at all (the hostile file name is encoded)");
            Assert.That(html, Does.Not.Contain("<link").IgnoreCase.And.Not.Contain("@import").And.Not.Contain("url(").And.Not.Contain("@font-face"));
            var sources = SrcAttribute().Matches(html).Select(m => m.Groups[1].Value).ToList();
            Assert.That(sources, Is.Not.Empty);
            Assert.That(sources, Has.All.StartWith("data:image/jpeg;base64,"));
        });
    }

    [Test]
    public void Render_NamesFromTheData_AreHtmlEncoded()
    {
        var html = HtmlReport.Render(_report);
        Assert.Multiple(() =>
        {
            Assert.That(html, Does.Not.Contain("<b>fox&co</b>"));
            Assert.That(html, Does.Contain("&lt;b&gt;fox&amp;co&lt;/b&gt;"));
            Assert.That(html, Does.Contain("&lt;script&gt;x=1&amp;y=&quot;2&quot;.png"));
        });
    }

    [Test]
    public void Render_WorstMistakes_AreTheWrongImagesByDescendingLoss()
    {
        var html = HtmlReport.Render(_report);
        var shown = AltAttribute().Matches(html).Select(m => System.Net.WebUtility.HtmlDecode(m.Groups[1].Value)).ToList();
        Assert.That(shown, Is.EqualTo(new[]
        {
            "cat/cat-as-dog-bad.png",
            "dog/dog-as-fox.png",
            "cat/cat-as-dog.png", // its loss ties with the fox image (both p = 0.3): ordinal path order
            "fox/<script>x=1&y=\"2\".png",
        }));
        Assert.That(HtmlReport.WorstMistakes(_report, 10).Select(i => i.Loss), Is.Ordered.Descending);
        Assert.That(HtmlReport.WorstMistakes(_report, 10).Select(i => Path.GetFileName(i.Path)), Is.EqualTo(shown.Select(Path.GetFileName)));
    }

    [Test]
    public void Render_WorstMistakeCount_LimitsThumbnails()
    {
        var html = HtmlReport.Render(_report, new HtmlReportOptions { WorstMistakes = 2 });
        Assert.That(Regex.Count(html, "<img "), Is.EqualTo(2));
        Assert.That(HtmlReport.Render(_report, new HtmlReportOptions { WorstMistakes = 0 }), Does.Not.Contain("<img ").And.Contain("WorstMistakes is 0"));
    }

    [Test]
    public void MostConfused_OrdersByCountThenShare()
    {
        var pairs = HtmlReport.MostConfused(_report.Metrics, 10);
        Assert.That(pairs.Select(p => (Classes[p.Actual], Classes[p.Predicted], p.Count)), Is.EqualTo(new[]
        {
            ("cat", "dog", 2),
            ("<b>fox&co</b>", "cat", 1), // 1 of 1 fox images: a larger share than dog -> fox (1 of 2)
            ("dog", "<b>fox&co</b>", 1),
        }));
        Assert.That(pairs[1].ShareOfActual, Is.EqualTo(1.0));
        Assert.That(HtmlReport.MostConfused(_report.Metrics, 1), Has.Count.EqualTo(1));
    }

    [Test]
    public void Render_ThumbnailFileGone_ShowsThePlaceholderWithTheReason()
    {
        var gone = Path.Combine(_folder, "cat", "deleted.png");
        var report = _report with { Images = [EvaluatedImage.Create(gone, Classes, 0, [0.1f, 0.8f, 0.1f])] };
        var html = HtmlReport.Render(report);
        Assert.That(html, Does.Contain("class=\"missing\"").And.Contain("No thumbnail").And.Contain("does not exist"));
        Assert.That(html, Does.Not.Contain("<img "));
    }

    [Test]
    public void Render_ThumbnailOfAWideImage_IsASquareJpegOfTheRequestedSize()
    {
        var html = HtmlReport.Render(_report, new HtmlReportOptions { ThumbnailSize = 64, WorstMistakes = 1 });
        var uri = SrcAttribute().Match(html).Groups[1].Value;
        var jpeg = Convert.FromBase64String(uri["data:image/jpeg;base64,".Length..]);
        using var bitmap = SKBitmap.Decode(jpeg);
        Assert.That((bitmap.Width, bitmap.Height), Is.EqualTo((64, 64)));
        Assert.That(bitmap.GetPixel(32, 2), Is.EqualTo(SKColors.White).Using<SKColor>((a, b) => Math.Abs(a.Red - b.Red) < 12 && Math.Abs(a.Green - b.Green) < 12 && Math.Abs(a.Blue - b.Blue) < 12), "a 40x24 image is padded top and bottom with white");
    }

    [Test]
    public void Render_CancelledToken_Throws()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.That(() => HtmlReport.Render(_report, cancellationToken: cancelled.Token), Throws.InstanceOf<OperationCanceledException>());
    }

    [Test]
    public void Render_NoPerImageResults_SaysSoInsteadOfThumbnails()
    {
        var html = HtmlReport.Render(_report with { Images = [] });
        Assert.That(html, Does.Contain("no per-image results").And.Not.Contain("<img "));
    }

    [Test]
    public async Task WriteAsync_ExistingFile_IsReplacedAndNoTempFileIsLeft()
    {
        var folder = TestPaths.NewTempFolder("report-out");
        var path = Path.Combine(folder, "report.html");
        await File.WriteAllTextAsync(path, "old");
        await HtmlReport.WriteAsync(_report, path, new HtmlReportOptions { Title = "My title" });
        Assert.That(await File.ReadAllTextAsync(path), Does.StartWith("<!DOCTYPE html>").And.Contain("<title>My title</title>"));
        Assert.That(Directory.GetFiles(folder), Has.Length.EqualTo(1));
    }

    [Test]
    public void WriteAsync_MissingFolder_ThrowsNamingTheFolder()
    {
        var missing = Path.Combine(_folder, "no-such-folder");
        Assert.That(
            () => HtmlReport.WriteAsync(_report, Path.Combine(missing, "report.html")),
            Throws.TypeOf<DirectoryNotFoundException>().With.Message.Contains(missing).And.Message.Contains("Create it"));
    }

    [Test]
    public void WriteAsync_PathIsAFolder_ThrowsSuggestingAFileName()
    {
        Assert.That(() => HtmlReport.WriteAsync(_report, _folder), Throws.TypeOf<IOException>().With.Message.Contains(Path.Combine(_folder, "report.html")));
    }

    [TestCase(-1, 10, 128, "WorstMistakes")]
    [TestCase(12, 1001, 128, "ConfusedPairs")]
    [TestCase(12, 10, 8, "ThumbnailSize")]
    public void Render_OptionOutOfRange_ThrowsNamingIt(int worst, int pairs, int size, string name)
    {
        var options = new HtmlReportOptions { WorstMistakes = worst, ConfusedPairs = pairs, ThumbnailSize = size };
        Assert.That(() => HtmlReport.Render(_report, options), Throws.ArgumentException.With.Message.Contains(name));
    }

    [Test]
    public void EvaluatedImage_Create_FindsThePredictionAndTheLoss()
    {
        var image = EvaluatedImage.Create("/x/a.png", Classes, 2, [0.25f, 0.5f, 0.25f]);
        Assert.Multiple(() =>
        {
            Assert.That(image.PredictedLabel, Is.EqualTo("dog"));
            Assert.That(image.PredictedProbability, Is.EqualTo(0.5f));
            Assert.That(image.LabelProbability, Is.EqualTo(0.25f));
            Assert.That(image.IsCorrect, Is.False);
            Assert.That(image.Loss, Is.EqualTo(Math.Log(4)).Within(1e-6));
            Assert.That(EvaluatedImage.Create("/x/a.png", Classes, 0, [0f, 1f, 0f]).Loss, Is.EqualTo(-Math.Log(1e-15)).Within(1e-9), "clipped like LogLoss");
            Assert.That(() => EvaluatedImage.Create("/x/a.png", Classes, 0, [1f]), Throws.ArgumentException.With.Message.Contains("3 probabilities"));
        });
    }

    [GeneratedRegex("<img src=\"([^\"]*)\"")]
    private static partial Regex SrcAttribute();

    [GeneratedRegex("<img [^>]*alt=\"([^\"]*)\"")]
    private static partial Regex AltAttribute();

    [Test]
    public async Task RenderInspection_HasASectionPerKind_WithBothImagesOfEachPair_AndIsSelfContained()
    {
        var images = _report.Images.Select(i => i.Path).ToList();
        var inspection = new PretrainedKit.Inspection.DataInspectionReport
        {
            LabelIssues = [new PretrainedKit.Inspection.LabelIssue(images[1], "cat", "dog", 0.7, 0.3, 0.6)],
            Duplicates =
            [
                new PretrainedKit.Inspection.DuplicatePair(images[0], "cat", images[4], "dog", PretrainedKit.Inspection.DuplicateKind.Near, 0.97, true),
                new PretrainedKit.Inspection.DuplicatePair(images[2], "cat", images[3], "cat", PretrainedKit.Inspection.DuplicateKind.Exact, 1, false),
            ],
            Outliers = [new PretrainedKit.Inspection.OutlierImage(images[5], "<b>fox&co</b>", 6.2, "cat", 0.31)],
            TypicalImages = new Dictionary<string, string> { ["dog"] = images[4] },
            ImageCount = images.Count,
            TestImageCount = 1,
            Skipped = [],
            LabelMethod = "5-fold out-of-fold probabilities",
            NearDuplicateThreshold = 0.96,
            OutlierThreshold = 3.5,
            Notes = [],
            Duration = TimeSpan.Zero,
        };

        var html = HtmlReport.RenderInspection(inspection, new HtmlReportOptions { Title = "Findings", GeneratedAt = DateTimeOffset.UnixEpoch });

        Assert.Multiple(() =>
        {
            foreach (var id in new[] { "label-issues", "duplicates", "outliers" })
            {
                Assert.That(html, Does.Contain($"<section id=\"{id}\">"));
            }

            Assert.That(Regex.Count(html, "<figure class=\"finding\">"), Is.EqualTo(4));
            Assert.That(SrcAttribute().Count(html), Is.EqualTo(2 + 2 + 2 + 1), "the suspect and a typical image of its suggested class; both images of each pair; the outlier");
            Assert.That(html, Does.Contain("leakage").And.Contain("conflict: cat / dog").And.Contain("exact copy"));
            Assert.That(html, Does.Contain("&lt;b&gt;fox&amp;co&lt;/b&gt;").And.Not.Contain("<b>fox&co</b>"), "labels from the data are encoded");
            Assert.That(html, Does.Not.Contain("<script").IgnoreCase.And.Not.Contain("http://").And.Not.Contain("https://"));
        });

        // Off by default in the evaluation report; there when given.
        Assert.That(HtmlReport.Render(_report), Does.Not.Contain("id=\"label-issues\""));
        var both = HtmlReport.Render(_report, new HtmlReportOptions { Inspection = inspection, InspectionFindings = 1 });
        Assert.That(Regex.Count(both, "<figure class=\"finding\">"), Is.EqualTo(3), "one finding of each kind with InspectionFindings = 1");
        Assert.That(both, Does.Contain("The first 1 of 2 are shown"));

        var path = Path.Combine(TestPaths.NewTempFolder("inspection-page"), "findings.html");
        await HtmlReport.WriteInspectionAsync(inspection, path);
        Assert.That(File.ReadAllText(path), Does.StartWith("<!DOCTYPE html>").And.Contain("PretrainedKit data inspection"));
    }
}
