using Microsoft.ML.OnnxRuntime;

namespace PretrainedKit.Tests.Cli;

/// <summary>Runs <c>pretrainedkit export</c> as a separate process.</summary>
[Category("Slow")]
public class ExportCliTests
{
    private string _work = null!;
    private string _model = null!;

    [OneTimeSetUp]
    public async Task TrainModel()
    {
        _work = TestPaths.NewTempFolder("cli-export");
        using var model = await ImageClassifier.Create().FromFolder(SmallDataset.Create(6)).WithSeed(1).TrainAsync();
        _model = Path.Combine(_work, "colours.pkmodel");
        model.Save(_model);
    }

    [OneTimeTearDown]
    public void Cleanup() => Directory.Delete(_work, recursive: true);

    [Test]
    public void Export_Onnx_WritesRunnableFileWithTheModelsClasses()
    {
        var onnx = Path.Combine(_work, "colours.onnx");
        var (code, stdout, stderr) = Run("export", _model, "--onnx", onnx);
        Assert.That(code, Is.EqualTo(0), stderr);
        using var session = new InferenceSession(onnx);
        Assert.Multiple(() =>
        {
            Assert.That(stdout, Does.Contain(onnx).And.Contain("blue, green, red"));
            Assert.That(session.InputMetadata.Keys, Is.EqualTo(new[] { "image" }));
            Assert.That(session.OutputMetadata["probabilities"].Dimensions, Is.EqualTo(new[] { -1, 3 }));
            Assert.That(session.ModelMetadata.CustomMetadataMap["pretrainedkit.classes"], Is.EqualTo("[\"blue\",\"green\",\"red\"]"));
        });
    }

    [Test]
    public void Export_MissingModel_ExitsWith2NamingTheFile()
    {
        var missing = Path.Combine(_work, "missing.pkmodel");
        var (code, _, stderr) = Run("export", missing, "--onnx", Path.Combine(_work, "x.onnx"));
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(stderr, Does.Contain(missing).And.Not.Contain("   at "));
        });
    }

    [Test]
    public void Export_WithoutOnnxOption_ExitsWith2()
    {
        var (code, _, stderr) = Run("export", _model);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("--onnx"));
    }

    private static (int ExitCode, string Out, string Err) Run(params string[] args) => CliProcess.Run(null, args);
}
