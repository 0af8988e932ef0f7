using PretrainedKit.Data;
using PretrainedKit.Imaging;
using PretrainedKit.Models;
using PretrainedKit.Training;
using SkiaSharp;

namespace PretrainedKit.Tests.Data;

public class DatasetTests
{
    [Test]
    public void ScanFolder_NestedImagesAndNonImages_AreFoundAndCounted()
    {
        var root = SmallDataset.Create(2);
        var nested = Path.Combine(root, "red", "more", "deeper");
        Directory.CreateDirectory(nested);
        File.Copy(Directory.GetFiles(Path.Combine(root, "red"))[0], Path.Combine(nested, "x.png"));
        File.WriteAllText(Path.Combine(root, "red", "notes.txt"), "hello");
        File.WriteAllText(Path.Combine(root, "red", "drawing.svg"), "<svg/>");
        File.WriteAllText(Path.Combine(root, "loose.png"), "not in a class folder");

        var scan = DatasetScanner.ScanFolder(root);
        Assert.Multiple(() =>
        {
            Assert.That(scan.Classes, Is.EqualTo(SmallDataset.Classes));
            Assert.That(scan.Images.Count(i => i.Label == "red"), Is.EqualTo(3));
            Assert.That(scan.IgnoredFiles.Select(Path.GetFileName), Is.EquivalentTo(new[] { "notes.txt", "drawing.svg", "loose.png" }));
        });
    }

