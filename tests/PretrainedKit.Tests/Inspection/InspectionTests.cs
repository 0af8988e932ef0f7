using System.Text.Json;
using PretrainedKit.Inspection;
using PretrainedKit.Tests.Cli;
using SkiaSharp;

namespace PretrainedKit.Tests.Inspection;

/// <summary>
/// Inspection on real features (issue #15): a folder of distinct generated pictures with one mislabelled image, an exact
/// copy, a blank image and a bad file, and a test folder with a re-encoded copy of a training image. Every finding kind
/// is found, the distinct pictures are not paired, the bad file is named, and nothing is moved.
/// </summary>
[Category("Slow")]
public class InspectionTests
{
    private string _data = null!;
    private string _test = null!;
    private string _mislabelled = null!;
    private string _copied = null!;
    private string _copy = null!;
    private string _blank = null!;
    private string _bad = null!;
    private string _leakedSource = null!;
    private string _leaked = null!;

    /// <summary>A picture of a kind (circles, stripes, squares) with random colours, sizes and places: different pictures of a kind differ.</summary>
    internal static SKBitmap Picture(string kind, Random random)
    {
        var bitmap = new SKBitmap(96, 96);
        using var canvas = new SKCanvas(bitmap);
        canvas.Clear(new SKColor((byte)random.Next(200, 256), (byte)random.Next(200, 256), (byte)random.Next(200, 256)));
        using var paint = new SKPaint { IsAntialias = true };
        SKColor Colour() => new((byte)random.Next(0, 200), (byte)random.Next(0, 200), (byte)random.Next(0, 200));
        switch (kind)
        {
            case "circles":
                for (var i = random.Next(2, 5); i > 0; i--)
                {
                    paint.Color = Colour();
                    canvas.DrawCircle(random.Next(10, 86), random.Next(10, 86), random.Next(6, 22), paint);
                }

                break;
            case "stripes":
                // Two families of stripes, each with its own colour, width, spacing and angle.
                for (var family = 0; family < 2; family++)
                {
                    paint.Color = Colour();
                    paint.StrokeWidth = random.Next(2, 9);
                    canvas.Save();
                    canvas.RotateDegrees(random.Next(0, 180), 48, 48);
                    var spacing = random.Next(10, 30);
                    for (var x = -96 + random.Next(0, spacing); x < 192; x += spacing)
                    {
                        canvas.DrawLine(x, -96, x, 192, paint);
                    }

                    canvas.Restore();
                }

                break;
            default:
                for (var i = random.Next(2, 5); i > 0; i--)
                {
                    paint.Color = Colour();
                    canvas.Save();
                    canvas.RotateDegrees(random.Next(0, 90), 48, 48);
                    canvas.DrawRect(random.Next(0, 60), random.Next(0, 60), random.Next(10, 36), random.Next(10, 36), paint);
                    canvas.Restore();
                }

                break;
        }

        return bitmap;
    }

    [OneTimeSetUp]
    public void CreateData()
    {
        _data = TestPaths.NewTempFolder("inspect");
        _test = TestPaths.NewTempFolder("inspect-test");
        var random = new Random(15);
        foreach (var kind in new[] { "circles", "stripes", "squares" })
        {
            Directory.CreateDirectory(Path.Combine(_data, kind));
            Directory.CreateDirectory(Path.Combine(_test, kind));
            for (var i = 0; i < 10; i++)
            {
                using var picture = Picture(kind, random);
                File.WriteAllBytes(Path.Combine(_data, kind, $"{kind}-{i:D2}.png"), TestImages.Png(picture));
            }

            using var testPicture = Picture(kind, random);
            File.WriteAllBytes(Path.Combine(_test, kind, $"test-{kind}.png"), TestImages.Png(testPicture));
        }

        // A picture of circles filed under stripes.
        using (var circles = Picture("circles", random))
        {
            _mislabelled = Path.Combine(_data, "stripes", "stripes-looks-like-circles.png");
            File.WriteAllBytes(_mislabelled, TestImages.Png(circles));
        }

        _copied = Path.Combine(_data, "squares", "squares-03.png");
        _copy = Path.Combine(_data, "squares", "squares-03-copy.png");
        File.Copy(_copied, _copy);
        _blank = Path.Combine(_data, "squares", "blank.png");
        using (var blank = TestImages.Bitmap(96, 96, (_, _) => SKColors.Black))
        {
            File.WriteAllBytes(_blank, TestImages.Png(blank));
        }

        _bad = Path.Combine(_data, "circles", "truncated.png");
        File.WriteAllBytes(_bad, File.ReadAllBytes(Path.Combine(_data, "circles", "circles-00.png"))[..60]);

        // The test folder holds a JPEG re-encoding (quality 70) of a training image: leakage.
        _leakedSource = Path.Combine(_data, "circles", "circles-05.png");
        _leaked = Path.Combine(_test, "circles", "circles-05-reencoded.jpg");
        using (var source = SKBitmap.Decode(_leakedSource))
        {
            File.WriteAllBytes(_leaked, TestImages.Encode(source, SKEncodedImageFormat.Jpeg, 70));
        }
    }

