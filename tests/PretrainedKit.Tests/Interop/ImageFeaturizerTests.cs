using Microsoft.ML;
using Microsoft.ML.Data;
using PretrainedKit.Interop;

namespace PretrainedKit.Tests.Interop;

/// <summary>The backbone inside a user's own ML.NET pipeline.</summary>
public class ImageFeaturizerTests
{
    private string _data = null!;
    private ImageFeaturizer _featurizer = null!;

    [OneTimeSetUp]
    public void Setup()
    {
        _data = SmallDataset.Create(6);
        _featurizer = ImageFeaturizer.Open();
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _featurizer.Dispose();
        Directory.Delete(_data, recursive: true);
    }

    private List<ImageRow> Rows() => SmallDataset.Classes
        .SelectMany(c => Directory.EnumerateFiles(Path.Combine(_data, c)).Order(StringComparer.Ordinal).Select(p => new ImageRow { Path = p, Label = c }))
        .ToList();

    [Test]
    public void FeaturizeImages_DataView_AddsFeatureColumnAndKeepsInputColumns()
    {
        var ml = new MLContext(seed: 1);
        var rows = Rows();
        var data = ml.Data.LoadFromEnumerable(rows);
        var transformed = ml.Transforms.FeaturizeImages(_featurizer, outputColumnName: "Pixels512", inputColumnName: nameof(ImageRow.Path)).Fit(data).Transform(data);
        var column = transformed.Schema["Pixels512"];
        var features = transformed.GetColumn<VBuffer<float>>("Pixels512").Select(v => v.DenseValues().ToArray()).ToList();
        var labels = transformed.GetColumn<string>(nameof(ImageRow.Label)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(column.Type, Is.EqualTo(new VectorDataViewType(NumberDataViewType.Single, 512)));
            Assert.That(features, Has.Count.EqualTo(rows.Count));
            Assert.That(labels, Is.EqualTo(rows.Select(r => r.Label)));
            Assert.That(features[0], Is.EqualTo(_featurizer.GetFeatures(rows[0].Path)).Within(1e-6f), "the pipeline computes the same features as GetFeatures");
            Assert.That(features[0], Is.Not.EqualTo(features[^1]), "different images give different features");
        });
    }

    [Test]
    public void FeaturizeImages_InUsersOwnPipeline_TrainsAClassifierThatSeparatesTheClasses()
    {
        var ml = new MLContext(seed: 1);
        var rows = Rows();
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.FeaturizeImages(_featurizer, "Features", nameof(ImageRow.Path))
            .Append(ml.Transforms.Conversion.MapValueToKey("LabelKey", nameof(ImageRow.Label)))
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy("LabelKey", "Features"));
        var model = pipeline.Fit(data);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(data), labelColumnName: "LabelKey");
        Assert.That(metrics.MicroAccuracy, Is.EqualTo(1.0), "three solid-colour classes are trivially separable on training data");
    }

    [Test]
    public void FeaturizeImages_MatchesTheFeaturesTheClassifierIsTrainedOn()
    {
        using var model = ImageClassifier.Create().FromFolder(_data).WithSeed(1).WithFeatureLayout(PretrainedKit.Backbones.FeatureLayout.Pooled).TrainAsync().GetAwaiter().GetResult(); // the featurizer's default layout
        var path = Rows()[0].Path;
        Assert.That(_featurizer.GetFeatures(path), Is.EqualTo(model.ExtractFeatures(File.ReadAllBytes(path), path)));
    }

    [Test]
    public void FeaturizeImages_BadImage_ThrowsNamingTheFile()
    {
        var bad = Path.Combine(_data, "not-an-image.png");
        File.WriteAllText(bad, "hello");
        try
        {
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(new[] { new ImageRow { Path = bad, Label = "x" } });
            var transformed = ml.Transforms.FeaturizeImages(_featurizer, "Features", nameof(ImageRow.Path)).Fit(data).Transform(data);
            Assert.That(() => transformed.GetColumn<VBuffer<float>>("Features").ToList(), Throws.Exception.With.Message.Contains(bad).Or.InnerException.With.Message.Contains(bad));
        }
        finally
        {
            File.Delete(bad);
        }
    }

    [Test]
    public void GetFeatures_AfterDispose_ThrowsObjectDisposed()
    {
        var featurizer = ImageFeaturizer.Open();
        featurizer.Dispose();
        Assert.That(() => featurizer.GetFeatures(Rows()[0].Path), Throws.TypeOf<ObjectDisposedException>());
    }

    public sealed class ImageRow
    {
        public string Path { get; set; } = string.Empty;

        public string Label { get; set; } = string.Empty;
    }
}
