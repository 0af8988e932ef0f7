using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Models;
using PretrainedKit.Onnx.Proto;
using PretrainedKit.Serialization;

namespace PretrainedKit.Tests.Onnx;

/// <summary>
/// ONNX export of the levers Auto can choose (issue #14): multi-stage features (with and without the grid), test-time
/// mirroring, both heads and every normalisation. Each model is trained once on 4 images per Fashion-MNIST class (features
/// shared through one feature cache) and its file is compared with <c>PredictBatch</c> and <c>Predict</c>. Between them the
/// cases cover each head with each normalisation. (Averaging only the first view's logits in the mirror graph makes every
/// mirror case fail by 1e-3 to 0.4, so the tolerance of 1e-4 does catch a wrong graph.)
/// </summary>
[Category("Slow")]
public class OnnxLeverExportTests
{
    /// <summary>The tolerance of <see cref="OnnxExportTests"/>.</summary>
    private const double Tolerance = 1e-4;

    private readonly Dictionary<string, ImageClassifierModel> _models = new(StringComparer.Ordinal);
    private string _folder = null!;
    private List<LabeledImage> _training = null!;
    private List<string> _images = null!;

    [OneTimeSetUp]
    public void SetUp()
    {
        _folder = TestPaths.NewTempFolder("onnx-levers");
        _training = FirstPerClass(TestPaths.FashionTrain, 4).Select(p => new LabeledImage(p, Path.GetFileName(Path.GetDirectoryName(p)!))).ToList();
        _images = FirstPerClass(TestPaths.FashionTest, 1);
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        foreach (var model in _models.Values)
        {
            model.Dispose();
        }

        Directory.Delete(_folder, recursive: true);
    }

    [TestCase(FeatureLayout.MultiStage, HeadKind.Linear, TestTimeAugmentation.None, FeatureNormalization.Standardize)]
    [TestCase(FeatureLayout.MultiStageGrid, HeadKind.Linear, TestTimeAugmentation.None, FeatureNormalization.L2ThenStandardize)]
    [TestCase(FeatureLayout.MultiStageGrid, HeadKind.Kernel, TestTimeAugmentation.None, FeatureNormalization.Standardize)]
    [TestCase(FeatureLayout.MultiStage, HeadKind.Linear, TestTimeAugmentation.Mirror, FeatureNormalization.Standardize)]
    [TestCase(FeatureLayout.MultiStageGrid, HeadKind.Kernel, TestTimeAugmentation.Mirror, FeatureNormalization.L2ThenStandardize)]
    [TestCase(FeatureLayout.Pooled, HeadKind.Linear, TestTimeAugmentation.Mirror, FeatureNormalization.None)]
    [TestCase(FeatureLayout.Pooled, HeadKind.Kernel, TestTimeAugmentation.Mirror, FeatureNormalization.None)]
    public async Task ExportOnnx_Levers_MatchPredictWithin1e4(FeatureLayout layout, HeadKind head, TestTimeAugmentation tta, FeatureNormalization normalization)
    {
        var model = await Train(layout, head, tta, normalization);
        var onnx = Export(model);
        using var session = new InferenceSession(onnx);
        var actual = OnnxExportTests.Run(session, _images, model.ImageOptions);
        var expected = model.PredictBatch(_images).Predictions().Select(p => p.Probabilities).ToList();
        var single = model.Predict(_images[0]).Probabilities;
        var difference = MaxDifference(actual, expected, model.Classes.Count);
        var metadata = session.ModelMetadata.CustomMetadataMap;
        TestContext.Out.WriteLine($"{layout} {head} {tta} {normalization}: {_images.Count} images, largest difference {difference:E2}, mean top probability {expected.Average(p => p.Max()):F3}");
        Assert.Multiple(() =>
        {
            Assert.That(model.FeatureLayout, Is.EqualTo(layout));
            Assert.That(model.HeadKind, Is.EqualTo(head));
            Assert.That(model.TestTimeAugmentation, Is.EqualTo(tta));
            Assert.That(model.Normalization, Is.EqualTo(normalization));
            Assert.That(actual, Has.Length.EqualTo(_images.Count * model.Classes.Count));
            Assert.That(difference, Is.LessThanOrEqualTo(Tolerance));
            Assert.That(actual.Take(model.Classes.Count), Is.EqualTo(single).Within(Tolerance), "single Predict");
            Assert.That(metadata.ContainsKey("pretrainedkit.features"), Is.EqualTo(layout != FeatureLayout.Pooled));
            Assert.That(metadata.ContainsKey("pretrainedkit.test_time_augmentation"), Is.EqualTo(tta == TestTimeAugmentation.Mirror));
        });
    }

