using PretrainedKit.Featurization;
using PretrainedKit.Models;
using PretrainedKit.Tests.Featurization;
using System.IO.Compression;
using System.Text;
using PretrainedKit.Backbones;
using PretrainedKit.Serialization;

namespace PretrainedKit.Tests.Backbones;

/// <summary>Bring your own ONNX model: a tiny generated conv/pool network declared with <see cref="Backbone.FromOnnx"/>.</summary>
public class CustomBackboneTests
{
    /// <summary>The tiny test backbone's definition, shared with the reliability tests.</summary>
    internal static readonly BackboneDefinition Definition = new()
    {
        Id = "tiny-cnn",
        DisplayName = "Tiny CNN (test)",
        InputName = TinyOnnx.InputName,
        OutputName = TinyOnnx.OutputName,
        InputWidth = TinyOnnx.Size,
        InputHeight = TinyOnnx.Size,
        FeatureSize = TinyOnnx.FeatureSize,
        ChannelOrder = ChannelOrder.Rgb,
        Mean = [0.5f, 0.5f, 0.5f],
        Std = [0.25f, 0.25f, 0.25f],
    };

    private string _folder = null!;
    private string _onnx = null!;
    private string _data = null!;
    private ImageClassifierModel _model = null!;
    private string[] _images = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        _folder = TestPaths.NewTempFolder("custom");
        _onnx = TinyOnnx.Write(_folder);
        _data = SmallDataset.Create(8);
        _model = await ImageClassifier.Create().FromFolder(_data).WithBackbone(Backbone.FromOnnx(_onnx, Definition)).WithSeed(3).TrainAsync();
        _images = Directory.GetFiles(_data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    [Test]
    public void Train_WithTinyCustomBackbone_LearnsTheColours()
    {
        var right = _images.Count(i => _model.Predict(i).Label == Path.GetFileName(Path.GetDirectoryName(i)));
        Assert.Multiple(() =>
        {
            Assert.That(_model.Backbone.IsCustom, Is.True);
            Assert.That(_model.Backbone.FeatureSize, Is.EqualTo(TinyOnnx.FeatureSize));
            Assert.That(right, Is.EqualTo(_images.Length), "the first three features are the mean colour");
        });
    }

    [TestCase(ChannelOrder.Rgb)]
    [TestCase(ChannelOrder.Bgr)]
    public void Preprocess_PerChannel_AppliesScaleMeanAndStdInChannelOrder(ChannelOrder order)
    {
        var definition = Definition with { ChannelOrder = order, Scale = 1f, Mean = [10f, 20f, 30f], Std = [2f, 4f, 8f] };
        using var session = TestSession.Open(Backbone.FromOnnx(_onnx, definition));
        const int plane = TinyOnnx.Size * TinyOnnx.Size;
        var rgb = new byte[plane * 3];
        new Random(9).NextBytes(rgb);
        var tensor = new float[plane * 3];
        session.Preprocess(rgb, tensor);

        int[] source = order == ChannelOrder.Rgb ? [0, 1, 2] : [2, 1, 0];
        var maxError = 0f;
        for (var c = 0; c < 3; c++)
        {
            for (var p = 0; p < plane; p++)
            {
                var expected = (rgb[(p * 3) + source[c]] - definition.Mean[c]) / definition.Std[c];
                maxError = Math.Max(maxError, Math.Abs(tensor[(c * plane) + p] - expected));
            }
        }

        Assert.That(maxError, Is.LessThan(1e-4f));
    }

    [Test]
    public void FromOnnx_ResNet18DeclaredByHandWithItsMeanImage_PreprocessesExactlyLikeTheKnownBackbone()
    {
        var known = KnownBackbones.ResNet18;
        var byHand = Backbone.FromOnnx(known.ResolveModelPath(), new BackboneDefinition
        {
            Id = "my-resnet18",
            InputName = known.InputName,
            OutputName = known.OutputName,
            FeatureSize = known.FeatureSize,
            ChannelOrder = ChannelOrder.Bgr,
            MeanImageFile = known.ResolvePreprocessPath(),
        });
        using var ours = TestSession.Open(byHand);
        using var theirs = TestSession.Open(known);
        var rgb = new byte[224 * 224 * 3];
        new Random(4).NextBytes(rgb);
        var a = new float[rgb.Length];
        var b = new float[rgb.Length];
        ours.Preprocess(rgb, a);
        theirs.Preprocess(rgb, b);
        Assert.That(a, Is.EqualTo(b));
        Assert.That(ours.WeightsSha256, Is.EqualTo(theirs.WeightsSha256));
    }

    [Test]
    public void SaveAndLoad_WithoutBackboneArgument_UsesTheRecordedDefinitionAndPredictsTheSame()
    {
        var path = Path.Combine(TestPaths.NewTempFolder(), "tiny.pkmodel");
        _model.Save(path);
        using var loaded = ImageClassifier.Load(path);
        Assert.Multiple(() =>
        {
            Assert.That(loaded.Backbone.Definition.Mean, Is.EqualTo(Definition.Mean));
            Assert.That(loaded.Backbone.Definition.ChannelOrder, Is.EqualTo(ChannelOrder.Rgb));
            Assert.That(loaded.Backbone.ModelFile, Is.EqualTo(_onnx));
            foreach (var image in _images.Take(6))
            {
                Assert.That(loaded.Predict(image).Probabilities, Is.EqualTo(_model.Predict(image).Probabilities), image);
            }
        });
    }

    [Test]
    public void Load_OnnxMovedNextToTheModel_FindsIt_AndMissingEverywhere_NamesTheFix()
    {
        var folder = TestPaths.NewTempFolder();
        var onnx = TinyOnnx.Write(folder, "moved.onnx");
        var model = Path.Combine(folder, "moved.pkmodel");
        using (var trained = ImageClassifier.Load(Path.Combine(SaveTo(folder), "tiny.pkmodel"), Backbone.FromOnnx(onnx, Definition)))
        {
            trained.Save(model);
        }

        // The recorded path is gone; the copy next to the model is used.
        var renamed = Path.Combine(folder, "elsewhere");
        Directory.CreateDirectory(renamed);
        File.Move(onnx, Path.Combine(renamed, "moved.onnx"));
        File.Move(model, Path.Combine(renamed, "moved.pkmodel"));
        using (var loaded = ImageClassifier.Load(Path.Combine(renamed, "moved.pkmodel")))
        {
            Assert.That(loaded.Backbone.ModelFile, Is.EqualTo(Path.Combine(renamed, "moved.onnx")));
        }

        File.Delete(Path.Combine(renamed, "moved.onnx"));
        var ex = Assert.Throws<FileNotFoundException>(() => ImageClassifier.Load(Path.Combine(renamed, "moved.pkmodel")));
        Assert.That(ex!.Message, Does.Contain("tiny-cnn").And.Contain(Path.Combine(renamed, "moved.onnx")).And.Contain("Backbone.FromOnnx"));
    }

    [Test]
    public void Load_WithBackboneOfOtherPreprocessing_ThrowsNamingBoth()
    {
        var path = Path.Combine(TestPaths.NewTempFolder(), "tiny.pkmodel");
        _model.Save(path);
        var other = Backbone.FromOnnx(_onnx, Definition with { Mean = [0f, 0f, 0f] });
        var ex = Assert.Throws<ModelFormatException>(() => ImageClassifier.Load(path, other));
        Assert.That(ex!.Message, Does.Contain(path).And.Contain("mean [0.5, 0.5, 0.5]").And.Contain("mean [0, 0, 0]"));
    }

    [Test]
    public void Open_WrongNamesAndSizes_ListsEveryProblemWithTheFileName()
    {
        var wrong = Backbone.FromOnnx(_onnx, Definition with { InputName = "image", OutputName = "pooled", InputWidth = 64 });
        var ex = Assert.Throws<ArgumentException>(() => TestSession.Open(wrong).Dispose());
        Assert.That(ex!.Message, Does.Contain(_onnx).And.Contain("no input named 'image' (inputs: pixels)").And.Contain("no output named 'pooled' (outputs: features)"));

        var size = Backbone.FromOnnx(_onnx, Definition with { InputWidth = 64, FeatureSize = 16 });
        ex = Assert.Throws<ArgumentException>(() => TestSession.Open(size).Dispose());
        Assert.That(ex!.Message, Does.Contain("[N, 3, 32, 64]").And.Contain("8 numbers per image, but FeatureSize is 16"));
    }

    [Test]
    public void FromOnnx_NotAnOnnxFile_ThrowsNamingIt()
    {
        var bogus = Path.Combine(TestPaths.NewTempFolder(), "bogus.onnx");
        File.WriteAllText(bogus, "this is not a protobuf, not at all");
        var ex = Assert.Throws<ArgumentException>(() => TestSession.Open(Backbone.FromOnnx(bogus, Definition)).Dispose());
        Assert.That(ex!.Message, Does.Contain(bogus));
    }

    [Test]
    public void FromOnnx_MissingFileOrBadDefinition_Throws()
    {
        var missing = Path.Combine(TestPaths.NewTempFolder(), "none.onnx");
        Assert.That(() => Backbone.FromOnnx(missing, Definition), Throws.TypeOf<FileNotFoundException>().With.Message.Contains(missing));
        Assert.That(
            () => Backbone.FromOnnx(_onnx, Definition with { FeatureSize = 0, Std = [1f, 0f, 1f], Scale = -1f }),
            Throws.ArgumentException.With.Message.Contains("FeatureSize").And.Message.Contains("Std").And.Message.Contains("Scale"));
    }

    [Test]
    public void Save_CustomBackboneRecordsItsDefinition_KnownBackboneRecordsNone()
    {
        var manifest = new BackboneManifest("resnet18-imagenet", "ab", 512, 224, 224);
        var described = ModelBackbone.Describe(KnownBackbones.ResNet18);
        Assert.That(described, Is.Null);
        var path = Path.Combine(TestPaths.NewTempFolder(), "tiny.pkmodel");
        _model.Save(path);
        using var zip = ZipFile.OpenRead(path);
        using var reader = new StreamReader(zip.GetEntry(ModelFile.ManifestEntry)!.Open(), Encoding.UTF8);
        var json = reader.ReadToEnd();
        Assert.That(json, Does.Contain("\"custom\"").And.Contain("\"inputName\": \"pixels\""));
        Assert.That(manifest.Custom, Is.Null);
    }

    [Test]
    public void TinyBackboneAsset_IsWhatTheGeneratorWrites()
    {
        // The CustomBackbone sample's default model. Regenerate with PRETRAINEDKIT_WRITE_ASSETS=1 after changing TinyOnnx.
        var asset = Path.Combine(TestPaths.RepositoryRoot, "assets", "tiny-backbone", "tiny-cnn.onnx");
        if (Environment.GetEnvironmentVariable("PRETRAINEDKIT_WRITE_ASSETS") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(asset)!);
            File.WriteAllBytes(asset, TinyOnnx.Create());
        }

        Assert.That(File.ReadAllBytes(asset), Is.EqualTo(TinyOnnx.Create()));
    }

    private string SaveTo(string folder)
    {
        _model.Save(Path.Combine(folder, "tiny.pkmodel"));
        return folder;
    }
}
