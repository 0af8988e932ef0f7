using PretrainedKit.Featurization;
using PretrainedKit.Models;
using PretrainedKit.Tests.Featurization;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Backbones;
using PretrainedKit.Imaging;

namespace PretrainedKit.Tests.Backbones;

public class BackboneTests
{
    [Test]
    public void Preprocess_MatchesTheResNetPreprocessOnnxModel()
    {
        using var session = TestSession.Open(KnownBackbones.ResNet18);
        const int plane = 224 * 224;
        var random = new Random(7);
        var rgb = new byte[plane * 3];
        random.NextBytes(rgb);

        var ours = new float[plane * 3];
        session.Preprocess(rgb, ours);

        // The package's model takes planar RGB floats (0-255) and returns planar BGR minus its mean image.
        var planar = new float[plane * 3];
        for (var p = 0; p < plane; p++)
        {
            planar[p] = rgb[p * 3];
            planar[plane + p] = rgb[(p * 3) + 1];
            planar[(2 * plane) + p] = rgb[(p * 3) + 2];
        }

        using var onnx = new InferenceSession(TestPaths.PreprocessOnnx);
        using var input = OrtValue.CreateTensorValueFromMemory(planar, [1, 3, 224, 224]);
        using var runOptions = new RunOptions();
        using var outputs = onnx.Run(runOptions, ["OriginalInput"], [input], ["PreprocessedInput"]);
        var theirs = outputs[0].GetTensorDataAsSpan<float>().ToArray();

        var maxDifference = ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(maxDifference, Is.LessThan(1e-4f));
    }

    [Test]
    public async Task RunAsync_ConcurrentSingleThreadRuns_EqualSingleImageFeaturesBitForBit()
    {
        using var session = TestSession.Open(KnownBackbones.ResNet18);
        var expectedRuns = Environment.ProcessorCount < 2 ? 1 : Math.Min(Environment.ProcessorCount, BackboneRuntime.MaxConcurrentRuns);
        Assert.That(session.ConcurrentRuns, Is.EqualTo(expectedRuns), "one single-thread run per core on the CPU (the tests use the CPU package of ONNX Runtime)");
        var images = Directory.GetFiles(SmallDataset.Create(6), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();

        for (var pass = 0; pass < 2; pass++)
        {
            var pipeline = await TestSession.RunAsync(session, images, ImagePreprocessingOptions.Default, null, CancellationToken.None, queueLength: 2);
            for (var i = 0; i < images.Length; i++)
            {
                var single = session.ExtractFeatures(File.ReadAllBytes(images[i]), images[i], ImagePreprocessingOptions.Default);
                Assert.That(pipeline.Features[i], Is.EqualTo(single), $"{images[i]} (pass {pass})");
            }

        }
    }

    [Test]
    public void Open_ComputesTheWeightsHashOfTheInstalledFile()
    {
        using var session = TestSession.Open(KnownBackbones.ResNet18);
        Assert.That(session.WeightsSha256, Has.Length.EqualTo(64));
        Assert.That(session.ModelPath, Does.EndWith(Path.Combine("ResNet18Onnx", "ResNet18.onnx")));
    }

    [Test]
    public void ResolveModelPath_MissingFile_NamesEverySearchedPathAndTheFix()
    {
        var bogus = new Backbone("bogus", "Bogus", Path.Combine("Nope", "missing.onnx"), "x.onnx", "in", "out", 224, 512, "Some.Package", "1.0.0")
            .WithModelDirectory(TestPaths.NewTempFolder());
        var ex = Assert.Throws<BackboneNotFoundException>(() => bogus.ResolveModelPath());
        Assert.That(ex!.SearchedPaths, Has.Count.GreaterThanOrEqualTo(3));
        foreach (var path in ex.SearchedPaths)
        {
            Assert.That(ex.Message, Does.Contain(path));
        }

        Assert.That(ex.Message, Does.Contain(Backbone.ModelDirectoryEnvironmentVariable).And.Contain("PretrainedKit"));
    }

    [Test]
    public void ResNet18_PackageVersion_MatchesTheCentralPackageVersion()
    {
        var props = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "Directory.Packages.props"));
        var transitive = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "src", "PretrainedKit", "buildTransitive", "PretrainedKit.props"));
        var version = KnownBackbones.ResNet18.PackageVersion;
        Assert.That(props, Does.Contain($"<ResNet18PackageVersion>{version}</ResNet18PackageVersion>"));
        Assert.That(transitive, Does.Contain($">{version}</PretrainedKitResNet18PackageVersion>"));
    }

    [Test]
    public void FindById_KnownAndUnknown()
    {
        Assert.That(KnownBackbones.FindById("resnet18-imagenet"), Is.SameAs(KnownBackbones.ResNet18));
        Assert.That(KnownBackbones.FindById("resnet50"), Is.Null);
    }
}

public class BackboneBatchTests
{
    [Test]
    public void RunBatch_EqualsOneImageAtATime()
    {
        using var session = TestSession.Open(KnownBackbones.ResNet18);
        var random = new Random(3);
        const int count = 3;
        var tensors = new float[count * session.TensorLength];
        for (var i = 0; i < tensors.Length; i++)
        {
            tensors[i] = (float)((random.NextDouble() * 255) - 120);
        }

        var batch = new float[count * 512];
        session.RunBatch(tensors, count, batch);
        for (var i = 0; i < count; i++)
        {
            var single = new float[512];
            session.Run(tensors.AsSpan(i * session.TensorLength, session.TensorLength).ToArray(), single);
            Assert.That(batch.AsSpan(i * 512, 512).ToArray(), Is.EqualTo(single), $"image {i}");
        }
    }
}