    [Test]
    public async Task ExportOnnx_GridMirrorKernel_GivesTheSameProbabilitiesWithFullAndWithoutGraphOptimisation()
    {
        var model = await Train(FeatureLayout.MultiStageGrid, HeadKind.Kernel, TestTimeAugmentation.Mirror, FeatureNormalization.L2ThenStandardize);
        var onnx = Export(model);
        float[] RunWith(GraphOptimizationLevel level)
        {
            using var options = new SessionOptions { GraphOptimizationLevel = level };
            using var session = new InferenceSession(onnx, options);
            return OnnxExportTests.Run(session, _images, model.ImageOptions);
        }

        var optimised = RunWith(GraphOptimizationLevel.ORT_ENABLE_ALL);
        var plain = RunWith(GraphOptimizationLevel.ORT_DISABLE_ALL);
        var expected = model.PredictBatch(_images).Predictions().Select(p => p.Probabilities).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(optimised, Is.EqualTo(plain).Within(1e-5f));
            Assert.That(MaxDifference(optimised, expected, model.Classes.Count), Is.LessThanOrEqualTo(Tolerance));
        });
    }

    [Test]
    public async Task ExportOnnx_Mirror_ImageAndItsMirrorImageGetTheSameProbabilities()
    {
        var model = await Train(FeatureLayout.Pooled, HeadKind.Linear, TestTimeAugmentation.Mirror, FeatureNormalization.None);
        using var session = new InferenceSession(Export(model));
        var k = model.Classes.Count;
        var tensor = OnnxExportTests.Tensor([_images[0]], model.ImageOptions);
        var mirrored = new float[tensor.Length];
        for (var row = 0; row < 3 * 224; row++)
        {
            for (var x = 0; x < 224; x++)
            {
                mirrored[(row * 224) + x] = tensor[(row * 224) + 223 - x];
            }
        }

        var both = OnnxExportTests.Run(session, [.. tensor, .. mirrored], 2);
        Assert.Multiple(() =>
        {
            Assert.That(tensor, Is.Not.EqualTo(mirrored), "the image is not symmetric");
            Assert.That(both.Skip(k), Is.EqualTo(both.Take(k)).Within(1e-5f));
        });
    }

    /// <summary>The pooling subgraph alone against <see cref="MultiStagePooling.Pool"/>, on random stage outputs.</summary>
    [TestCase(FeatureLayout.MultiStage, false)]
    [TestCase(FeatureLayout.MultiStageGrid, false)]
    [TestCase(FeatureLayout.MultiStageGrid, true)]
    public void MultiStagePoolingGraph_OnRandomStageOutputs_EqualsMultiStagePooling(FeatureLayout layout, bool oddSizes)
    {
        IReadOnlyList<BackboneStage> stages = oddSizes
            ? [new("a", 3, 5, 5), new("b", 4, 3, 5), new("c", 6, 1, 1)]
            : KnownBackbones.ResNet18.Stages;
        const int count = 3;
        var random = new Random(11);
        var outputs = stages.Select(s => Enumerable.Range(0, count * s.Channels * s.Height * s.Width).Select(_ => (float)((random.NextDouble() * 4) - 1)).ToArray()).ToArray();

        // Image 1: the last stage is all zeros (and negative in one channel), so its blocks have length 0 and must be 0.
        var last = stages[^1];
        var lastSize = last.Channels * last.Height * last.Width;
        Array.Fill(outputs[^1], 0f, lastSize, lastSize);
        Array.Fill(outputs[^1], -2f, lastSize, last.Height * last.Width);

        var graph = new GraphProto { Name = "pooling" };
        foreach (var stage in stages)
        {
            graph.Input.Add(TensorInfo(stage.OutputName, [count, stage.Channels, stage.Height, stage.Width]));
            graph.Node.Add(new NodeProto { OpType = "Identity", Input = { stage.OutputName }, Output = { stage.OutputName + "_out" }, Name = stage.OutputName + "_identity" });
        }

        var renamed = stages.Select(s => s with { OutputName = s.OutputName + "_out" }).ToList();
        var next = 0;
        OnnxExport.AddMultiStagePooling(graph, renamed, layout, "features", name => $"t{next++}_{name}");
        var size = MultiStagePooling.FeatureSize(stages, layout);
        graph.Output.Add(TensorInfo("features", [count, size]));
        var model = new ModelProto { IrVersion = 4, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = 8 });

        using var session = new InferenceSession(model.ToByteArray());
        var inputs = stages.Select((s, i) => OrtValue.CreateTensorValueFromMemory(outputs[i], [count, s.Channels, s.Height, s.Width])).ToList();
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, stages.Select(s => s.OutputName).ToArray(), inputs, ["features"]);
        var actual = results[0].GetTensorDataAsSpan<float>().ToArray();
        inputs.ForEach(i => i.Dispose());

        var expected = new float[count * size];
        MultiStagePooling.Pool(stages, outputs, count, expected, layout);
        var zeroBlocks = expected.Skip(size).Take(size).Count(v => v == 0);
        Assert.Multiple(() =>
        {
            Assert.That(actual, Is.EqualTo(expected).Within(1e-5f));
            Assert.That(zeroBlocks, Is.GreaterThanOrEqualTo(2 * last.Channels), "image 1 has zero blocks");
            Assert.That(expected.Take(size).Count(v => v > 0), Is.GreaterThan(size / 2), "image 0 has real values");
        });
    }

    private static ValueInfoProto TensorInfo(string name, long[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.AddRange(dims.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } } };
    }

    private static List<string> FirstPerClass(string root, int perClass) =>
        Directory.EnumerateFiles(root, "*.png", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .GroupBy(p => Path.GetDirectoryName(p)!, StringComparer.Ordinal)
            .SelectMany(g => g.Take(perClass))
            .ToList();

    private static double MaxDifference(float[] actual, List<IReadOnlyList<float>> expected, int classes)
    {
        var max = 0.0;
        for (var i = 0; i < expected.Count; i++)
        {
            for (var c = 0; c < classes; c++)
            {
                max = Math.Max(max, Math.Abs(actual[(i * classes) + c] - expected[i][c]));
            }
        }

        return max;
    }

    /// <summary>Trains (once per configuration, features shared through one cache) a model on 4 images per class.</summary>
    private async Task<ImageClassifierModel> Train(FeatureLayout layout, HeadKind head, TestTimeAugmentation tta, FeatureNormalization normalization)
    {
        var key = $"{layout}-{head}-{tta}-{normalization}";
        if (!_models.TryGetValue(key, out var model))
        {
            model = await ImageClassifier.Create()
                .FromImages(_training)
                .WithSeed(1)
                .WithFeatureLayout(layout)
                .WithHead(head)
                .WithTestTimeAugmentation(tta)
                .WithNormalization(normalization)
                .WithFeatureCache(new FeatureCacheOptions { Directory = Path.Combine(_folder, "cache") })
                .TrainAsync();
            _models[key] = model;
        }

        return model;
    }

    private string Export(ImageClassifierModel model)
    {
        var path = Path.Combine(_folder, $"{model.FeatureLayout}-{model.HeadKind}-{model.TestTimeAugmentation}-{model.Normalization}-{Guid.NewGuid():N}.onnx");
        model.ExportOnnx(path);
        return path;
    }
}
