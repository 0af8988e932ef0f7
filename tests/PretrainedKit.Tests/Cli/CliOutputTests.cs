using System.Text.Json;

namespace PretrainedKit.Tests.Cli;

/// <summary>The CLI's output modes: plain text when redirected, Spectre tables and bars when rich, --quiet, --json, --help.</summary>
[Category("Slow")]
public class CliOutputTests
{
    private string _data = null!;
    private string _model = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        _data = SmallDataset.Create(6);
        _model = Path.Combine(TestPaths.NewTempFolder("cli-output"), "colours.pkmodel");
        using var model = await ImageClassifier.Create().FromFolder(_data).WithSeed(1).TrainAsync();
        model.Save(_model);
    }

    [TestCase("train")]
    [TestCase("evaluate")]
    [TestCase("predict")]
    public void Help_EveryCommand_ShowsExamplesAndTheOutputSwitches(string command)
    {
        var (code, stdout, _) = Run(null, command, "--help");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(0));
            Assert.That(stdout, Does.Contain("Examples:").And.Contain($"pretrainedkit {command} "));
            Assert.That(stdout, Does.Contain("--quiet").And.Contain("--json"));
        });
    }

    [Test]
    public void Evaluate_Redirected_PrintsPlainTextAndProgressLinesOnStderr()
    {
        var (code, stdout, stderr) = Run(null, "evaluate", _model, _data);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(0), stderr);
            Assert.That(stdout, Does.Contain("micro accuracy").And.Contain("precision"));
            Assert.That(stdout + stderr, Does.Not.Contain("\u001b[").And.Not.Contain("╭"), "no escape codes or box drawing in a pipe");
            Assert.That(stderr, Does.Contain("Computing features...").And.Contain("18/18 images"));
        });
    }

    [Test]
    public void Evaluate_RichConsole_DrawsColouredTablesAndProgressBars()
    {
        var (code, stdout, stderr) = Run("rich", "evaluate", _model, _data);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(0), stderr);
            Assert.That(stdout, Does.Contain("╭").And.Contain("micro accuracy").And.Contain("\u001b["), "a table with colours");
            Assert.That(stdout, Does.Contain("Per class").And.Contain("Precision"), "the per-class table");
            Assert.That(stderr, Does.Contain("Computing features").And.Contain("━").And.Contain("100%"), "a progress bar that finished");
        });
    }

    [Test]
    public void Evaluate_Json_PrintsOnlyTheMetricsDocument()
    {
        var (code, stdout, stderr) = Run("rich", "evaluate", _model, _data, "--json");
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stderr, Is.Empty, "no progress with --json");
        using var doc = JsonDocument.Parse(stdout);
        Assert.Multiple(() =>
        {
            Assert.That(doc.RootElement.GetProperty("metricsOn").GetString(), Is.EqualTo("test"));
            Assert.That(doc.RootElement.GetProperty("imagesEvaluated").GetInt32(), Is.EqualTo(18));
            Assert.That(doc.RootElement.GetProperty("classes").GetArrayLength(), Is.EqualTo(3));
        });
    }

    [Test]
    public void Evaluate_Quiet_PrintsNothing()
    {
        var (code, stdout, stderr) = Run("rich", "evaluate", _model, _data, "--quiet");
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout + stderr, Is.Empty);
    }

    [Test]
    public void Predict_QuietAndRich_PrintPathTabLabelOrATable()
    {
        var folder = Path.Combine(_data, "green");
        var quiet = Run(null, "predict", _model, folder, "-q");
        var lines = quiet.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(quiet.ExitCode, Is.EqualTo(0), quiet.Err);
        Assert.That(lines, Has.Length.EqualTo(6));
        Assert.That(lines.Select(l => l.Split('\t')[1].Trim()), Is.All.EqualTo("green"));

        var rich = Run("rich", "predict", _model, folder, "--top", "2");
        Assert.That(rich.ExitCode, Is.EqualTo(0), rich.Err);
        Assert.That(rich.Out, Does.Contain("╭").And.Contain("Probability").And.Contain("green-01.png"));
    }

    [Test]
    public void Predict_TopZero_OneLineErrorAndExitCode2()
    {
        var (code, stdout, stderr) = Run("rich", "predict", _model, _data, "--top", "0");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(stdout, Is.Empty);
            Assert.That(stderr.Trim().Split('\n'), Has.Length.EqualTo(1));
            Assert.That(stderr, Does.StartWith("error: --top must be at least 1."));
        });
    }

    [Test]
    public void Help_TrainAndPredict_ShowTheUnknownAndCalibrationOptions()
    {
        var train = Run(null, "train", "--help");
        var predict = Run(null, "predict", "--help");
        Assert.That(train.Out, Does.Contain("--unknown-precision").And.Contain("--no-calibration"));
        Assert.That(predict.Out, Does.Contain("--unknown-threshold").And.Contain("pretrainedkit predict pets.pkmodel new-photos --unknown-threshold"));
    }

    [Test]
    public void Predict_BelowTheThreshold_ShowsUnknownInTextJsonAndQuiet()
    {
        var folder = Path.Combine(_data, "green");
        var text = Run(null, "predict", _model, folder, "--unknown-threshold", "0.999");
        Assert.That(text.ExitCode, Is.EqualTo(0), text.Err);
        Assert.That(text.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.All.Contains(": unknown (best guess below the 99.9 % threshold): green "));

        var json = Run(null, "predict", _model, folder, "--unknown-threshold", "0.999", "--json");
        Assert.That(json.ExitCode, Is.EqualTo(0), json.Err);
        var lines = json.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(6));
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            Assert.That(root.GetProperty("threshold").GetDouble(), Is.EqualTo(0.999).Within(1e-6));
            Assert.That(root.GetProperty("isUnknown").GetBoolean(), Is.True, line);
            Assert.That(root.GetProperty("predictions")[0].GetProperty("label").GetString(), Is.EqualTo("green"), "the best guess is still given");
        }

        var quiet = Run(null, "predict", _model, folder, "--unknown-threshold", "0.999", "-q");
        Assert.That(quiet.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[1].Trim()), Is.All.EqualTo("unknown"));

        var rich = Run("rich", "predict", _model, folder, "--unknown-threshold", "0.999");
        Assert.That(rich.ExitCode, Is.EqualTo(0), rich.Err);
        Assert.That(rich.Out, Does.Contain("unknown").And.Contain("(best guess:").And.Contain("top probability below the threshold 99.9 %"));
    }

    [Test]
    public void Predict_ModelWithoutThreshold_JsonSaysKnownAndNoThreshold()
    {
        var image = Directory.GetFiles(Path.Combine(_data, "red"), "*.png").Order(StringComparer.Ordinal).First();
        var json = Run(null, "predict", _model, image, "--json");
        Assert.That(json.ExitCode, Is.EqualTo(0), json.Err);
        using var doc = JsonDocument.Parse(json.Out);
        Assert.That(doc.RootElement.GetProperty("isUnknown").GetBoolean(), Is.False);
        Assert.That(doc.RootElement.TryGetProperty("threshold", out _), Is.False);
    }

    [Test]
    public void Predict_ThresholdOutOfRange_OneLineErrorAndExitCode2()
    {
        var (code, stdout, stderr) = Run(null, "predict", _model, _data, "--unknown-threshold", "1.5");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stdout, Is.Empty);
        Assert.That(stderr.Trim(), Is.EqualTo("error: --unknown-threshold must be a probability from 0 to 1, for example 0.8."));
    }

    [Test]
    public void Train_UnknownPrecisionWithoutValidation_ExitsWith2NamingTheFix()
    {
        var model = Path.Combine(TestPaths.NewTempFolder("cli-unknown"), "m.pkmodel");
        var (code, _, stderr) = Run(null, "train", _data, "--model", model, "--validation-split", "0", "--unknown-precision", "0.95");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("keep a validation split above 0").And.Contain("--validation-split"));
        Assert.That(File.Exists(model), Is.False);
    }

    [Test]
    public void Train_LeverFlags_AreUsedAndListedInTextAndJson()
    {
        var model = Path.Combine(TestPaths.NewTempFolder("cli-levers"), "m.pkmodel");
        var (code, stdout, stderr) = Run(null, "train", _data, "--model", model, "--features", "MultiStage", "--augment", "Mirror", "--tta", "Mirror", "--normalize", "L2ThenStandardize", "--auto-l2", "--json");
        Assert.That(code, Is.EqualTo(0), stderr);
        var levers = JsonDocument.Parse(stdout).RootElement.GetProperty("levers").EnumerateArray().ToDictionary(l => l.GetProperty("name").GetString()!, l => l);
        Assert.Multiple(() =>
        {
            Assert.That(levers["Feature layout"].GetProperty("setting").GetString(), Is.EqualTo("MultiStage"));
            Assert.That(levers["Augmentation"].GetProperty("setting").GetString(), Is.EqualTo("Mirror"));
            Assert.That(levers["Test-time augmentation"].GetProperty("setting").GetString(), Is.EqualTo("Mirror"));
            Assert.That(levers["Normalisation"].GetProperty("setting").GetString(), Is.EqualTo("L2ThenStandardize"));
            Assert.That(levers["Regularisation"].GetProperty("setting").GetString(), Is.EqualTo("Automatic"));
            Assert.That(levers["Class weighting"].GetProperty("isDefault").GetBoolean(), Is.True);
        });
        using var loaded = ImageClassifier.Load(model);
        Assert.That(loaded.FeatureLayout, Is.EqualTo(PretrainedKit.Backbones.FeatureLayout.MultiStage));
        Assert.That(loaded.TestTimeAugmentation, Is.EqualTo(PretrainedKit.Models.TestTimeAugmentation.Mirror));

        var (plainCode, plain, _) = Run(null, "train", _data, "--model", model, "--augment", "Mirror", "--no-auto");
        Assert.That(plainCode, Is.EqualTo(0));
        Assert.That(plain, Does.Contain("Levers: Feature layout Pooled;").And.Contain("Augmentation Mirror (changed) (2 backbone views per training image)"));
        Assert.That(plain, Does.Not.Contain("Automatic lever choice"));
    }

    [Test]
    public void Train_ByDefault_ChoosesTheLeversNotGiven_AndListsEveryCandidate()
    {
        var model = Path.Combine(TestPaths.NewTempFolder("cli-auto"), "m.pkmodel");
        var (code, stdout, stderr) = Run(null, "train", _data, "--model", model, "--features", "MultiStage", "--json");
        Assert.That(code, Is.EqualTo(0), stderr);
        var search = JsonDocument.Parse(stdout).RootElement.GetProperty("leverSearch");
        var candidates = search.GetProperty("candidates").EnumerateArray().ToList();
        Assert.Multiple(() =>
        {
            Assert.That(candidates, Has.Count.EqualTo(24), "MultiStage kept: 2 augmentations x 6 heads x 2 prediction view sets");
            Assert.That(candidates.All(c => c.GetProperty("featureLayout").GetString() == "MultiStage"), Is.True);
            Assert.That(search.GetProperty("fixed").GetString(), Is.EqualTo("FeatureLayout"));
            Assert.That(search.GetProperty("chosen").GetProperty("description").GetString(), Does.StartWith("MultiStage"));
            Assert.That(search.GetProperty("reason").GetString(), Is.Not.Empty);
        });

        var (textCode, text, _) = Run(null, "train", _data, "--model", model, "--single-view");
        Assert.That(textCode, Is.EqualTo(0));
        Assert.That(text, Does.Contain("Automatic lever choice (").And.Contain("Why: ").And.Contain("24 candidates (held-out log-loss"));
        using var loaded = ImageClassifier.Load(model);
        Assert.That(loaded.TestTimeAugmentation, Is.EqualTo(PretrainedKit.Models.TestTimeAugmentation.None), "--single-view");
    }

    private static (int ExitCode, string Out, string Err) Run(string? console, params string[] args) =>
        CliProcess.Run(new Dictionary<string, string> { ["PRETRAINEDKIT_CONSOLE"] = console ?? "auto" }, args);
}
