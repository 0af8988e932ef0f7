using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Imaging;

namespace PretrainedKit.Tests.Onnx;

/// <summary>Exports a model trained on the bundled Fashion-MNIST subset and runs the file with ONNX Runtime.</summary>
[Category("Slow")]
public class OnnxExportTests
{
    private const double Tolerance = 1e-4;
    private ImageClassifierModel _model = null!;
    private string _folder = null!;
    private string _onnx = null!;

    [OneTimeSetUp]
    public async Task TrainAndExport()
    {
        _model = await ImageClassifier.Create().FromFolder(TestPaths.FashionTrain).WithSeed(1).WithValidationSplit(0).TrainAsync();
        _folder = TestPaths.NewTempFolder("onnx");
        _onnx = Path.Combine(_folder, "fashion.onnx");
        _model.ExportOnnx(_onnx);
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _model.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void ExportOnnx_BundledTestImages_MatchDotNetProbabilitiesWithin1e4()
    {
        var paths = Directory.EnumerateFiles(TestPaths.FashionTest, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var expected = _model.PredictBatch(paths, topK: 1).Predictions().Select(p => p.Probabilities).ToList();

        using var session = new InferenceSession(_onnx);
        var k = _model.Classes.Count;
        var maxDifference = 0.0;
        const int batch = 50; // Several images per run: also proves the batch dimension is dynamic.
        for (var start = 0; start < paths.Count; start += batch)
        {
            var chunk = paths.Skip(start).Take(batch).ToList();
            var actual = Run(session, chunk);
            for (var i = 0; i < chunk.Count; i++)
            {
                for (var c = 0; c < k; c++)
                {
                    maxDifference = Math.Max(maxDifference, Math.Abs(actual[(i * k) + c] - expected[start + i][c]));
                }
            }
        }

        TestContext.Out.WriteLine($"{paths.Count} images, largest difference {maxDifference:E2}");
        Assert.Multiple(() =>
        {
            Assert.That(paths, Has.Count.EqualTo(200));
            Assert.That(maxDifference, Is.LessThanOrEqualTo(Tolerance));
        });
    }

    [Test]
    public void ExportOnnx_SingleImage_ProbabilitiesSumToOneAndTopClassMatches()
    {
        var path = Directory.EnumerateFiles(Path.Combine(TestPaths.FashionTest, "Trouser")).Order(StringComparer.Ordinal).First();
        using var session = new InferenceSession(_onnx);
        var actual = Run(session, [path]);
        var expected = _model.Predict(path, topK: 1);
        var best = Array.IndexOf(actual, actual.Max());
        Assert.Multiple(() =>
        {
            Assert.That(actual, Has.Length.EqualTo(_model.Classes.Count));
            Assert.That(actual.Sum(), Is.EqualTo(1f).Within(1e-5));
            Assert.That(_model.Classes[best], Is.EqualTo(expected.Label));
        });
    }

    [Test]
    public void ExportOnnx_File_HasNamedInputOutputDynamicBatchAndMetadata()
    {
        using var session = new InferenceSession(_onnx);
        var input = session.InputMetadata.Single();
        var output = session.OutputMetadata.Single();
        var metadata = session.ModelMetadata.CustomMetadataMap;
        var classes = JsonSerializer.Deserialize<string[]>(metadata["pretrainedkit.classes"]);
        Assert.Multiple(() =>
        {
            Assert.That(input.Key, Is.EqualTo("image"));
            Assert.That(input.Value.Dimensions, Is.EqualTo(new[] { -1, 3, 224, 224 }));
            Assert.That(input.Value.SymbolicDimensions[0], Is.EqualTo("N"));
            Assert.That(output.Key, Is.EqualTo("probabilities"));
            Assert.That(output.Value.Dimensions, Is.EqualTo(new[] { -1, _model.Classes.Count }));
            Assert.That(classes, Is.EqualTo(_model.Classes));
            Assert.That(metadata["pretrainedkit.input"], Does.Contain("RGB").And.Contain("0-255"));
            Assert.That(metadata["pretrainedkit.backbone"], Is.EqualTo(_model.Backbone.Id));
            Assert.That(metadata["pretrainedkit.backbone_sha256"], Is.EqualTo(_model.BackboneWeightsSha256));
            Assert.That(metadata["pretrainedkit.resize"], Does.StartWith(_model.ImageOptions.ResizeMode.ToString()));
            Assert.That(session.ModelMetadata.ProducerName, Is.EqualTo("PretrainedKit"));
        });
    }

    [Test]
    public void ExportOnnx_MissingFolder_ThrowsNamingFolder()
    {
        var target = Path.Combine(_folder, "no-such-folder", "m.onnx");
        Assert.That(() => _model.ExportOnnx(target), Throws.TypeOf<DirectoryNotFoundException>().With.Message.Contains(Path.Combine(_folder, "no-such-folder")));
    }

    [Test]
    public void ExportOnnx_FolderAsTarget_ThrowsAndLeavesNoTempFile()
    {
        Assert.That(() => _model.ExportOnnx(_folder), Throws.TypeOf<IOException>().With.Message.Contains("is a folder"));
        Assert.That(Directory.EnumerateFiles(_folder, "*.tmp"), Is.Empty);
    }

    /// <summary>Decodes images the way the model does (same decoder, same options) into the exported input layout.</summary>
    private float[] Run(InferenceSession session, List<string> paths) => Run(session, paths, _model.ImageOptions);

    /// <summary>Runs an exported model on image files decoded with <paramref name="image"/>; shared with other export tests.</summary>
    internal static float[] Run(InferenceSession session, List<string> paths, ImagePreprocessingOptions image) =>
        Run(session, Tensor(paths, image), paths.Count);

    /// <summary>Decodes image files with <paramref name="image"/> into the exported input layout: [N,3,224,224], planar RGB, 0-255.</summary>
    internal static float[] Tensor(List<string> paths, ImagePreprocessingOptions image)
    {
        const int size = 224;
        var plane = size * size;
        var tensor = new float[paths.Count * 3 * plane];
        var rgb = new byte[plane * 3];
        for (var i = 0; i < paths.Count; i++)
        {
            ImageDecoder.DecodeNormalized(File.ReadAllBytes(paths[i]), paths[i], image, size, size, rgb);
            var offset = i * 3 * plane;
            for (var p = 0; p < plane; p++)
            {
                tensor[offset + p] = rgb[p * 3];
                tensor[offset + plane + p] = rgb[(p * 3) + 1];
                tensor[offset + (2 * plane) + p] = rgb[(p * 3) + 2];
            }
        }

        return tensor;
    }

    /// <summary>Runs an exported model on <paramref name="count"/> images already in its input layout.</summary>
    internal static float[] Run(InferenceSession session, float[] tensor, int count)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(tensor, [count, 3, 224, 224]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["image"], [input], ["probabilities"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }
}
