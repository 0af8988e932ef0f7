using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using PretrainedKit.Imaging;
using PretrainedKit.Interop;

namespace PretrainedKit.Tests.Interop;

/// <summary>A trained classifier and the featurizer inside ML.NET pipelines, from path, byte and MLImage columns (issue #17).</summary>
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
    public void ClassifyImages_MLImageColumnFromLoadImages_GivesWhatPredictGives()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(_paths.Select(p => new PathRow { ImagePath = p }));
        var pipeline = ml.Transforms.LoadImages(outputColumnName: "Picture", imageFolder: null, inputColumnName: "ImagePath")
            .Append(ml.Transforms.ClassifyImages(_model, inputColumnName: "Picture", topK: 2));
        var transformed = pipeline.Fit(data).Transform(data);
        var labels = transformed.GetColumn<string>("PredictedLabel").ToList();
        var scores = transformed.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToList();
        var top = transformed.GetColumn<VBuffer<ReadOnlyMemory<char>>>("TopLabels").Select(v => v.DenseValues().Select(m => m.ToString()).ToArray()).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(transformed.Schema["Picture"].Type, Is.InstanceOf<ImageDataViewType>(), "the MLImage column is kept");
            Assert.That(labels, Is.EqualTo(_paths.Select(p => _model.Predict(p).Label)));
            Assert.That(scores, Is.EqualTo(_paths.Select(p => _model.Predict(p).Probabilities.ToArray())));
            Assert.That(top, Is.EqualTo(_paths.Select(p => _model.Predict(p, 2).TopK.Select(t => t.Label).ToArray())));
        });
    }

    [Test]
    public void ClassifyImages_MLImageMemberInAPredictionEngine_GivesWhatPredictGives()
    {
        var ml = new MLContext(seed: 1);
        var rows = _paths.Select(p => new ImageRow { Picture = MLImage.CreateFromFile(p) }).ToList();
        try
        {
            var data = ml.Data.LoadFromEnumerable(rows);
            var fitted = ml.Transforms.ClassifyImages(_model, inputColumnName: nameof(ImageRow.Picture), predictedLabelColumnName: "Guess").Fit(data);
            var engine = ml.Model.CreatePredictionEngine<ImageRow, GuessRow>(fitted);
            var guesses = rows.Select(r => engine.Predict(r)).ToList();
            Assert.Multiple(() =>
            {
                Assert.That(guesses.Select(g => g.Guess), Is.EqualTo(_paths.Select(p => _model.Predict(p).Label)));
                Assert.That(guesses.Select(g => g.Score), Is.EqualTo(_paths.Select(p => _model.Predict(p).Probabilities.ToArray())));
            });
        }
        finally
        {
            rows.ForEach(r => r.Picture.Dispose());
        }
    }

    [Test]
    public void FeaturizeImages_MLImageColumn_GivesTheBytesColumnsFeatures()
    {
        using var featurizer = ImageFeaturizer.Open();
        var ml = new MLContext(seed: 1);
        var paths = _paths.Take(4).ToList();
        var data = ml.Data.LoadFromEnumerable(paths.Select(p => new BytesRow { Image = File.ReadAllBytes(p), Name = p }));
        var pipeline = ml.Transforms.LoadImages(outputColumnName: "Picture", imageFolder: null, inputColumnName: nameof(BytesRow.Name))
            .Append(ml.Transforms.FeaturizeImages(featurizer, outputColumnName: "FromImage", inputColumnName: "Picture"))
            .Append(ml.Transforms.FeaturizeImages(featurizer, outputColumnName: "FromBytes", inputColumnName: nameof(BytesRow.Image)));
        var transformed = pipeline.Fit(data).Transform(data);
        var fromImage = transformed.GetColumn<VBuffer<float>>("FromImage").Select(v => v.DenseValues().ToArray()).ToList();
        var fromBytes = transformed.GetColumn<VBuffer<float>>("FromBytes").Select(v => v.DenseValues().ToArray()).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(transformed.Schema["FromImage"].Type, Is.EqualTo(new VectorDataViewType(NumberDataViewType.Single, featurizer.FeatureSize)));
            Assert.That(fromImage, Is.EqualTo(fromBytes));
            Assert.That(fromImage[0], Is.Not.EqualTo(fromImage[^1]), "each row gets its own image's features");
        });
    }

    [Test]
    public void FeaturizeImages_TranslucentMLImage_IsCompositedOnTheBackgroundAsItsPngIs()
    {
        // Alpha from 0 to 255 across the image, over an asymmetric pattern: 0 shows the background, 255 the pattern.
        using var pattern = TestImages.Pattern(40, 30);
        using var translucent = TestImages.Bitmap(40, 30, (x, y) => pattern.GetPixel(x, y).WithAlpha((byte)(x * 255 / 39)));
        var png = TestImages.Png(translucent);
        var path = Path.Combine(_data, "translucent.png");
        File.WriteAllBytes(path, png);
        using var white = ImageFeaturizer.Open();
        using var black = ImageFeaturizer.Open(imageOptions: ImagePreprocessingOptions.Default with { Background = RgbColor.Black });
        try
        {
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(new[] { new PathRow { ImagePath = path } });
            var pipeline = ml.Transforms.LoadImages(outputColumnName: "Picture", imageFolder: null, inputColumnName: "ImagePath")
                .Append(ml.Transforms.FeaturizeImages(white, outputColumnName: "OnWhite", inputColumnName: "Picture"))
                .Append(ml.Transforms.FeaturizeImages(black, outputColumnName: "OnBlack", inputColumnName: "Picture"));
            var transformed = pipeline.Fit(data).Transform(data);
            var onWhite = transformed.GetColumn<VBuffer<float>>("OnWhite").Single().DenseValues().ToArray();
            var onBlack = transformed.GetColumn<VBuffer<float>>("OnBlack").Single().DenseValues().ToArray();
            var pngOnWhite = white.GetFeatures(png);
            var pngOnBlack = black.GetFeatures(png);
            Assert.Multiple(() =>
            {
                // LoadImages premultiplies alpha (8 bits), so a translucent pixel can come back one level off after
                // compositing (PixelEncoderTests); the features move a little, far less than with the other background.
                Assert.That(Distance(onWhite, pngOnWhite), Is.LessThan(0.05 * Norm(pngOnWhite)), "on white: the PNG's features");
                Assert.That(Distance(onBlack, pngOnBlack), Is.LessThan(0.05 * Norm(pngOnBlack)), "on black: the PNG's features");
                Assert.That(Distance(pngOnWhite, pngOnBlack), Is.GreaterThan(5 * Distance(onWhite, pngOnWhite)), "the background shows through, and it is the featurizer's");
                Assert.That(Distance(pngOnWhite, pngOnBlack), Is.GreaterThan(5 * Distance(onBlack, pngOnBlack)), "the background shows through, and it is the featurizer's");
            });
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void FeaturizeImages_MLImageMadeFromRgbaPixels_GivesThePngsFeatures()
    {
        using var featurizer = ImageFeaturizer.Open();
        using var bitmap = TestImages.Pattern(48, 40);
        var rgba = bitmap.Bytes; // Rgba8888, opaque
        using var image = MLImage.CreateFromPixels(48, 40, MLPixelFormat.Rgba32, rgba);
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new SizedImageRow { Picture = image } });
        var features = ml.Transforms.FeaturizeImages(featurizer, inputColumnName: nameof(SizedImageRow.Picture)).Fit(data).Transform(data)
            .GetColumn<VBuffer<float>>("Features").Single().DenseValues().ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(image.PixelFormat, Is.EqualTo(MLPixelFormat.Rgba32));
            Assert.That(features, Is.EqualTo(featurizer.GetFeatures(TestImages.Png(bitmap))));
        });
    }

    [Test]
    public void ModelSave_FittedTransformerOrChain_IsRefusedWithWhatToSaveInstead()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(_paths.Take(1).Select(p => new PathRow { ImagePath = p }));
        var fitted = ml.Transforms.ClassifyImages(_model).Fit(data);
        var chain = ml.Transforms.LoadImages("Picture", imageFolder: null, inputColumnName: "ImagePath").Append(ml.Transforms.ClassifyImages(_model, inputColumnName: "Picture")).Fit(data);
        using var featurizer = ImageFeaturizer.Open();
        var features = ml.Transforms.FeaturizeImages(featurizer).Fit(data);
        using var stream = new MemoryStream();
        Assert.Multiple(() =>
        {
            Assert.That(
                () => ml.Model.Save(fitted, data.Schema, stream),
                Throws.InstanceOf<NotSupportedException>().With.Message.Contains("ImageClassifierModel.Save").And.Message.Contains("'ImagePath'"));
            Assert.That(
                () => ml.Model.Save(chain, data.Schema, stream),
                Throws.InstanceOf<NotSupportedException>().With.Message.Contains("ImageClassifierModel.Save").And.Message.Contains("'Picture'"));
            Assert.That(
                () => ml.Model.Save(features, data.Schema, stream),
                Throws.InstanceOf<NotSupportedException>().With.Message.Contains("after FeaturizeImages"));
        });
    }

    [Test]
    public void ClassifyImages_EstimatorChainOutputShape_HasTheNewColumns()
    {
        var ml = new MLContext(seed: 1);
        // No public API turns data into a SchemaShape; a custom mapping from nothing gives the shape of a path column.
        var paths = ml.Transforms.CustomMapping<NoColumns, PathRow>((_, _) => { }, contractName: null).GetOutputSchema(new SchemaShape([]));
        var shape = ml.Transforms.LoadImages(outputColumnName: "Picture", imageFolder: null, inputColumnName: "ImagePath")
            .Append(ml.Transforms.ClassifyImages(_model, inputColumnName: "Picture", topK: 2))
            .GetOutputSchema(paths);
        Assert.Multiple(() =>
        {
            Assert.That(shape.Select(c => c.Name), Is.EquivalentTo(new[] { "ImagePath", "Picture", "PredictedLabel", "Score", "TopLabels" }));
            Assert.That(shape.Single(c => c.Name == "Score").ItemType, Is.EqualTo(NumberDataViewType.Single));
            Assert.That(shape.Single(c => c.Name == "Score").Kind, Is.EqualTo(SchemaShape.Column.VectorKind.Vector));
            Assert.That(shape.Single(c => c.Name == "PredictedLabel").ItemType, Is.EqualTo(TextDataViewType.Instance));
        });
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
        using var featurizer = ImageFeaturizer.Open();
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new NumberRow { ImagePath = 1f } });
        Assert.Multiple(() =>
        {
            Assert.That(
                () => ml.Transforms.ClassifyImages(_model).Fit(data),
                Throws.ArgumentException.With.Message.Contains("The column 'ImagePath' holds Single").And.Message.Contains("image file paths (text), encoded image bytes").And.Message.Contains("images (MLImage"));
            Assert.That(
                () => ml.Transforms.FeaturizeImages(featurizer).Fit(data),
                Throws.ArgumentException.With.Message.Contains("The column 'ImagePath' holds Single").And.Message.Contains("MLImage"));
            Assert.That(() => ml.Transforms.ClassifyImages(_model, inputColumnName: "Missing").Fit(data), Throws.ArgumentException.With.Message.Contains("no column 'Missing'"));
        });
    }

    private static double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum());

    private static double Norm(float[] a) => Math.Sqrt(a.Sum(x => (double)x * x));

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

    private sealed class ImageRow
    {
        [ImageType(32, 32)]
        public MLImage Picture { get; set; } = null!;
    }

    private sealed class SizedImageRow
    {
        [ImageType(40, 48)]
        public MLImage Picture { get; set; } = null!;
    }

    private sealed class NoColumns
    {
    }

    private sealed class NumberRow
    {
        public float ImagePath { get; set; }
    }
}
