using Microsoft.ML;
using Microsoft.ML.Data;
using PretrainedKit.Interop;

namespace PretrainedKit.Tests.Interop;

/// <summary>A trained classifier and the featurizer inside ML.NET pipelines, from path and from byte columns (issue #17 item 2).</summary>
public class MlNetPipelineTests
{
    private string _data = null!;
    private ImageClassifierModel _model = null!;
    private List<string> _paths = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        _data = SmallDataset.Create(6);
        _model = await ImageClassifier.Create().FromFolder(_data).WithSeed(5).TrainAsync();
        _paths = Directory.GetFiles(_data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
    }

    [OneTimeTearDown]
    public void Close() => _model.Dispose();

    [Test]
    public void ClassifyImages_PathColumn_AddsPredictedLabelAndScoreAsPredictDoes()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(_paths.Select(p => new PathRow { ImagePath = p }));
        var transformed = ml.Transforms.ClassifyImages(_model).Fit(data).Transform(data);
        var labels = transformed.GetColumn<string>("PredictedLabel").ToList();
        var scores = transformed.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(transformed.Schema["Score"].Type, Is.EqualTo(new VectorDataViewType(NumberDataViewType.Single, _model.Classes.Count)));
            Assert.That(transformed.Schema["ImagePath"].Type, Is.EqualTo(TextDataViewType.Instance), "input columns are kept");
            Assert.That(labels, Is.EqualTo(_paths.Select(p => _model.Predict(p).Label)));
            Assert.That(scores, Is.EqualTo(_paths.Select(p => _model.Predict(p).Probabilities.ToArray())));
        });
    }

    [Test]
    public void ClassifyImages_BytesColumnInAPredictionEngineAfterAnotherTransform_Works()
    {
        var ml = new MLContext(seed: 1);
        var rows = _paths.Select(p => new BytesRow { Image = File.ReadAllBytes(p), Name = Path.GetFileName(p) }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.Text.FeaturizeText("NameFeatures", nameof(BytesRow.Name))
            .Append(ml.Transforms.ClassifyImages(_model, inputColumnName: nameof(BytesRow.Image), predictedLabelColumnName: "Guess"));
        var fitted = pipeline.Fit(data);
        var engine = ml.Model.CreatePredictionEngine<BytesRow, GuessRow>(fitted);
        var guesses = rows.Select(r => engine.Predict(r)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(guesses.Select(g => g.Guess), Is.EqualTo(_paths.Select(p => _model.Predict(p).Label)));
            Assert.That(guesses[0].Score, Has.Length.EqualTo(_model.Classes.Count));
            Assert.That(guesses[0].Score.Sum(), Is.EqualTo(1).Within(1e-4));
        });
    }

    [Test]
    public void ClassifyImages_TopLabels_HoldTheKMostProbableClassesInOrder()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(_paths.Select(p => new PathRow { ImagePath = p }));
        var transformed = ml.Transforms.ClassifyImages(_model, topK: 2).Fit(data).Transform(data);
        var top = transformed.GetColumn<VBuffer<ReadOnlyMemory<char>>>("TopLabels").Select(v => v.DenseValues().Select(m => m.ToString()).ToArray()).ToList();
        Assert.That(top, Is.EqualTo(_paths.Select(p => _model.Predict(p, 2).TopK.Select(t => t.Label).ToArray())));
    }

    [Test]
    public void ClassifyImages_MLImageColumn_IsRefusedWithWhatToUseInstead()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(_paths.Take(2).Select(p => new PathRow { ImagePath = p }));
        var pipeline = ml.Transforms.LoadImages(outputColumnName: "Picture", imageFolder: null, inputColumnName: "ImagePath")
            .Append(ml.Transforms.ClassifyImages(_model, inputColumnName: "Picture"));
        Assert.That(() => pipeline.Fit(data), Throws.ArgumentException.With.Message.Contains("MLImage").And.Message.Contains("LoadRawImageBytes"));
    }

    [Test]
    public void FeaturizeImages_BytesColumn_GivesThePathColumnsFeatures()
    {
        using var featurizer = ImageFeaturizer.Open();
        var ml = new MLContext(seed: 1);
        var fromBytes = ml.Data.LoadFromEnumerable(_paths.Take(3).Select(p => new BytesRow { Image = File.ReadAllBytes(p), Name = p }));
        var features = ml.Transforms.FeaturizeImages(featurizer, inputColumnName: nameof(BytesRow.Image)).Fit(fromBytes).Transform(fromBytes)
            .GetColumn<VBuffer<float>>("Features").Select(v => v.DenseValues().ToArray()).ToList();
        Assert.That(features, Is.EqualTo(_paths.Take(3).Select(featurizer.GetFeatures)));
    }

    [Test]
    public void ClassifyImages_ColumnOfAnotherType_IsRefusedWithTheFix()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new NumberRow { ImagePath = 1f } });
        Assert.Multiple(() =>
        {
            Assert.That(() => ml.Transforms.ClassifyImages(_model).Fit(data), Throws.ArgumentException.With.Message.Contains("image file paths (text) or encoded image bytes"));
            Assert.That(() => ml.Transforms.ClassifyImages(_model, inputColumnName: "Missing").Fit(data), Throws.ArgumentException.With.Message.Contains("no column 'Missing'"));
        });
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = string.Empty;
    }

    private sealed class BytesRow
    {
        public byte[] Image { get; set; } = [];

        public string Name { get; set; } = string.Empty;
    }

    private sealed class GuessRow
    {
        public string Guess { get; set; } = string.Empty;

        public float[] Score { get; set; } = [];
    }

    private sealed class NumberRow
    {
        public float ImagePath { get; set; }
    }
}
