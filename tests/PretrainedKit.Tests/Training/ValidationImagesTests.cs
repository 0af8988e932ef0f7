using PretrainedKit.Data;
using PretrainedKit.Training;

namespace PretrainedKit.Tests.Training;

/// <summary>Validation from a list (WithValidationImages) next to the split and the folder, and training from a CSV file.</summary>
public class ValidationImagesTests
{
    [Test]
    public void WithValidationSplitFolderOrImages_EachClearsTheOthers()
    {
        LabeledImage[] list = [new("/x/a.png", "cat")];
        var builder = ImageClassifier.Create();

        var options = builder.WithValidationImages(list).Options;
        Assert.That((options.ValidationImages, options.ValidationFolder, options.ValidationFraction), Is.EqualTo((options.ValidationImages, (string?)null, 0.0)));
        Assert.That(options.ValidationImages, Is.EqualTo(list));

        options = builder.WithValidationFolder("/val").Options;
        Assert.That((options.ValidationImages, options.ValidationFolder, options.ValidationFraction), Is.EqualTo(((IReadOnlyList<LabeledImage>?)null, "/val", 0.0)));

        builder.WithValidationImages(list);
        options = builder.WithValidationSplit(0.3).Options;
        Assert.That((options.ValidationImages, options.ValidationFolder, options.ValidationFraction), Is.EqualTo(((IReadOnlyList<LabeledImage>?)null, (string?)null, 0.3)));
    }

    [Test]
    public void WithValidationImages_CopiesTheList()
    {
        var list = new List<LabeledImage> { new("/x/a.png", "cat") };
        var builder = ImageClassifier.Create().WithValidationImages(list);
        list.Add(new LabeledImage("/x/b.png", "dog"));
        Assert.That(builder.Options.ValidationImages, Has.Count.EqualTo(1));
        Assert.That(() => builder.WithValidationImages([null!]), Throws.ArgumentException.With.Message.Contains("null entry"));
    }

    [Test]
    public void Validate_FolderAndImagesBothSetAndAnEmptyList_ListsEveryProblem()
    {
        var options = ImageClassifierOptions.Default with { ValidationFolder = "/val", ValidationImages = [new LabeledImage("/x/a.png", "cat")], ValidationFraction = 2 };
        var ex = Assert.Throws<InvalidOptionsException>(options.Validate)!;
        Assert.That(ex.Problems.Select(p => p.ParamName), Is.EquivalentTo(new[] { nameof(ImageClassifierOptions.ValidationImages), nameof(ImageClassifierOptions.ValidationFraction) }));
        Assert.That(ex.Message, Does.Contain("give one"));

        var empty = ImageClassifierOptions.Default with { ValidationImages = [] };
        Assert.That(empty.Validate, Throws.ArgumentException.With.Message.Contains("validation images is empty"));

        var target = ImageClassifierOptions.Default with { ValidationFraction = 0, ValidationImages = [new LabeledImage("/x/a.png", "cat")], UnknownPrecisionTarget = 0.9 };
        Assert.That(target.Validate, Throws.Nothing, "a validation list is enough for a precision target");
    }

    [Test]
    public void TrainAsync_CsvWithValidationImages_ValidatesOnExactlyThoseImages()
    {
        var data = SmallDataset.Create(6);
        var all = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => new LabeledImage(f, Path.GetFileName(Path.GetDirectoryName(f))!)).ToList();
        var validation = all.Where((_, i) => i % 3 == 0).ToList();
        var training = all.Except(validation).ToList();
        var csv = Path.Combine(data, "train.csv");
        File.WriteAllLines(csv, ["path,label", .. training.Select(i => $"{Path.GetRelativePath(data, i.Path)},{i.Label}")]);

        using var model = ImageClassifier.Create().FromCsv(csv).WithValidationImages(validation).WithSeed(1).Train();

        var report = model.TrainingReport!;
        Assert.That(report.Counts.Sum(c => c.Training), Is.EqualTo(training.Count));
        Assert.That(report.Counts.Sum(c => c.Validation), Is.EqualTo(validation.Count));
        Assert.That(report.Counts.Select(c => c.Validation), Is.EqualTo(SmallDataset.Classes.Select(c => validation.Count(v => v.Label == c))));
        Assert.That(report.ValidationMetrics!.Count, Is.EqualTo(validation.Count));
    }

    [Test]
    public void TrainAsync_ValidationImageWithAnUnknownLabel_IsNamedBeforeFeaturising()
    {
        var data = SmallDataset.Create(3);
        var image = Directory.GetFiles(Path.Combine(data, "red"))[0];
        Assert.That(
            () => ImageClassifier.Create().FromFolder(data).WithValidationImages([new LabeledImage(image, "purple")]).TrainAsync(),
            Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("'purple'").And.Message.Contains(image).And.Message.Contains("not a class of the training data"));
    }
}
