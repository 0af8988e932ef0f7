using PretrainedKit.Featurization;
using PretrainedKit.Models;
using PretrainedKit.Tests.Featurization;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Backbones;
using PretrainedKit.Onnx;

namespace PretrainedKit.Tests.Backbones;

public class MultiStageTests
{
    [Test]
    public void AveragePool_OfTheLastStage_EqualsTheBackbonesOwnPooledOutput()
    {
        var backbone = KnownBackbones.ResNet18;
        var last = backbone.Stages[^1];
        var model = OnnxModelEditor.AddOutputs(OnnxModelEditor.Read(backbone.ResolveModelPath()), [last.OutputName]);
        using var session = new InferenceSession(OnnxModelEditor.ToBytes(model));
        var random = new Random(5);
        var tensor = new float[3 * 224 * 224];
        for (var i = 0; i < tensor.Length; i++)
        {
            tensor[i] = (float)((random.NextDouble() * 255) - 120);
        }

        using var input = OrtValue.CreateTensorValueFromMemory(tensor, [1, 3, 224, 224]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, [backbone.InputName], [input], [last.OutputName, backbone.OutputName]);
        var stage = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var pooled = outputs[1].GetTensorDataAsSpan<float>().ToArray();
        Assert.That(stage, Has.Length.EqualTo(last.Channels * last.Height * last.Width));
        Assert.That(MultiStagePooling.AveragePool(last, stage, 0), Is.EqualTo(pooled).Within(1e-4f));
    }

    [Test]
    public void MultiStageSession_GivesRootedUnitNormBlocks()
    {
        using var session = TestSession.Open(KnownBackbones.ResNet18, null, FeatureLayout.MultiStage);
        Assert.That(session.FeatureSize, Is.EqualTo(2 * (128 + 256 + 512)));
        var random = new Random(6);
        var tensors = new float[2 * session.TensorLength];
        for (var i = 0; i < tensors.Length; i++)
        {
            tensors[i] = (float)((random.NextDouble() * 255) - 120);
        }

        var features = new float[2 * session.FeatureSize];
        session.RunBatch(tensors, 2, features);
        var single = new float[session.FeatureSize];
        session.Run(tensors[session.TensorLength..], single);
        Assert.That(features[session.FeatureSize..], Is.EqualTo(single), "batch equals single image");
        var offset = 0;
        foreach (var stage in KnownBackbones.ResNet18.Stages)
        {
            for (var block = 0; block < 2; block++)
            {
                var values = features.AsSpan(offset, stage.Channels).ToArray();
                Assert.That(values.Sum(v => (double)v * v), Is.EqualTo(1).Within(1e-4), $"{stage.OutputName} block {block} has unit norm");
                Assert.That(values.Min(), Is.GreaterThanOrEqualTo(0f));
                offset += stage.Channels;
            }
        }
    }

    [Test]
    public async Task TrainSaveLoad_WithMultiStageFeatures_RoundTrips()
    {
        var data = SmallDataset.Create(4);
        using var model = await ImageClassifier.Create().FromFolder(data).WithFeatureLayout(FeatureLayout.MultiStage).TrainAsync();
        var path = Path.Combine(TestPaths.NewTempFolder(), "ms.pkmodel");
        model.Save(path);
        using var loaded = ImageClassifier.Load(path);
        var image = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories)[0];
        Assert.That(loaded.FeatureLayout, Is.EqualTo(FeatureLayout.MultiStage));
        Assert.That(loaded.Predict(image).Probabilities, Is.EqualTo(model.Predict(image).Probabilities));
        Assert.That(model.Definition.Head.FeatureSize, Is.EqualTo(1792));
    }
}
