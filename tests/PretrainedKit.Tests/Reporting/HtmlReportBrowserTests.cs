using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using PretrainedKit.Evaluation;
using PretrainedKit.Reporting;
using SkiaSharp;

namespace PretrainedKit.Tests.Reporting;

/// <summary>
/// Trains a small model, writes its HTML report for a folder with mislabelled, broken and ignored files, checks the
/// per-image results, then opens the page in a real headless Chromium at desktop and phone width. The screenshots are
/// kept as test attachments (in the test results folder).
/// </summary>
[Category("Slow")]
[Category("Browser")]
public partial class HtmlReportBrowserTests
{
    private const int PhoneWidth = 390;
    private const int PhoneHeight = 844;
    private const string LongClass = "blue_a_class_name_much_wider_than_a_phone_screen_allows";
    private static readonly JsonSerializerOptions WebJson = new(JsonSerializerDefaults.Web);

    private ImageClassifierModel _model = null!;
    private string _work = null!;
    private string _report = null!;
    private EvaluationReport _evaluation = null!;

    [OneTimeSetUp]
    public async Task TrainAndWriteReport()
    {
        // A long class name and long file names: the page must still fit a phone (tables scroll in their box, names wrap).
        var train = SmallDataset.Create(6);
        Directory.Move(Path.Combine(train, "blue"), Path.Combine(train, LongClass));
        _model = await ImageClassifier.Create().FromFolder(train).WithSeed(3).TrainAsync();

        // The evaluation folder: clean images, two red images filed as blue (sure mistakes), a broken PNG and a text file.
        var test = SmallDataset.Create(3);
        foreach (var (file, i) in Directory.GetFiles(Path.Combine(test, "red")).Order(StringComparer.Ordinal).Take(2).Select((f, i) => (f, i)))
        {
            File.Copy(file, Path.Combine(test, "blue", $"really-red-{i}-with-a-file-name-far-too-long-for-one-line-on-a-phone.png"));
        }

        Directory.Move(Path.Combine(test, "blue"), Path.Combine(test, LongClass));

        File.WriteAllBytes(Path.Combine(test, "green", "empty.png"), []);
        File.WriteAllText(Path.Combine(test, "green", "notes.txt"), "not an image");

        _work = TestPaths.NewTempFolder("report-browser");
        _report = Path.Combine(_work, "report.html");
        _evaluation = await _model.WriteHtmlReportAsync(test, _report, new HtmlReportOptions { GeneratedAt = DateTimeOffset.UnixEpoch });
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model?.Dispose();

    [Test]
    public void WriteHtmlReportAsync_Images_MatchPredictAndTheMetrics()
    {
        Assert.Multiple(() =>
        {
            Assert.That(_evaluation.Images, Has.Count.EqualTo(_evaluation.Metrics.Count).And.Count.EqualTo(11), "9 clean + 2 mislabelled; the empty file is skipped");
            Assert.That(_evaluation.Skipped.Select(s => Path.GetFileName(s.Path)), Is.EqualTo(new[] { "empty.png" }));
            Assert.That(_evaluation.IgnoredFileCount, Is.EqualTo(1));
            Assert.That(_evaluation.Images.Where(i => !i.IsCorrect).Select(i => Path.GetFileName(i.Path)), Has.Exactly(2).StartsWith("really-red-"));
            Assert.That(_evaluation.Images.Average(i => i.Loss), Is.EqualTo(_evaluation.Metrics.LogLoss).Within(1e-9));
            Assert.That(_evaluation.Images.Count(i => i.IsCorrect) / (double)_evaluation.Images.Count, Is.EqualTo(_evaluation.Metrics.MicroAccuracy).Within(1e-12));
        });

        foreach (var image in _evaluation.Images.Take(3))
        {
            var p = _model.Predict(image.Path);
            Assert.That(image.Probabilities, Is.EqualTo(p.Probabilities).Within(1e-6f));
            Assert.That(image.PredictedLabel, Is.EqualTo(p.Label));
        }
    }

    [Test]
    public void Browser_DesktopWidth_RendersEveryKeyElement()
    {
        RequireBrowser();
        var probe = Probe(1280, 900);
        Assert.Multiple(() =>
        {
            foreach (var id in new[] { "summary", "per-class", "confusion", "confused-pairs", "worst-mistakes", "label-issues", "duplicates", "outliers", "skipped" })
            {
                Assert.That(probe.Sections.TryGetValue(id, out var box) && box.Width > 100 && box.Height > 40, Is.True, $"section #{id} is laid out and visible");
            }

            Assert.That(probe.Title, Is.EqualTo("PretrainedKit evaluation report"));
            Assert.That(probe.PerClassRows, Is.EqualTo(3));
            Assert.That(probe.MatrixCells, Is.EqualTo(9));
            Assert.That(probe.Pairs, Is.GreaterThanOrEqualTo(1));
            Assert.That(probe.Images, Is.EqualTo(_evaluation.Images.Count(i => !i.IsCorrect)), "one thumbnail per mistake");
            Assert.That(probe.ImagesDecoded, Is.EqualTo(probe.Images), "every thumbnail decoded in the browser");
            Assert.That(probe.SkippedRows, Is.EqualTo(1));
            Assert.That(probe.MistakeText, Does.Contain("really-red-"));
            var inspection = _model.TrainingReport!.Inspection!;
            var shown = Math.Min(inspection.LabelIssues.Count, HtmlReportOptions.DefaultInspectionFindings) + Math.Min(inspection.Duplicates.Count, HtmlReportOptions.DefaultInspectionFindings) + Math.Min(inspection.Outliers.Count, HtmlReportOptions.DefaultInspectionFindings);
            Assert.That(probe.FindingImages, Is.GreaterThanOrEqualTo(shown), "at least one thumbnail per finding shown (two for a pair)");
            Assert.That(probe.FindingImagesDecoded, Is.EqualTo(probe.FindingImages), "every inspection thumbnail decoded in the browser");
        });

        var png = Path.Combine(TestContext.CurrentContext.WorkDirectory, "report-desktop.png");
        HeadlessChromium.Screenshot(_report, png, 1280, 1600);
        AssertScreenshot(png, 1280, 1600);
        TestContext.AddTestAttachment(png, "The HTML report at desktop width (1280 px)");
    }

    [Test]
    public void Browser_PhoneWidth_ReadsWithoutSideScrolling()
    {
        RequireBrowser();
        var probe = Probe(PhoneWidth, PhoneHeight);
        Assert.Multiple(() =>
        {
            Assert.That(probe.ViewportWidth, Is.EqualTo(PhoneWidth));
            Assert.That(probe.ScrollWidth, Is.LessThanOrEqualTo(PhoneWidth), "no sideways scrolling of the page (wide tables scroll inside their own box)");
            Assert.That(probe.Sections.Values.Select(s => s.Right), Has.All.LessThanOrEqualTo(PhoneWidth), "every section fits the screen");
            Assert.That(probe.MistakeColumns, Is.EqualTo(2), "two thumbnails per row on a phone");
            Assert.That(probe.BodyFontPx, Is.GreaterThanOrEqualTo(14), "body text stays readable");
            Assert.That(probe.ImagesDecoded, Is.EqualTo(probe.Images));
            Assert.That(probe.FindingImagesDecoded, Is.EqualTo(probe.FindingImages));
        });

        var png = Path.Combine(TestContext.CurrentContext.WorkDirectory, "report-phone.png");
        HeadlessChromium.Screenshot(_report, png, PhoneWidth, PhoneHeight);
        AssertScreenshot(png, PhoneWidth, PhoneHeight);
        TestContext.AddTestAttachment(png, "The HTML report at phone width (390 px)");
    }

    private static void RequireBrowser()
    {
        if (HeadlessChromium.Path is null)
        {
            Assert.Ignore(HeadlessChromium.MissingReason);
        }
    }

    private static void AssertScreenshot(string png, int width, int height)
    {
        using var bitmap = SKBitmap.Decode(png);
        Assert.That(bitmap, Is.Not.Null, $"{png} is a PNG");
        Assert.That((bitmap.Width, bitmap.Height), Is.EqualTo((width, height)));
        var colours = new HashSet<SKColor>();
        for (var y = 0; y < bitmap.Height; y += 7)
        {
            for (var x = 0; x < bitmap.Width; x += 7)
            {
                colours.Add(bitmap.GetPixel(x, y));
            }
        }

        Assert.That(colours, Has.Count.GreaterThan(20), "the screenshot shows a rendered page, not a blank one");
    }

    /// <summary>
    /// Loads the report, unchanged, in an iframe of the given size inside a probe page, and measures it after the load
    /// event from the outside: the report itself stays script-free. (An iframe gives an exact viewport: headless
    /// Chromium's --dump-dom keeps a window at least 500 px wide.)
    /// </summary>
    private ProbeResult Probe(int width, int height)
    {
        var page = Path.Combine(_work, $"probe-{width}.html");
        File.WriteAllText(page, $$"""
            <!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">
            <iframe id="f" src="report.html" style="width:{{width}}px;height:{{height}}px;border:0"></iframe>
            <script>
            window.addEventListener('load', function () {
              var w = document.getElementById('f').contentWindow, d = w.document, all = function (s) { return [].slice.call(d.querySelectorAll(s)); };
              var sections = {};
              all('section').forEach(function (s) { var r = s.getBoundingClientRect(); sections[s.id] = { width: r.width, height: r.height, right: r.right }; });
              var imgs = all('#worst-mistakes img');
              var findingImgs = all('.finding img');
              var grid = d.querySelector('.mistakes');
              var out = document.createElement('pre');
              out.id = 'probe';
              out.textContent = JSON.stringify({
                title: d.title,
                viewportWidth: w.innerWidth,
                scrollWidth: d.documentElement.scrollWidth,
                sections: sections,
                perClassRows: all('#per-class-table tbody tr').length,
                matrixCells: all('#confusion-matrix tbody td').length,
                pairs: all('#confused-pairs li').length,
                images: imgs.length,
                imagesDecoded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
                skippedRows: all('#skipped-table tbody tr').length,
                findingImages: findingImgs.length,
                findingImagesDecoded: findingImgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
                mistakeText: (d.querySelector('#worst-mistakes') || {}).innerText || '',
                mistakeColumns: grid ? w.getComputedStyle(grid).gridTemplateColumns.split(' ').length : 0,
                bodyFontPx: parseFloat(w.getComputedStyle(d.body).fontSize)
              });
              document.body.appendChild(out);
            });
            </script></body></html>
            """);
        var dom = HeadlessChromium.DumpDom(page, Math.Max(width, 800), height + 50, "--allow-file-access-from-files");
        var match = ProbeElement().Match(dom);
        Assert.That(match.Success, Is.True, () => $"the probe ran in the browser; DOM: {dom[..Math.Min(dom.Length, 2000)]}");
        return JsonSerializer.Deserialize<ProbeResult>(WebUtility.HtmlDecode(match.Groups[1].Value), WebJson)!;
    }

    [GeneratedRegex("<pre id=\"probe\">(.*?)</pre>", RegexOptions.Singleline)]
    private static partial Regex ProbeElement();

    private sealed record Box(double Width, double Height, double Right);

    private sealed record ProbeResult(
        string Title,
        int ViewportWidth,
        int ScrollWidth,
        Dictionary<string, Box> Sections,
        int PerClassRows,
        int MatrixCells,
        int Pairs,
        int Images,
        int ImagesDecoded,
        int SkippedRows,
        int FindingImages,
        int FindingImagesDecoded,
        string MistakeText,
        int MistakeColumns,
        double BodyFontPx);
}
