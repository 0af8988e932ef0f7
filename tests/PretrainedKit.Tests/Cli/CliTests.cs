using System.Text.Json;

namespace PretrainedKit.Tests.Cli;

/// <summary>Runs the real CLI as a separate process, the way a user does.</summary>
[Category("Slow")]
public class CliTests
{
    private string _data = null!;
    private string _work = null!;

    [OneTimeSetUp]
    public void CreateData()
    {
        _data = SmallDataset.Create(6);
        _work = TestPaths.NewTempFolder("cli");
    }


    private static (int ExitCode, string Out, string Err) Run(params string[] args) => Run(null, args);

    private static (int ExitCode, string Out, string Err) Run(IDictionary<string, string>? environment, params string[] args) => CliProcess.Run(environment, args);

    [Test]
    public void Train_MissingFolder_ExitsWith2AndNoStackTrace()
    {
        var missing = Path.Combine(_work, "does-not-exist");
        var (code, _, err) = Run("train", missing, "--model", Path.Combine(_work, "x.pkmodel"));
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(err, Does.Contain(missing));
            Assert.That(err, Does.Not.Contain("   at "));
        });
    }

    [Test]
    public void Train_BadUsage_ExitsWith2()
    {
        var (code, _, err) = Run("train", _data);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--model"));
    }

    [Test]
    public void Train_PrecisionInt8_SavesAnInt8Model()
    {
        var model = Path.Combine(_work, "int8.pkmodel");
        var (code, _, err) = Run("train", _data, "--model", model, "--precision", "int8", "--validation-split", "0", "--no-auto", "--quiet");
        Assert.That(code, Is.EqualTo(0), err);
        using var loaded = ImageClassifierModel.Load(model);
        Assert.That(loaded.Precision, Is.EqualTo(PretrainedKit.Backbones.Precision.Int8));
    }

    [Test]
    public void Train_UnknownPrecision_ExitsWith2NamingTheOption()
    {
        var (code, _, err) = Run("train", _data, "--model", Path.Combine(_work, "int4.pkmodel"), "--precision", "int4");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(err, Does.Contain("--precision").Or.Contain("int4"));
        });
    }

    [Test]
    public void Predict_CorruptModel_ExitsWith2NamingTheFile()
    {
        var model = Path.Combine(_work, "corrupt.pkmodel");
        File.WriteAllText(model, "garbage");
        var (code, _, err) = Run("predict", model, _data);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain(model).And.Not.Contain("   at "));
    }

    [Test]
    public void Train_TwoProcessesSharingOneCache_LeaveOnlyWholeEntries()
    {
        var cacheDir = TestPaths.NewTempFolder("shared-cache");
        var environment = new Dictionary<string, string> { [PretrainedKit.Caching.FeatureCacheOptions.DirectoryEnvironmentVariable] = cacheDir };
        var data = SmallDataset.Create(6);
        var runs = Enumerable.Range(0, 2).Select(i => Task.Run(() => Run(environment, "train", data, "--model", Path.Combine(_work, $"shared-{i}.pkmodel"), "--quiet"))).ToArray();
        Task.WaitAll(runs);
        foreach (var run in runs)
        {
            Assert.That(run.Result.ExitCode, Is.EqualTo(0), run.Result.Err);
        }

        var cache = new PretrainedKit.Caching.FeatureCache(new PretrainedKit.Caching.FeatureCacheOptions { Directory = cacheDir }, isolated: true);
        Assert.That(cache.GetEntryCount(), Is.EqualTo(36), "one entry per image and view (automatic choice computes the original and the mirror view), whichever process wrote it");
        Assert.That(Directory.GetFiles(cacheDir, "*.tmp", SearchOption.AllDirectories), Is.Empty);
        var third = Run(environment, "featurize", data, "--json");
        Assert.That(third.ExitCode, Is.EqualTo(0), third.Err);
        var summary = System.Text.Json.JsonDocument.Parse(third.Out).RootElement;
        Assert.That(summary.GetProperty("cacheHits").GetInt32(), Is.EqualTo(36), "a third process reads every entry the two wrote");
        Assert.That(summary.GetProperty("viewsComputed").GetInt32(), Is.Zero);
    }

    [Test]
    public void TrainEvaluatePredict_WriteTheDocumentedOutputs()
    {
        var model = Path.Combine(_work, "colours.pkmodel");
        var metrics = Path.Combine(_work, "metrics.json");
        File.WriteAllText(Path.Combine(_data, "red", "readme.txt"), "not an image");
        using (var pattern = TestImages.Pattern(40, 40))
        {
            var png = TestImages.Png(pattern);
            File.WriteAllBytes(Path.Combine(_data, "red", "broken.png"), png[..(png.Length / 2)]);
        }


        var train = Run("train", _data, "--model", model, "--metrics", metrics, "--seed", "4", "--validation-split", "0.3");
        Assert.That(train.ExitCode, Is.EqualTo(0), train.Err);
        Assert.That(train.Out, Does.Contain("micro accuracy").And.Contain("broken.png"));

        using var doc = JsonDocument.Parse(File.ReadAllText(metrics));
        var root = doc.RootElement;
        foreach (var key in new[] { "microAccuracy", "macroAccuracy", "logLoss", "logLossReduction", "perClassLogLoss", "topKAccuracyForAllK", "trainingSet", "classes", "perClass", "confusionMatrix", "skipped", "ignoredFiles", "imagesUsed", "secondsByPhase" })
        {
            Assert.That(root.TryGetProperty(key, out _), Is.True, key);
        }

        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("classes").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(SmallDataset.Classes));
            Assert.That(root.GetProperty("topKAccuracyForAllK").GetArrayLength(), Is.EqualTo(3));
            Assert.That(root.GetProperty("perClassLogLoss").GetArrayLength(), Is.EqualTo(3));
            Assert.That(root.GetProperty("trainingSet").GetProperty("microAccuracy").GetDouble(), Is.InRange(0.0, 1.0));
            Assert.That(root.GetProperty("confusionMatrix").GetArrayLength(), Is.EqualTo(3));
            Assert.That(root.GetProperty("perClass")[0].GetProperty("label").GetString(), Is.EqualTo("blue"));
            Assert.That(root.GetProperty("perClass")[0].TryGetProperty("f1", out _), Is.True);
            Assert.That(root.GetProperty("skipped")[0].GetProperty("path").GetString(), Does.EndWith("broken.png"));
            Assert.That(root.GetProperty("skipped")[0].GetProperty("reason").GetString(), Is.EqualTo("Truncated"));
            Assert.That(root.GetProperty("ignoredFiles").GetInt32(), Is.EqualTo(1));
            Assert.That(root.GetProperty("imagesUsed").GetInt32(), Is.EqualTo(18));
            Assert.That(root.GetProperty("secondsByPhase").TryGetProperty("featurizing", out _), Is.True);
        });

        var evaluate = Run("evaluate", model, _data, "--metrics", Path.Combine(_work, "eval.json"));
        Assert.That(evaluate.ExitCode, Is.EqualTo(0), evaluate.Err);

        var image = Directory.GetFiles(Path.Combine(_data, "green"), "*.png").Order(StringComparer.Ordinal).First();
        var predict = Run("predict", model, image, "--top", "2", "--json");
        Assert.That(predict.ExitCode, Is.EqualTo(0), predict.Err);
        var lines = predict.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1));
        using var line = JsonDocument.Parse(lines[0]);
        Assert.That(line.RootElement.GetProperty("path").GetString(), Is.EqualTo(image));
        var predictions = line.RootElement.GetProperty("predictions");
        Assert.That(predictions.GetArrayLength(), Is.EqualTo(2));
        Assert.That(predictions[0].GetProperty("label").GetString(), Is.EqualTo("green"));
        Assert.That(predictions[0].GetProperty("probability").GetDouble(), Is.GreaterThan(predictions[1].GetProperty("probability").GetDouble()));

        var folder = Run("predict", model, Path.Combine(_data, "red"), "--json");
        Assert.That(folder.ExitCode, Is.EqualTo(2), "one bad image in the folder");
        Assert.That(folder.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(7), "six predictions and one error line");
        Assert.That(folder.Err, Does.Contain("broken.png"));
    }

    [Test]
    public void TrainAndEvaluate_OnCsvFiles_ReadTheListedImagesAndNameBadRows()
    {
        var data = SmallDataset.Create(6);
        var rows = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => $"\"{Path.GetRelativePath(data, f)}\",{Path.GetFileName(Path.GetDirectoryName(f))}").ToList();
        var train = Path.Combine(data, "train.csv");
        var test = Path.Combine(data, "test.csv");
        File.WriteAllLines(train, ["PATH,Label", .. rows.Where((_, i) => i % 2 == 0)]);
        File.WriteAllLines(test, ["path,label", .. rows.Where((_, i) => i % 2 == 1)]);
        var model = Path.Combine(_work, "csv.pkmodel");

        var trained = Run("train", train, "--model", model, "--validation-split", "0", "--test-dir", test, "--json");
        Assert.That(trained.ExitCode, Is.EqualTo(0), trained.Err);
        using (var doc = JsonDocument.Parse(trained.Out))
        {
            Assert.That(doc.RootElement.GetProperty("imagesUsed").GetInt32(), Is.EqualTo(9), "the nine training rows");
            Assert.That(doc.RootElement.GetProperty("metricsOn").GetString(), Is.EqualTo("test"));
        }

        var evaluated = Run("evaluate", model, test, "--json");
        Assert.That(evaluated.ExitCode, Is.EqualTo(0), evaluated.Err);
        using (var doc = JsonDocument.Parse(evaluated.Out))
        {
            Assert.That(doc.RootElement.GetProperty("imagesEvaluated").GetInt32(), Is.EqualTo(9), "the nine test rows");
        }

        var bad = Path.Combine(data, "bad.csv");
        File.WriteAllLines(bad, ["path,label", rows[0], "red/missing.png,red", rows[0]]);
        var refused = Run("evaluate", model, bad);
        Assert.That(refused.ExitCode, Is.EqualTo(2));
        Assert.That(refused.Err, Does.Contain("line 3").And.Contain("missing.png").And.Contain("line 4").And.Contain("already listed on line 2").And.Not.Contain("   at "));
    }
}
