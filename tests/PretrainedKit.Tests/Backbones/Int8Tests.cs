using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Backbones;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;
using PretrainedKit.Onnx;
using PretrainedKit.Onnx.Proto;
using PretrainedKit.Serialization;
using PretrainedKit.Tests.Onnx;

namespace PretrainedKit.Tests.Backbones;

/// <summary>
/// The int8 backbone (issue #18): the opset raise and the folding keep the float results, ONNX Runtime fuses the QDQ
/// graph into integer kernels, its features stay close to float, and the precision travels with the model (file, cache
/// key, ONNX export). One int8 model trained on the bundled Fashion-MNIST subset is shared.
/// </summary>
[Category("Slow")]
public class Int8Tests
{
    private static readonly string[] StageOutputs = ["ReLU283_Output_0", "ReLU315_Output_0", "ReLU347_Output_0", "ReLU393_Output_0", "Pooling395_Output_0"];
    private ImageClassifierModel _model = null!;
    private BackboneRuntime _float = null!;
    private List<float[]> _tensors = null!;
    private string _folder = null!;

    [OneTimeSetUp]
    public async Task Train()
    {
        _folder = TestPaths.NewTempFolder("int8");
        _model = await ImageClassifier.Create().FromFolder(TestPaths.FashionTrain).WithSeed(1).WithValidationSplit(0).WithPrecision(Precision.Int8)
            .WithFeatureCacheDirectory(Path.Combine(_folder, "cache")).TrainAsync();
        _float = BackboneRuntime.Open(KnownBackbones.ResNet18, FeatureLayout.Pooled, null);
        var renderer = new ViewRenderer(_float, ImagePreprocessingOptions.Default);
        _tensors = [.. TestImages().Take(24).Select(path =>
        {
            var tensor = new float[_float.TensorLength];
            renderer.Reset();
            renderer.Render(File.ReadAllBytes(path), path, ImageView.Original, tensor);
            return tensor;
        })];
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _model.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void RaiseOpsetAndFold_ResNet18_SameStageOutputsAsTheOriginalGraph()
    {
        var original = OnnxModelEditor.Read(_float.ModelPath);
        var raised = QdqQuantizer.RaiseOpset(original);
        var folded = QdqQuantizer.FoldBatchNorm(raised);
        using var originalSession = Open(original);
        using var raisedSession = Open(raised);
        using var foldedSession = Open(folded);
        double raisedDifference = 0, foldedDifference = 0, largest = 0;
        foreach (var tensor in _tensors.Take(4))
        {
            var expected = Run(originalSession, tensor);
            var fromRaised = Run(raisedSession, tensor);
            var fromFolded = Run(foldedSession, tensor);
            for (var s = 0; s < expected.Length; s++)
            {
                for (var i = 0; i < expected[s].Length; i++)
                {
                    raisedDifference = Math.Max(raisedDifference, Math.Abs(expected[s][i] - fromRaised[s][i]));
                    foldedDifference = Math.Max(foldedDifference, Math.Abs(expected[s][i] - fromFolded[s][i]));
                    largest = Math.Max(largest, Math.Abs(expected[s][i]));
                }
            }
        }

        TestContext.Out.WriteLine($"raised: {raisedDifference:E2}, folded: {foldedDifference:E2}, largest value {largest:F1}");
        Assert.Multiple(() =>
        {
            Assert.That(raised.OpsetImport.Single().Version, Is.EqualTo(13));
            Assert.That(raised.Graph.Node.Where(n => n.OpType == "BatchNormalization").SelectMany(n => n.Attribute), Has.None.Matches<AttributeProto>(a => a.Name == "spatial"));
            Assert.That(folded.Graph.Node.Count(n => n.OpType == "BatchNormalization"), Is.Zero);
            Assert.That(raisedDifference, Is.LessThanOrEqualTo(1e-5)); // Measured: 0 (the same kernels run).
            Assert.That(foldedDifference, Is.LessThanOrEqualTo(1e-3)); // Measured: 5.5e-5 on values up to 67 (float rounding of the folded weights).
        });
    }

    [Test]
    public void RaiseOpset_OperatorWhoseMeaningChanged_ThrowsNamingIt()
    {
        var model = new ModelProto { IrVersion = 3, OpsetImport = { new OperatorSetIdProto { Domain = string.Empty, Version = 8 } }, Graph = new GraphProto() };
        model.Graph.Node.Add(new NodeProto { OpType = "Pad", Name = "pad1", Input = { "x" }, Output = { "y" } });
        Assert.That(() => QdqQuantizer.RaiseOpset(model), Throws.TypeOf<NotSupportedException>().With.Message.Contains("Pad (pad1)").And.Message.Contains("Precision.Float32"));
    }

    [Test]
    public void Int8Graph_OnnxRuntime_FusesEveryConvolutionAndAdditionIntoIntegerKernels()
    {
        var runtime = _model.Extractor.Runtime;
        var optimized = Path.Combine(_folder, "optimized.onnx");
        using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelFilePath = optimized })
        using (new InferenceSession(OnnxModelEditor.ToBytes(runtime.Int8Graph!), options))
        {
        }