    [Test]
    public async Task InspectAsync_FindsEachKind_AndPairsNoDistinctPictures()
    {
        var before = Directory.GetFiles(_data, "*", SearchOption.AllDirectories).Order().ToArray();
        var report = await ImageClassifier.Create().FromFolder(_data).WithValidationFolder(_test).InspectAsync();

        Assert.Multiple(() =>
        {
            Assert.That(report.ImageCount, Is.EqualTo(33), "31 pictures, the copy and the blank; the bad file is not inspected");
            Assert.That(report.TestImageCount, Is.EqualTo(4));
            Assert.That(report.Skipped.Select(s => s.Path), Is.EqualTo(new[] { _bad }));
            Assert.That(report.LabelIssues.Select(i => i.Path), Does.Contain(_mislabelled));
            Assert.That(report.LabelIssues.Single(i => i.Path == _mislabelled).SuggestedLabel, Is.EqualTo("circles"));
            Assert.That(report.Duplicates.Select(d => $"{d.Path}={d.OtherPath} {d.Kind} {d.IsLeakage}"), Is.EquivalentTo(new[]
            {
                $"{_copy}={_copied} Exact False", // In scan order: "squares-03-copy.png" sorts before "squares-03.png".
                $"{_leakedSource}={_leaked} Near True",
            }), "the copies, and no pair of distinct pictures");
            Assert.That(report.Duplicates.Single(d => d.OtherPath == _leaked).AlignedSimilarity, Is.GreaterThanOrEqualTo(DataInspector.AlignedThreshold), "the pixels were compared and line up");
            Assert.That(report.NearDuplicateRule, Does.Contain("pixels compared"));
            Assert.That(report.Outliers.Select(o => o.Path), Does.Contain(_blank));
            Assert.That(report.LabelMethod, Does.Contain("5-fold"));
        });
        Assert.That(Directory.GetFiles(_data, "*", SearchOption.AllDirectories).Order(), Is.EqualTo(before), "nothing is moved or deleted");
    }

    [Test]
    public async Task TrainAsync_ReportsTheFindings_AndInspectDataOffLeavesThemOut()
    {
        using var model = await ImageClassifier.Create().FromFolder(_data).WithValidationFolder(_test).TrainAsync();
        var findings = model.TrainingReport!.Inspection;
        Assert.That(findings, Is.Not.Null);
        Assert.Multiple(() =>
        {
            Assert.That(findings!.LabelIssues.Select(i => i.Path), Does.Contain(_mislabelled));
            Assert.That(findings.Leakage.Select(d => d.OtherPath), Is.EqualTo(new[] { _leaked }), "validation images are compared with the training images");
            Assert.That(model.TrainingReport.PhaseDurations.Keys, Does.Contain(PretrainedKit.Training.TrainingPhase.Inspecting));
        });

        using var plain = await ImageClassifier.Create().FromFolder(_data).WithOptions(PretrainedKit.Training.ImageClassifierOptions.Default with { InspectData = false }).TrainAsync();
        Assert.That(plain.TrainingReport!.Inspection, Is.Null);

        // Evaluation by the freshly trained model names byte-for-byte copies of its training images; the JPEG copy is a near copy, not named here.
        var evaluation = await model.EvaluateAsync(_data);
        Assert.That(evaluation.LeakedImages, Has.Count.EqualTo(33), "every usable image of the training folder is a training image");
        Assert.That(evaluation.LeakedImages.Where(l => l.Path != l.TrainingPath).Select(l => (l.Path, l.TrainingPath)), Is.EqualTo(new[] { (_copied, _copy) }), "two training images with the same bytes: named by the first in scan order");
        var onTest = await model.EvaluateAsync(_test);
        Assert.That(onTest.LeakedImages, Is.Empty, "the test folder holds no byte-for-byte copy of a training image");
    }