    [Test]
    public void TrainAsync_MissingFolder_ThrowsDirectoryNotFoundWithAbsolutePath()
    {
        var missing = Path.Combine(TestPaths.NewTempFolder(), "no-such-folder");
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, missing);
        Assert.That(
            () => ImageClassifier.Create().FromFolder(relative).TrainAsync(),
            Throws.TypeOf<DirectoryNotFoundException>().With.Message.Contains(missing));
    }

    [Test]
    public void TrainAsync_SingleClass_ThrowsSayingTwoAreNeeded()
    {
        var root = TestPaths.NewTempFolder();
        TestImages.WriteClass(root, "only", 5, SKColors.Red, 1);
        var ex = Assert.ThrowsAsync<InvalidDatasetException>(() => ImageClassifier.Create().FromFolder(root).TrainAsync());
        Assert.That(ex!.Problems.Single().Kind, Is.EqualTo(DatasetProblemKind.TooFewClasses));
        Assert.That(ex.Message, Does.Contain("at least 2").And.Contain("'only'").And.Contain(root));
    }

    [Test]
    public void TrainAsync_SingleEmptyClassAndBadClass_ReportsEveryProblemAtOnce()
    {
        var root = TestPaths.NewTempFolder();
        Directory.CreateDirectory(Path.Combine(root, "empty"));
        Directory.CreateDirectory(Path.Combine(root, "broken"));
        File.WriteAllBytes(Path.Combine(root, "broken", "a.png"), []);
        File.WriteAllText(Path.Combine(root, "broken", "b.jpg"), "text");
        var ex = Assert.ThrowsAsync<InvalidDatasetException>(() => ImageClassifier.Create().FromFolder(root).TrainAsync());
        Assert.That(ex!.Problems.Select(p => p.Kind), Is.EquivalentTo(new[] { DatasetProblemKind.EmptyClass, DatasetProblemKind.EmptyClass }));
        Assert.That(ex.Message, Does.Contain(Path.Combine(root, "empty")).And.Contain(Path.Combine(root, "broken")).And.Contain("no usable image"));
    }

    [Test]
    public async Task TrainAsync_BadImages_AreSkippedListedAndTrainingContinues()
    {
        var root = SmallDataset.Create(6);
        var bad = WriteBadFiles(Path.Combine(root, "red"));
        using var model = await ImageClassifier.Create().FromFolder(root).WithSeed(3).TrainAsync();
        var report = model.TrainingReport!;
        Assert.Multiple(() =>
        {
            Assert.That(report.Skipped.Select(s => s.Path), Is.EquivalentTo(bad.Keys));
            foreach (var skipped in report.Skipped)
            {
                Assert.That(skipped.Reason, Is.EqualTo(bad[skipped.Path]), skipped.Path);
                Assert.That(skipped.Message, Does.Contain(skipped.Path));
            }

            Assert.That(report.Counts.Single(c => c.Label == "red").Training + report.Counts.Single(c => c.Label == "red").Validation, Is.EqualTo(6));
        });
    }

    [Test]
    public void TrainAsync_StrictMode_FailsNamingEveryBadFile()
    {
        var root = SmallDataset.Create(6);
        var bad = WriteBadFiles(Path.Combine(root, "green"));
        var ex = Assert.ThrowsAsync<InvalidDatasetException>(() => ImageClassifier.Create().FromFolder(root).WithStrictMode().TrainAsync());
        Assert.That(ex!.Problems.Where(p => p.Kind == DatasetProblemKind.BadImage).Select(p => p.Path), Is.EquivalentTo(bad.Keys));
        foreach (var path in bad.Keys)
        {
            Assert.That(ex.Message, Does.Contain(path));
        }
    }

    [Test]
    public async Task TrainAsync_ClassWithFewImages_GetsAWarning()
    {
        var root = SmallDataset.Create(6);
        foreach (var file in Directory.GetFiles(Path.Combine(root, "blue")).Skip(3))
        {
            File.Delete(file);
        }

        using var model = await ImageClassifier.Create().FromFolder(root).TrainAsync();
        Assert.That(model.TrainingReport!.Warnings, Has.One.Contains("'blue'").And.Contains("only 3"));
    }

    [Test]
    public async Task FromImages_ExplicitList_TrainsOnExactlyThoseImages()
    {
        var root = SmallDataset.Create(6);
        var list = SmallDataset.Classes.SelectMany(c => Directory.GetFiles(Path.Combine(root, c)).Take(4).Select(p => new LabeledImage(p, c.ToUpperInvariant()))).ToList();
        using var model = await ImageClassifier.Create().FromImages(list).WithValidationSplit(0.25).TrainAsync();
        Assert.That(model.Classes, Is.EqualTo(new[] { "BLUE", "GREEN", "RED" }));
        Assert.That(model.TrainingReport!.ImagesUsed, Is.EqualTo(12));
    }

    [Test]
    public void StratifiedSplit_IsSeededStratifiedAndKeepsOnePerClass()
    {
        int[] labels = [.. Enumerable.Repeat(0, 10), .. Enumerable.Repeat(1, 2), .. Enumerable.Repeat(2, 3), 3];
        var (train, validation) = StratifiedSplit.Split(labels, 4, 0.2, 5);
        var again = StratifiedSplit.Split(labels, 4, 0.2, 5);
        var other = StratifiedSplit.Split(labels, 4, 0.2, 6);
        Assert.Multiple(() =>
        {
            Assert.That(validation.Count(i => labels[i] == 0), Is.EqualTo(2), "20% of 10");
            Assert.That(validation.Count(i => labels[i] == 1), Is.EqualTo(1), "a class of 2 keeps one for validation");
            Assert.That(validation.Count(i => labels[i] == 2), Is.EqualTo(1));
            Assert.That(validation.Count(i => labels[i] == 3), Is.Zero, "a class of 1 keeps its image for training");
            Assert.That(train.Concat(validation).Order(), Is.EqualTo(Enumerable.Range(0, labels.Length)));
            Assert.That(again.Validation, Is.EqualTo(validation), "same seed, same split");
            Assert.That(other.Validation, Is.Not.EqualTo(validation), "another seed, another split");
        });
    }

    [Test]
    public async Task WithValidationFolder_UsesItInsteadOfASplit()
    {
        var train = SmallDataset.Create(5);
        var validation = SmallDataset.Create(3);
        using var model = await ImageClassifier.Create().FromFolder(train).WithValidationFolder(validation).TrainAsync();
        Assert.Multiple(() =>
        {
            Assert.That(model.TrainingReport!.Counts.All(c => c.Training == 5 && c.Validation == 3));
            Assert.That(model.TrainingReport.ValidationMetrics!.Count, Is.EqualTo(9));
        });
    }

    /// <summary>Writes one file of each bad kind and returns the expected reasons by path.</summary>
    internal static Dictionary<string, BadImageReason> WriteBadFiles(string folder)
    {
        using var pattern = TestImages.Pattern(64, 64);
        var png = TestImages.Png(pattern);
        var jpeg = TestImages.Jpeg(pattern);
        var files = new Dictionary<string, (byte[] Bytes, BadImageReason Reason)>
        {
            ["empty.png"] = ([], BadImageReason.Empty),
            ["text.jpg"] = ("just some text"u8.ToArray(), BadImageReason.NotAnImage),
            ["cut.png"] = (png[..(png.Length / 2)], BadImageReason.Truncated),
            ["cut.jpg"] = (jpeg[..(jpeg.Length / 2)], BadImageReason.Truncated),
            ["huge.png"] = (TestImages.RawPng(60000, 60000, 8, 2, [], includeData: false), BadImageReason.TooLarge),
        };
        var result = new Dictionary<string, BadImageReason>();
        foreach (var (name, (bytes, reason)) in files)
        {
            var path = Path.Combine(folder, name);
            File.WriteAllBytes(path, bytes);
            result[path] = reason;
        }

        var link = Path.Combine(folder, "dangling.png");
        File.CreateSymbolicLink(link, Path.Combine(folder, "gone.png"));
        result[link] = BadImageReason.Unreadable;
        return result;
    }
}