        var source = OnnxModelEditor.Read(_float.ModelPath).Graph.Node;
        var nodes = OnnxModelEditor.Read(optimized).Graph.Node;
        Assert.Multiple(() =>
        {
            Assert.That(nodes.Count(n => n.OpType == "QLinearConv"), Is.EqualTo(source.Count(n => n.OpType == "Conv")));
            Assert.That(nodes.Count(n => n.OpType == "QLinearAdd"), Is.EqualTo(source.Count(n => n.OpType == "Add")));
            Assert.That(nodes.Where(n => n.OpType is "Conv" or "Add" or "Relu" or "BatchNormalization"), Is.Empty);
        });
    }

    [Test]
    public void Quantize_InputLeftInFloat_FirstConvolutionRunsInFloatTheRestOnIntegers()
    {
        // The variant the fidelity probe measured (bench/results/int8-fidelity.md): the graph input without a quantisation pair.
        var input = KnownBackbones.ResNet18.InputName;
        var calibration = _model.Extractor.Runtime.Int8!;
        var graph = QdqQuantizer.Quantize(Int8Backbone.Prepare(_float.ModelPath), calibration.ToDictionary(), calibration.Types, new HashSet<string> { input });
        var optimized = Path.Combine(_folder, "optimized-float-input.onnx");
        using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelFilePath = optimized })
        using (new InferenceSession(OnnxModelEditor.ToBytes(graph), options))
        {
        }

        var convs = OnnxModelEditor.Read(_float.ModelPath).Graph.Node.Count(n => n.OpType == "Conv");
        var nodes = OnnxModelEditor.Read(optimized).Graph.Node;
        Assert.Multiple(() =>
        {
            Assert.That(graph.Graph.Node.Where(n => n.OpType == "QuantizeLinear").Select(n => n.Input[0]), Does.Not.Contain(input));
            Assert.That(nodes.Count(n => n.OpType == "QLinearConv"), Is.EqualTo(convs - 1));
            Assert.That(nodes.Where(n => n.OpType == "Conv").Select(n => n.Input[0]), Is.EqualTo(new[] { input }));
        });
    }

    [Test]
    public void Int8Graph_Features_CloseToFloatFeatures()
    {
        using var int8 = new InferenceSession(OnnxModelEditor.ToBytes(OnnxModelEditor.AddOutputs(_model.Extractor.Runtime.Int8Graph!, StageOutputs)));
        using var reference = Open(OnnxModelEditor.Read(_float.ModelPath));
        var cosines = _tensors.Select(t => Cosine(Run(reference, t)[^1], Run(int8, t)[^1])).ToList();
        TestContext.Out.WriteLine($"cosine int8 vs float over {cosines.Count} images: mean {cosines.Average():F4}, min {cosines.Min():F4}");

        // Measured on the 200 bundled Fashion-MNIST test images with a calibration on the 200 training images: mean 0.992,
        // min 0.985 (U8S7). Full 8-bit weights on an AVX2 CPU without VNNI gave mean 0.82: this would catch it.
        Assert.Multiple(() =>
        {
            Assert.That(cosines.Average(), Is.GreaterThanOrEqualTo(0.98));
            Assert.That(cosines.Min(), Is.GreaterThanOrEqualTo(0.96));
        });
    }

    [Test]
    public void Train_Int8_ModelRecordsPrecisionAndCalibration()
    {
        var int8 = _model.Extractor.Runtime.Int8;
        Assert.Multiple(() =>
        {
            Assert.That(_model.Precision, Is.EqualTo(Precision.Int8));
            Assert.That(int8, Is.Not.Null);
            Assert.That(int8!.ImageCount, Is.EqualTo(200)); // Every bundled training image (fewer than 300).
            Assert.That(int8.Types, Is.EqualTo(QuantizedTypes.U8S7));
            Assert.That(int8.Ranges.Select(r => r.Value), Is.EqualTo(QdqQuantizer.CalibratedValues(Int8Backbone.Prepare(_float.ModelPath))));
            Assert.That(int8.Percentile, Is.EqualTo(Int8Calibration.DefaultPercentile));
        });
    }

    [Test]
    public void SaveLoad_Int8Model_SamePrecisionAndSamePredictions()
    {
        var path = Path.Combine(_folder, "int8.pkmodel");
        _model.Save(path);
        using var loaded = ImageClassifierModel.Load(path);
        var images = TestImages().Take(10).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(loaded.Precision, Is.EqualTo(Precision.Int8));
            Assert.That(loaded.Extractor.Runtime.Int8!.Digest, Is.EqualTo(_model.Extractor.Runtime.Int8!.Digest));
            Assert.That(loaded.Extractor.Runtime.Int8!.Percentile, Is.EqualTo(_model.Extractor.Runtime.Int8!.Percentile));
            foreach (var image in images)
            {
                Assert.That(loaded.Predict(image, topK: 3).Probabilities, Is.EqualTo(_model.Predict(image, topK: 3).Probabilities), image);
            }
        });
    }

    [Test]
    public void Load_Int8ManifestWithoutCalibration_ThrowsModelFormatException()
    {
        var path = Path.Combine(_folder, "int8-broken.pkmodel");
        _model.Save(path);
        ModelManifestEdit.InPlace(path, text =>
        {
            Assert.That(text.IndexOf("\"int8\"", StringComparison.Ordinal), Is.GreaterThan(0));
            return text.Replace("\"int8\"", "\"notInt8\"", StringComparison.Ordinal);
        });

        Assert.That(() => ImageClassifierModel.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains(path).And.Message.Contains("no int8 calibration"));
    }

    [Test]
    public void Load_Int8PercentileOutOfRange_ThrowsModelFormatException()
    {
        var path = Path.Combine(_folder, "int8-percentile.pkmodel");
        _model.Save(path);
        var field = FormattableString.Invariant($"\"percentile\": {Int8Calibration.DefaultPercentile:R}");
        ModelManifestEdit.InPlace(path, text =>
        {
            Assert.That(text, Does.Contain(field));
            return text.Replace(field, "\"percentile\": 250", StringComparison.Ordinal);
        });

        Assert.That(() => ImageClassifierModel.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains(path).And.Message.Contains("percentile"));
    }

    [Test]
    public async Task ImageIndex_Int8ModelsEmbeddings_KeepTheirSpaceAndRefuseAFloatEmbedder()
    {
        var images = Directory.GetFiles(TestPaths.FashionTrain, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(6).ToList();
        var index = await PretrainedKit.Search.ImageIndex.BuildAsync(_model.Embedder, images);
        var path = Path.Combine(TestPaths.NewTempFolder("int8-index"), "int8.pkindex");
        index.Save(path);
        var loaded = PretrainedKit.Search.ImageIndex.Load(path);
        using var plain = PretrainedKit.Search.ImageEmbedder.Open(featureCache: PretrainedKit.Caching.FeatureCacheOptions.Disabled);
        Assert.Multiple(() =>
        {
            Assert.That(loaded.EmbeddingId, Is.EqualTo(_model.Embedder.Id), "the int8 digest is part of the saved space");
            Assert.That(_model.Embedder.Id, Does.Not.EqualTo(plain.Id));
            Assert.That(loaded.Search(_model.Embedder, images[0], 1)[0].Path, Is.EqualTo(Path.GetFullPath(images[0])), "the model's own embedder queries it");
            Assert.That(() => loaded.OpenEmbedder(), Throws.ArgumentException.With.Message.Contains("int8"));
        });
    }

    [Test]
    public void CacheContext_Int8_DiffersFromFloatWhoseKeyIsUnchanged()
    {
        var image = ImagePreprocessingOptions.Default;
        var sameLayout = BackboneRuntime.Open(KnownBackbones.ResNet18, _model.FeatureLayout, null);
        var floatContext = FeatureExtractor.CacheContext(sameLayout, image);
        var int8Context = FeatureExtractor.CacheContext(_model.Extractor.Runtime, image);
        Assert.Multiple(() =>
        {
            Assert.That(int8Context, Is.Not.EqualTo(floatContext));
            Assert.That(int8Context, Does.StartWith(floatContext + "|int8="));
            Assert.That(floatContext, Does.Not.Contain("int8"));
            Assert.That(FeatureExtractor.CacheContext(sameLayout, image, ImageView.Mirror), Is.EqualTo(floatContext + "|view=Mirror"));
        });
    }

    [Test]
    public void ExportOnnx_Int8Model_PredictsLikeTheModel()
    {
        var onnx = Path.Combine(_folder, "int8.onnx");
        _model.ExportOnnx(onnx);
        var paths = TestImages().Take(40).ToList();
        var expected = _model.PredictBatch(paths, topK: 1).Predictions().Select(p => p.Probabilities).ToList();
        using var session = new InferenceSession(onnx);
        var actual = OnnxExportTests.Run(session, paths, _model.ImageOptions);
        var k = _model.Classes.Count;
        var maxDifference = 0.0;
        var sameTop = 0;
        for (var i = 0; i < paths.Count; i++)
        {
            var row = actual.AsSpan(i * k, k).ToArray();
            maxDifference = Math.Max(maxDifference, row.Zip(expected[i], (a, b) => Math.Abs(a - b)).Max());
            sameTop += Array.IndexOf(row, row.Max()) == expected[i].ToList().IndexOf(expected[i].Max()) ? 1 : 0;
        }

        TestContext.Out.WriteLine($"{paths.Count} images: largest probability difference {maxDifference:E2}, same top class {sameTop}");
        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Multiple(() =>
        {
            Assert.That(metadata["pretrainedkit.precision"], Does.StartWith("int8"));
            var int8 = _model.Extractor.Runtime.Int8!;
            Assert.That(metadata["pretrainedkit.precision"], int8.Percentile < 100 ? Does.Contain(FormattableString.Invariant($"clipped at percentile {int8.Percentile:R}")) : Does.Not.Contain("clipped"));
            Assert.That(sameTop, Is.EqualTo(paths.Count));
            Assert.That(maxDifference, Is.LessThanOrEqualTo(1e-3));
        });
    }

    private static IEnumerable<string> TestImages() =>
        Directory.EnumerateFiles(TestPaths.FashionTest, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal);

    private static InferenceSession Open(ModelProto model) => new(OnnxModelEditor.ToBytes(OnnxModelEditor.AddOutputs(model, StageOutputs)));

    private static float[][] Run(InferenceSession session, float[] tensor)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(tensor, [1, 3, 224, 224]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["Input247"], [input], StageOutputs);
        return [.. outputs.Select(o => o.GetTensorDataAsSpan<float>().ToArray())];
    }

    private static double Cosine(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(a, b);
}