    [Test]
    public void Cli_Inspect_Json_ListsEveryFindingWithPaths_AndTrainPrintsTheSummary()
    {
        var (code, output, err) = CliProcess.Run(null, "inspect", _data, "--test-dir", _test, "--json");
        Assert.That(code, Is.EqualTo(0), err);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("imagesInspected").GetInt32(), Is.EqualTo(33));
            Assert.That(root.GetProperty("labelIssues").EnumerateArray().Select(e => e.GetProperty("path").GetString()), Does.Contain(_mislabelled));
            var duplicates = root.GetProperty("duplicates").EnumerateArray().ToList();
            Assert.That(duplicates.Select(d => d.GetProperty("kind").GetString()), Is.EquivalentTo(new[] { "Exact", "Near" }));
            Assert.That(duplicates.Single(d => d.GetProperty("leakage").GetBoolean()).GetProperty("otherPath").GetString(), Is.EqualTo(_leaked));
            Assert.That(duplicates.Single(d => d.GetProperty("leakage").GetBoolean()).GetProperty("alignedSimilarity").GetDouble(), Is.GreaterThanOrEqualTo(DataInspector.AlignedThreshold));
            Assert.That(duplicates.Single(d => d.GetProperty("kind").GetString() == "Exact").TryGetProperty("alignedSimilarity", out _), Is.False, "exact copies are not drawn (null is left out)");
            Assert.That(root.GetProperty("nearDuplicateRule").GetString(), Does.Contain("aligned similarity"));
            Assert.That(root.GetProperty("outliers").EnumerateArray().Select(e => e.GetProperty("path").GetString()), Does.Contain(_blank));
            Assert.That(root.GetProperty("skipped").EnumerateArray().Single().GetProperty("path").GetString(), Is.EqualTo(_bad));
        });

        var page = Path.Combine(TestPaths.NewTempFolder("inspect-html"), "findings.html");
        var (topCode, topOut, _) = CliProcess.Run(null, "inspect", _data, "--top", "1", "--html", page);
        Assert.That(topCode, Is.EqualTo(0));
        Assert.That(File.ReadAllText(page), Does.Contain("<section id=\"label-issues\">").And.Contain("<section id=\"duplicates\">").And.Contain("<section id=\"outliers\">"));
        Assert.That(topOut.Split('\n').Count(l => l.Contains("labelled '", StringComparison.Ordinal)), Is.EqualTo(1), "--top 1 shows one label issue");

        // A test folder with a byte-for-byte copy of a training image: train --test-dir names it.
        var test = TestPaths.NewTempFolder("inspect-test-copy");
        foreach (var file in Directory.GetFiles(_test, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(test, Path.GetRelativePath(_test, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        var copied = Path.Combine(test, "squares", "copied-from-training.png");
        File.Copy(Path.Combine(_data, "squares", "squares-07.png"), copied);
        var model = Path.Combine(TestPaths.NewTempFolder("inspect-train"), "m.pkmodel");
        var (trainCode, trainOut, trainErr) = CliProcess.Run(null, "train", _data, "--model", model, "--test-dir", test);
        Assert.That(trainCode, Is.EqualTo(0), trainErr);
        Assert.That(trainOut, Does.Match("Data: .+: run 'pretrainedkit inspect "));
        Assert.That(trainOut, Does.Contain("Leakage: 1 test image is a copy of training images").And.Contain(copied));

        var (plainCode, plainOut, plainErr) = CliProcess.Run(null, "train", _data, "--model", model, "--no-inspect", "--json");
        Assert.That(plainCode, Is.EqualTo(0), plainErr);
        using var plain = JsonDocument.Parse(plainOut);
        Assert.That(plain.RootElement.TryGetProperty("inspection", out var none) && none.ValueKind != JsonValueKind.Null, Is.False, "--no-inspect: no findings");
    }
}
