using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Imaging;
using PretrainedKit.Interop;
using PretrainedKit.Featurization;
using PretrainedKit.Models;
using PretrainedKit.Training;
using SkiaSharp;

namespace PretrainedKit.Tests.Serialization;

/// <summary>
/// Pins what the library computes on the bundled Fashion-MNIST images: features (every layout and view), trained models
/// (head bytes, manifest, temperature, unknown threshold, validation metrics), predictions (single, batch, evaluation),
/// model files written by today's code (kept in <c>Fixtures/bit-identity</c>: they must keep loading and predicting the
/// same), and ONNX exports. A redesign of the core must keep every one of these bit-identical.
/// </summary>
/// <remarks>
/// <para>
/// The fixtures were captured with <see cref="Capture_CurrentCode_WritesFixtures"/> (explicit: run it with
/// <c>PK_CAPTURE_FIXTURES=1 dotnet test tests/PretrainedKit.Tests -c Release --filter "FullyQualifiedName~BitIdentityTests.Capture"</c>
/// only when a change of results is intended and reviewed).
/// </para>
/// <para>
/// Exactness depends on the CPU: ONNX Runtime (MLAS kernels) and .NET's vectorised maths (TensorPrimitives, ML.NET's
/// CpuMath) pick code paths by instruction set, and a different path may change the last bits. <c>machine.json</c>
/// records the instruction-set profile of the capturing machine. On a machine with the same profile every comparison is
/// exact (float bits, SHA-256 of the bytes); on another one the comparisons are relaxed to tight tolerances (see
/// <see cref="FeatureTolerance"/>, <see cref="ProbabilityTolerance"/>, <see cref="NumberTolerance"/>), hashes of float
/// data are skipped, and the test says so on its output.
/// </para>
/// <para>
/// Checked when the fixtures were captured (AMD EPYC, AVX2 without AVX-512, 2 cores): a second capture in a new process
/// and the comparison runs gave the same bits (no run-to-run non-determinism, automatic regularisation included: its
/// folds are seeded and each fit is single-threaded); with <c>DOTNET_PROCESSOR_COUNT=1</c> (one ONNX Runtime thread, no
/// throughput session, one-core Parallel.For in the kernel head) features, models and ONNX exports were bit-identical
/// too, so the thread count is not part of the profile. Save then Load, Predict, PredictBatch and Evaluate all give the
/// same bits for the same image. Forcing the relaxed mode (an edited machine.json) passed, and a probability moved by
/// 1e-3 failed it.
/// </para>
/// </remarks>
[Category("Slow")]
public class BitIdentityTests
{
    /// <summary>Relative tolerance per feature value (relative to the larger of the value and 1e-2 of the vector's largest magnitude) on a machine with another instruction-set profile.</summary>
    private const double FeatureTolerance = 1e-5;

    /// <summary>Absolute tolerance on probabilities on a machine with another instruction-set profile.</summary>
    private const double ProbabilityTolerance = 1e-5;

    /// <summary>Absolute tolerance on other numbers (metrics, temperature, thresholds) on a machine with another instruction-set profile.</summary>
    private const double NumberTolerance = 1e-4;

    /// <summary>One value in this many is kept of each layout/view feature vector (the whole vector is pinned by its SHA-256).</summary>
    private const int SampleStride = 8;

    private const string CaptureVariable = "PK_CAPTURE_FIXTURES";

    /// <summary>Images per class of assets/fashion-mnist/train that the scenarios other than "defaults" train on (ordinal first), to keep the run short; 12 leave 2 validation images per class, the 20 that calibration needs.</summary>
    private const int TrainPerClass = 12;

    /// <summary>Test images per class for PredictBatch and the loaded model files (Evaluate covers every test image).</summary>
    private const int BatchPerClass = 4;

    /// <summary>
    /// The training scenarios, all with seed 1 and the feature cache off: "defaults" trains on the whole of
    /// assets/fashion-mnist/train (FromFolder), the others on its first <see cref="TrainPerClass"/> images per class
    /// (FromImages).
    /// </summary>
    private static readonly Dictionary<string, Func<ImageClassifierBuilder, ImageClassifierBuilder>> Scenarios = new(StringComparer.Ordinal)
    {
        ["defaults"] = b => b,
        ["levers"] = b => b
            .WithNormalization(FeatureNormalization.L2ThenStandardize)
            .WithAugmentation(TrainingAugmentation.Mirror)
            .WithTestTimeAugmentation(TestTimeAugmentation.Mirror)
            .WithFeatureLayout(FeatureLayout.MultiStageGrid),
        ["autoregularization"] = b => b.WithAutoRegularization(),
        ["kernel"] = b => b.WithHead(HeadKind.Kernel),
        ["unknown"] = b => b.WithCalibration().WithUnknownPrecisionTarget(0.9),
    };

    /// <summary>The scenarios whose models export to ONNX (pooled features, no test-time augmentation).</summary>
    private static readonly string[] Exportable = ["defaults", "kernel"];

    /// <summary>The views of the training path, by the names the fixtures use.</summary>
    private static readonly string[] ViewNames = ["Original", "Mirror", "CropTopLeft", "CropTopRight", "CropBottomLeft", "CropBottomRight"];

    private readonly Dictionary<string, ImageClassifierModel> _models = new(StringComparer.Ordinal);
    private List<string> _testImages = null!;
    private List<string> _sample = null!;
    private List<string> _batch = null!;
    private Expected? _expected;
    private bool _exact;
    private string _profileNote = string.Empty;

    private static string FixtureFolder => Path.Combine(TestPaths.RepositoryRoot, "tests", "PretrainedKit.Tests", "Fixtures", "bit-identity");

    private static IEnumerable<string> ScenarioNames => Scenarios.Keys;

    [OneTimeSetUp]
    public async Task TrainModels()
    {
        // Every bundled test image, in a fixed order (ordinal on the path relative to the repository root).
        _testImages = Directory.EnumerateFiles(TestPaths.FashionTest, "*.png", SearchOption.AllDirectories)
            .OrderBy(Relative, StringComparer.Ordinal)
            .ToList();

        // Fewer images per class for the slower checks: views and single Predict (one per class), PredictBatch (four).
        _sample = FirstPerClass(_testImages, 1);
        _batch = FirstPerClass(_testImages, BatchPerClass);

        var trainSubset = FirstPerClass(Directory.EnumerateFiles(TestPaths.FashionTrain, "*.png", SearchOption.AllDirectories).OrderBy(Relative, StringComparer.Ordinal), TrainPerClass)
            .Select(p => new LabeledImage(p, Path.GetFileName(Path.GetDirectoryName(p)!)))
            .ToList();
        foreach (var (name, configure) in Scenarios)
        {
            var builder = ImageClassifier.Create();
            builder = name == "defaults" ? builder.FromFolder(TestPaths.FashionTrain) : builder.FromImages(trainSubset);
            // Automatic lever choice off: these scenarios are frozen against the fixtures of the version before it.
            _models[name] = await configure(builder.WithSeed(1).WithFeatureCache(FeatureCacheOptions.Disabled).WithAutomaticLevers(false)).TrainAsync();
        }

        if (File.Exists(Path.Combine(FixtureFolder, "expected.json")))
        {
            _expected = Expected.Load(FixtureFolder);
            var recorded = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureFolder, "machine.json")))!["profile"]!;
            var here = MachineProfile();
            _exact = JsonNode.DeepEquals(recorded, here);
            _profileNote = _exact
                ? "Same instruction-set profile as the capturing machine: exact (bit) comparisons."
                : $"RELAXED: this machine's instruction-set profile {here.ToJsonString()} differs from the capturing machine's {recorded.ToJsonString()}; " +
                  $"ONNX Runtime and .NET vectorised maths may differ in the last bits, so floats are compared within {FeatureTolerance} (features, relative), {ProbabilityTolerance} (probabilities) and {NumberTolerance} (other numbers), and hashes of float data are not compared.";
        }
    }

    [OneTimeTearDown]
    public void DisposeModels()
    {
        // The machine may be shared: CPU time says more about this class's cost than wall time.
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        TestContext.Progress.WriteLine($"BitIdentityTests: {process.TotalProcessorTime.TotalSeconds:F0} s of CPU time in this test process on {Environment.ProcessorCount} cores, {(DateTime.Now - process.StartTime).TotalSeconds:F0} s since it started.");

        foreach (var model in _models.Values)
        {
            model.Dispose();
        }
    }

    [Test]
    public void Features_PublicFeaturizerOnEveryTestImage_AreBitIdentical() => Check(ComputeFeaturizerFeatures());

    [Test]
    public async Task Features_TrainingPathLayoutsAndViews_AreBitIdentical() => Check(await ComputeLayoutAndViewFeatures());

    [TestCaseSource(nameof(ScenarioNames))]
    public void Train_Scenario_GivesBitIdenticalModel(string scenario) => Check(ComputeModel(scenario, Path.Combine(TestPaths.NewTempFolder("bit"), $"{scenario}.pkmodel")));

    [TestCaseSource(nameof(ScenarioNames))]
    public void Predict_Scenario_GivesBitIdenticalProbabilitiesAndMetrics(string scenario) => Check(ComputePredictions(scenario));

    [TestCaseSource(nameof(ScenarioNames))]
    public void Load_ModelFileSavedByTodaysCode_PredictsBitIdentically(string scenario) => Check(ComputeLoaded(Path.Combine(FixtureFolder, $"{scenario}.pkmodel"), scenario));

    [TestCaseSource(nameof(Exportable))]
    public void ExportOnnx_Scenario_GivesBitIdenticalGraphAndOutputs(string scenario) => Check(ComputeOnnx(scenario));

    /// <summary>Writes every fixture from the current code. Explicit, and only with PK_CAPTURE_FIXTURES=1: normal runs never rewrite fixtures.</summary>
    [Test]
    [Explicit("Rewrites the fixtures: run only when a change of results is intended.")]
    public async Task Capture_CurrentCode_WritesFixtures()
    {
        if (Environment.GetEnvironmentVariable(CaptureVariable) != "1")
        {
            Assert.Ignore($"Set {CaptureVariable}=1 to rewrite the fixtures.");
        }

        if (Directory.Exists(FixtureFolder))
        {
            Directory.Delete(FixtureFolder, recursive: true);
        }

        Directory.CreateDirectory(FixtureFolder);
        var all = new Part();
        all.Add(ComputeFeaturizerFeatures());
        all.Add(await ComputeLayoutAndViewFeatures());
        foreach (var scenario in ScenarioNames)
        {
            all.Add(ComputeModel(scenario, Path.Combine(FixtureFolder, $"{scenario}.pkmodel")));
            all.Add(ComputePredictions(scenario));
            all.Add(ComputeLoaded(Path.Combine(FixtureFolder, $"{scenario}.pkmodel"), scenario));
        }

        foreach (var scenario in Exportable)
        {
            all.Add(ComputeOnnx(scenario));
        }

        Expected.Write(FixtureFolder, all);
        var machine = new JsonObject
        {
            ["comment"] = "The machine that captured these fixtures. 'profile' decides whether comparisons are exact (same profile) or within tolerances; the rest is for information.",
            ["profile"] = MachineProfile(),
            ["processorCount"] = Environment.ProcessorCount,
            ["cpu"] = CpuModel(),
            ["os"] = RuntimeInformation.OSDescription,
            ["runtime"] = RuntimeInformation.FrameworkDescription,
            ["capturedFrom"] = "PretrainedKit commit e4afa54 (before the core redesign)",
        };
        File.WriteAllText(Path.Combine(FixtureFolder, "machine.json"), machine.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

        // Predict and PredictBatch (trained model and saved file loaded again) must already give Evaluate's bits, row for row.
        _expected = Expected.Load(FixtureFolder);
        _exact = true;
        Assert.That(all.Rows, Is.Not.Empty);
        var rows = new Part();
        foreach (var (name, value) in all.Rows)
        {
            rows.Rows[name] = value;
        }

        Check(rows);
    }

    // ---------------------------------------------------------------- what is computed

    /// <summary>The public <see cref="ImageFeaturizer"/> (Pooled, the single-image latency session) on every test image.</summary>
    private Part ComputeFeaturizerFeatures()
    {
        var part = new Part();
        using var featurizer = ImageFeaturizer.Open();
        var features = _testImages.SelectMany(p => featurizer.GetFeatures(p)).ToArray();
        part.Texts["featurizer.images"] = new JsonArray(_testImages.Select(p => (JsonNode)Relative(p)).ToArray());
        part.AddArray("features.featurizer.pooled", features, ArrayKind.Features, featurizer.FeatureSize);
        return part;
    }

    /// <summary>The training path's features (the throughput session) for every layout and view, on two images per class.</summary>
    private async Task<Part> ComputeLayoutAndViewFeatures()
    {
        var part = new Part();
        part.Texts["views.images"] = new JsonArray(_sample.Select(p => (JsonNode)Relative(p)).ToArray());
        foreach (var layout in new[] { FeatureLayout.Pooled, FeatureLayout.MultiStage, FeatureLayout.MultiStageGrid })
        {
            var views = await TrainingPathFeatures(layout, _sample, ViewNames);
            for (var v = 0; v < ViewNames.Length; v++)
            {
                var name = $"features.{layout}.{ViewNames[v]}";
                var vectors = views.Select(perView => perView[v]).ToList();
                part.Hashes[$"{name}.sha256"] = new JsonArray(vectors.Select(f => (JsonNode)Sha256(f)).ToArray());
                part.AddArray($"{name}.sampled", vectors.SelectMany(f => f.Where((_, i) => i % SampleStride == 0)).ToArray(), ArrayKind.Features, (vectors[0].Length + SampleStride - 1) / SampleStride);
                part.Numbers[$"{name}.length"] = vectors[0].Length;
            }
        }

        return part;
    }

    /// <summary>A trained model: its saved head bytes and manifest, temperature, threshold and training report.</summary>
    private Part ComputeModel(string scenario, string savePath)
    {
        var model = _models[scenario];
        model.Save(savePath);
        var part = new Part();
        var prefix = $"model.{scenario}";
        using (var zip = ZipFile.OpenRead(savePath))
        {
            Assert.That(zip.Entries.Select(e => e.FullName).Order(StringComparer.Ordinal), Is.EqualTo(new[] { "head.bin", "manifest.json" }), "the model file's entries");
            using (var head = zip.GetEntry("head.bin")!.Open())
            {
                part.Hashes[$"{prefix}.headBin.sha256"] = Convert.ToHexString(SHA256.HashData(head)).ToLowerInvariant();
            }

            using var reader = new StreamReader(zip.GetEntry("manifest.json")!.Open());
            var manifest = JsonNode.Parse(reader.ReadToEnd())!.AsObject();

            // Volatile: when and by which build the file was written.
            manifest.Remove("createdUtc");
            manifest.Remove("libraryVersion");

            // Derived from float data: compared on their own (exact only on the same instruction-set profile).
            part.Hashes[$"{prefix}.manifest.headSha256"] = manifest["head"]!["sha256"]!.GetValue<string>();
            manifest["head"]!.AsObject().Remove("sha256");
            part.Numbers[$"{prefix}.manifest.temperature"] = manifest["temperature"]!.GetValue<double>();
            manifest.Remove("temperature");
            if (manifest["unknownThreshold"] is { } threshold)
            {
                part.Numbers[$"{prefix}.manifest.unknownThreshold"] = threshold.GetValue<double>();
                manifest.Remove("unknownThreshold");
            }

            part.Texts[$"{prefix}.manifest"] = manifest;
        }

        part.Numbers[$"{prefix}.temperature"] = model.Temperature;
        part.Texts[$"{prefix}.hasUnknownThreshold"] = model.UnknownThreshold is not null;
        if (model.UnknownThreshold is { } t)
        {
            part.Numbers[$"{prefix}.unknownThreshold"] = t;
        }

        var report = model.TrainingReport!;
        part.Texts[$"{prefix}.classes"] = new JsonArray(model.Classes.Select(c => (JsonNode)c).ToArray());
        part.Texts[$"{prefix}.counts"] = new JsonArray(report.Counts.Select(c => (JsonNode)$"{c.Label}:{c.Training}/{c.Validation}").ToArray());
        part.Texts[$"{prefix}.levers"] = new JsonArray(report.Levers.Select(l => (JsonNode)$"{l.Name}={l.Setting}").ToArray());
        AddMetrics(part, $"{prefix}.validation", report.ValidationMetrics!);
        if (report.Calibration is { } calibration)
        {
            part.Texts[$"{prefix}.calibration.calibrated"] = calibration.Calibrated;
            AddOptional(part, $"{prefix}.calibration.temperature", calibration.Temperature);
            AddOptional(part, $"{prefix}.calibration.logLossBefore", calibration.LogLossBefore);
            AddOptional(part, $"{prefix}.calibration.logLossAfter", calibration.LogLossAfter);
            AddOptional(part, $"{prefix}.calibration.validationPrecision", calibration.ValidationPrecision);
            AddOptional(part, $"{prefix}.calibration.validationCoverage", calibration.ValidationCoverage);
            AddOptional(part, $"{prefix}.calibration.unknownThreshold", calibration.UnknownThreshold);
        }

        if (report.Regularization is { } search)
        {
            part.Numbers[$"{prefix}.regularization.chosenL2"] = search.ChosenL2;
            AddOptional(part, $"{prefix}.regularization.bestL2", search.BestL2);
            part.Texts[$"{prefix}.regularization.skippedBecause"] = search.SkippedBecause;
            part.Texts[$"{prefix}.regularization.candidates"] = new JsonArray(search.Candidates.Select(c => (JsonNode)c.L2).ToArray());
            for (var i = 0; i < search.Candidates.Count; i++)
            {
                part.Numbers[$"{prefix}.regularization.meanLogLoss[{i}]"] = search.Candidates[i].MeanLogLoss;
                part.Numbers[$"{prefix}.regularization.standardError[{i}]"] = search.Candidates[i].StandardError;
            }
        }

        return part;
    }

    /// <summary>
    /// Evaluate (the whole test folder: metrics and every image's probabilities), Predict (one image per class) and
    /// PredictBatch (<see cref="BatchPerClass"/> per class); the last two are compared with Evaluate's rows of the same images.
    /// </summary>
    private Part ComputePredictions(string scenario)
    {
        var model = _models[scenario];
        var part = new Part();
        var k = model.Classes.Count;
        var evaluation = model.Evaluate(TestPaths.FashionTest);
        AddMetrics(part, $"evaluate.{scenario}", evaluation.Metrics);
        AddOptional(part, $"evaluate.{scenario}.unknownThreshold", evaluation.UnknownThreshold);
        AddOptional(part, $"evaluate.{scenario}.coverage", evaluation.Coverage);
        AddOptional(part, $"evaluate.{scenario}.acceptedPrecision", evaluation.AcceptedPrecision);
        var byPath = evaluation.Images.ToDictionary(i => Path.GetFullPath(i.Path), StringComparer.Ordinal);
        Assert.That(byPath.Keys.Order(StringComparer.Ordinal), Is.EqualTo(_testImages.Select(Path.GetFullPath).Order(StringComparer.Ordinal)), "Evaluate covers every test image");
        part.AddArray($"probabilities.{scenario}", _testImages.SelectMany(p => byPath[Path.GetFullPath(p)].Probabilities).ToArray(), ArrayKind.Probabilities, k);

        part.Rows[$"Predict({scenario})"] = new RowsValue($"probabilities.{scenario}", _sample, _sample.SelectMany(p => model.Predict(p).Probabilities).ToArray());
        var batch = model.PredictBatch(_batch).Predictions();
        part.Rows[$"PredictBatch({scenario})"] = new RowsValue($"probabilities.{scenario}", _batch, batch.SelectMany(p => p.Probabilities).ToArray());
        part.Texts[$"predict.{scenario}.batchUnknown"] = new JsonArray(batch.Select(p => (JsonNode)p.IsUnknown).ToArray());
        return part;
    }

    /// <summary>A model file loaded from disk: PredictBatch must give the trained model's probabilities (every test image for "defaults", <see cref="BatchPerClass"/> per class for the others).</summary>
    private Part ComputeLoaded(string path, string scenario)
    {
        using var model = ImageClassifierModel.Load(path);
        var part = new Part();
        var images = scenario == "defaults" ? _testImages : _batch;
        part.Rows[$"Load({scenario}).PredictBatch"] = new RowsValue($"probabilities.{scenario}", images, model.PredictBatch(images).Predictions().SelectMany(p => p.Probabilities).ToArray());
        part.Numbers[$"model.{scenario}.temperature"] = model.Temperature;
        if (model.UnknownThreshold is { } t)
        {
            part.Numbers[$"model.{scenario}.unknownThreshold"] = t;
        }

        return part;
    }

    /// <summary>
    /// The exported ONNX file: SHA-256 of its bytes without the build's version, and its outputs on five test images.
    /// </summary>
    /// <remarks>
    /// OnnxExporter writes the library's informational version (which carries the git commit) into
    /// <c>ModelProto.producer_version</c> and the <c>metadata_props</c> entry <c>pretrainedkit.version</c>; nothing else
    /// in the file depends on the build or the time. The hash covers every top-level field of the file's protobuf except
    /// those two, byte for byte as written. The five images are decoded by SkiaSharp and enlarged 8x by pixel
    /// replication to 224 x 224 here (not by the library's decoder, so the check pins the exported graph on its own):
    /// float32 [5,3,224,224], planar RGB, 0-255, as the export's metadata says.
    /// </remarks>
    private Part ComputeOnnx(string scenario)
    {
        var model = _models[scenario];
        var path = Path.Combine(TestPaths.NewTempFolder("bit-onnx"), $"{scenario}.onnx");
        model.ExportOnnx(path);
        var part = new Part();
        var (hash, dropped) = OnnxHashWithoutVersion(File.ReadAllBytes(path));
        part.Hashes[$"onnx.{scenario}.sha256WithoutVersion"] = hash;
        part.Texts[$"onnx.{scenario}.droppedVersionFields"] = dropped;

        var images = _sample.Where((_, i) => i % 2 == 0).ToList();
        part.Texts[$"onnx.{scenario}.images"] = new JsonArray(images.Select(p => (JsonNode)Relative(p)).ToArray());
        using var session = new InferenceSession(path);
        var tensor = images.SelectMany(ReplicatedRgbPlanes).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(tensor, [images.Count, 3, 224, 224]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["image"], [input], ["probabilities"]);
        part.AddArray($"onnx.{scenario}.probabilities", outputs[0].GetTensorDataAsSpan<float>().ToArray(), ArrayKind.Probabilities, model.Classes.Count);
        return part;
    }

    /// <summary>
    /// THE ONE INTERNAL CALL: features of several views of each image through the training path (the featurisation
    /// layer's many-image pass, as TrainingRun runs it; before the redesign, FeaturePipeline on a BackboneSession opened
    /// for featurising). No public API computes MultiStage/MultiStageGrid
    /// features or views of one image; after a redesign, re-point this method at whatever replaces them.
    /// </summary>
    /// <returns>Per image, per view (in <paramref name="viewNames"/> order), the feature vector.</returns>
    private static async Task<float[][][]> TrainingPathFeatures(FeatureLayout layout, IReadOnlyList<string> paths, IReadOnlyList<string> viewNames)
    {
        var views = viewNames.Select(Enum.Parse<ImageView>).ToList();
        using var extractor = new FeatureExtractor(BackboneRuntime.Open(KnownBackbones.ResNet18, layout, null), ImagePreprocessingOptions.Default);
        var result = await extractor.ExtractAsync(paths.Select(ImageInput.FromFile).ToList(), _ => views, null, CancellationToken.None);
        Assert.That(result.Errors, Is.Empty);
        return result.Views.Select(v => v!).ToArray();
    }

    // ---------------------------------------------------------------- comparison

    /// <summary>Compares everything computed with the fixtures: exactly on the capturing machine's profile, within tolerances elsewhere.</summary>
    private void Check(Part actual)
    {
        if (_expected is null)
        {
            Assert.Fail($"No fixtures in {FixtureFolder}: capture them with {CaptureVariable}=1 and the explicit test {nameof(Capture_CurrentCode_WritesFixtures)}.");
            return;
        }

        TestContext.Out.WriteLine(_profileNote);
        var expected = _expected;
        Assert.Multiple(() =>
        {
            var texts = expected.Facts["texts"]!.AsObject();
            foreach (var (name, value) in actual.Texts)
            {
                Assert.That(texts.ContainsKey(name), Is.True, $"{name} is in the fixtures");
                Assert.That(JsonNode.DeepEquals(texts[name], value), Is.True, $"{name}: expected {texts[name]?.ToJsonString()}, got {value?.ToJsonString()}");
            }

            foreach (var (name, value) in actual.Hashes)
            {
                var recorded = expected.Facts["hashes"]![name];
                Assert.That(recorded, Is.Not.Null, $"{name} is in the fixtures");
                if (_exact)
                {
                    Assert.That(value.ToJsonString(), Is.EqualTo(recorded?.ToJsonString()), name);
                }
            }

            foreach (var (name, value) in actual.Numbers)
            {
                var recorded = expected.Facts["numbers"]![name];
                Assert.That(recorded, Is.Not.Null, $"{name} is in the fixtures");
                if (recorded is null)
                {
                    continue;
                }

                var want = recorded.GetValue<double>();
                if (_exact)
                {
                    Assert.That(BitConverter.DoubleToInt64Bits(value), Is.EqualTo(BitConverter.DoubleToInt64Bits(want)), $"{name}: expected {want:R}, got {value:R}");
                }
                else
                {
                    Assert.That(value, Is.EqualTo(want).Within(NumberTolerance), name);
                }
            }

            foreach (var (name, array) in actual.Arrays)
            {
                var recorded = expected.LoadArray(name);
                Assert.That(recorded, Is.Not.Null, $"{name} is in the fixtures");
                if (recorded is not null)
                {
                    CompareArray(name, recorded, array);
                }
            }

            // Rows of an array indexed by test image (the order of _testImages, which the fixtures record as featurizer.images).
            Assert.That(JsonNode.DeepEquals(texts["featurizer.images"], new JsonArray(_testImages.Select(p => (JsonNode)Relative(p)).ToArray())), Is.True, "the bundled test images are the ones the fixtures were made from");
            foreach (var (name, rows) in actual.Rows)
            {
                var recorded = expected.LoadArray(rows.Fixture);
                Assert.That(recorded, Is.Not.Null, $"{rows.Fixture} is in the fixtures");
                if (recorded is not null)
                {
                    var width = recorded.Length / _testImages.Count;
                    var wanted = rows.Images.SelectMany(p => recorded.AsSpan(_testImages.IndexOf(p) * width, width).ToArray()).ToArray();
                    CompareArray($"{name} against {rows.Fixture}", wanted, new ArrayValue(rows.Values, ArrayKind.Probabilities, width));
                }
            }
        });
    }

    private void CompareArray(string name, float[] expected, ArrayValue actual)
    {
        Assert.That(actual.Values, Has.Length.EqualTo(expected.Length), $"{name}: length");
        if (actual.Values.Length != expected.Length)
        {
            return;
        }

        var bad = new List<int>();
        for (var row = 0; row < expected.Length / actual.Width; row++)
        {
            var span = expected.AsSpan(row * actual.Width, actual.Width);
            var scale = 0f;
            foreach (var x in span)
            {
                scale = Math.Max(scale, Math.Abs(x));
            }

            for (var i = row * actual.Width; i < (row + 1) * actual.Width; i++)
            {
                var (e, a) = (expected[i], actual.Values[i]);
                var same = _exact
                    ? BitConverter.SingleToInt32Bits(e) == BitConverter.SingleToInt32Bits(a)
                    : actual.Kind switch
                    {
                        ArrayKind.Features => Math.Abs((double)e - a) <= FeatureTolerance * Math.Max(Math.Abs(e), 1e-2 * scale),
                        ArrayKind.Probabilities => Math.Abs((double)e - a) <= ProbabilityTolerance,
                        _ => Math.Abs((double)e - a) <= NumberTolerance,
                    };
                if (!same)
                {
                    bad.Add(i);
                }
            }
        }

        var detail = bad.Count == 0
            ? string.Empty
            : $"{bad.Count} of {expected.Length} values differ ({(_exact ? "exact bits" : $"{actual.Kind} tolerance")}); first at [{bad[0] / actual.Width}][{bad[0] % actual.Width}]: expected {expected[bad[0]]:R}, got {actual.Values[bad[0]]:R}";
        Assert.That(bad, Is.Empty, $"{name}: {detail}");
    }

    // ---------------------------------------------------------------- helpers

    private static void AddMetrics(Part part, string prefix, ClassificationMetrics metrics)
    {
        part.Numbers[$"{prefix}.microAccuracy"] = metrics.MicroAccuracy;
        part.Numbers[$"{prefix}.macroAccuracy"] = metrics.MacroAccuracy;
        part.Numbers[$"{prefix}.logLoss"] = metrics.LogLoss;
        part.Texts[$"{prefix}.count"] = metrics.Count;
        part.Texts[$"{prefix}.topKAccuracy"] = new JsonArray(metrics.TopKAccuracyForAllK.Select(a => (JsonNode)a).ToArray());
        part.Texts[$"{prefix}.confusionMatrix"] = new JsonArray(metrics.ConfusionMatrix.Select(r => (JsonNode)new JsonArray(r.Select(c => (JsonNode)c).ToArray())).ToArray());
    }

    private static void AddOptional(Part part, string name, double? value)
    {
        part.Texts[$"{name}.present"] = value is not null;
        if (value is { } v)
        {
            part.Numbers[name] = v;
        }
    }

    private static List<string> FirstPerClass(IEnumerable<string> ordered, int perClass) =>
        ordered.GroupBy(p => Path.GetFileName(Path.GetDirectoryName(p)!)).SelectMany(g => g.Take(perClass)).ToList();

    private static string Relative(string path) => Path.GetRelativePath(TestPaths.RepositoryRoot, path).Replace('\\', '/');

    private static string Sha256(float[] values) => Convert.ToHexString(SHA256.HashData(MemoryMarshal.AsBytes(values.AsSpan()))).ToLowerInvariant();

    /// <summary>The instruction sets that decide which code paths ONNX Runtime and .NET take; machines with equal profiles must give equal bits.</summary>
    private static JsonObject MachineProfile() => new()
    {
        ["architecture"] = RuntimeInformation.ProcessArchitecture.ToString(),
        ["avx2"] = Avx2.IsSupported,
        ["fma"] = Fma.IsSupported,
        ["avxVnni"] = AvxVnni.IsSupported,
        ["avx512f"] = Avx512F.IsSupported,
        ["avx512bw"] = Avx512BW.IsSupported,
        ["avx512dq"] = Avx512DQ.IsSupported,
        ["avx512vl"] = Avx512F.VL.IsSupported,
        ["avx512vbmi"] = Avx512Vbmi.IsSupported,
        ["vector512"] = Vector512.IsHardwareAccelerated,
        ["vector256"] = Vector256.IsHardwareAccelerated,

        // What the CPU itself reports (ONNX Runtime asks the CPU, not .NET, so DOTNET_EnableAVX512F=0 does not change its path).
        ["cpuFlags"] = new JsonArray(CpuFlags().Select(f => (JsonNode)f).ToArray()),
    };

    private static readonly string[] RelevantCpuFlags = ["avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"];

    private static IEnumerable<string> CpuFlags()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!File.Exists(cpuinfo))
        {
            return [];
        }

        var line = File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal));
        var flags = line?[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal) ?? [];
        return RelevantCpuFlags.Where(flags.Contains);
    }

    private static string CpuModel()
    {
        const string cpuinfo = "/proc/cpuinfo";
        var line = File.Exists(cpuinfo) ? File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) : null;
        return line?[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim() ?? RuntimeInformation.OSArchitecture.ToString();
    }

    /// <summary>Decodes an image with SkiaSharp and enlarges it to 224 x 224 by pixel replication (exact: integer arithmetic only), as planar RGB floats 0-255.</summary>
    private static float[] ReplicatedRgbPlanes(string path)
    {
        const int size = 224;
        using var bitmap = SKBitmap.Decode(path) ?? throw new InvalidOperationException($"SkiaSharp cannot decode {path}");
        var tensor = new float[3 * size * size];
        for (var y = 0; y < size; y++)
        {
            for (var x = 0; x < size; x++)
            {
                var pixel = bitmap.GetPixel(x * bitmap.Width / size, y * bitmap.Height / size);
                var p = (y * size) + x;
                tensor[p] = pixel.Red;
                tensor[(size * size) + p] = pixel.Green;
                tensor[(2 * size * size) + p] = pixel.Blue;
            }
        }

        return tensor;
    }

    /// <summary>
    /// SHA-256 of an ONNX file's top-level protobuf fields, leaving out producer_version (field 3) and the metadata_props
    /// entry (field 14) whose key is pretrainedkit.version. Returns how many fields were left out.
    /// </summary>
    private static (string Hash, int Dropped) OnnxHashWithoutVersion(byte[] bytes)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var dropped = 0;
        var position = 0;
        while (position < bytes.Length)
        {
            var start = position;
            var tag = ReadVarint(bytes, ref position);
            var field = (int)(tag >> 3);
            var payloadStart = position;
            switch ((int)(tag & 7))
            {
                case 0:
                    ReadVarint(bytes, ref position);
                    break;
                case 1:
                    position += 8;
                    break;
                case 2:
                    var length = (int)ReadVarint(bytes, ref position);
                    payloadStart = position;
                    position += length;
                    break;
                case 5:
                    position += 4;
                    break;
                default:
                    throw new InvalidDataException($"Unexpected protobuf wire type {tag & 7} at byte {start}.");
            }

            var payload = bytes.AsSpan(payloadStart, position - payloadStart);
            var isVersion = field == 3 || (field == 14 && MetadataKey(payload) == "pretrainedkit.version");
            if (isVersion)
            {
                dropped++;
            }
            else
            {
                hash.AppendData(bytes.AsSpan(start, position - start));
            }
        }

        return (Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant(), dropped);
    }

    /// <summary>The key (field 1) of a StringStringEntryProto.</summary>
    private static string? MetadataKey(ReadOnlySpan<byte> entry)
    {
        var copy = entry.ToArray();
        var position = 0;
        while (position < copy.Length)
        {
            var tag = ReadVarint(copy, ref position);
            if ((tag & 7) != 2)
            {
                return null;
            }

            var length = (int)ReadVarint(copy, ref position);
            if (tag >> 3 == 1)
            {
                return Encoding.UTF8.GetString(copy, position, length);
            }

            position += length;
        }

        return null;
    }

    private static ulong ReadVarint(byte[] bytes, ref int position)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = bytes[position++];
            value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }
    }

    private enum ArrayKind
    {
        Features,
        Probabilities,
        Numbers,
    }

    /// <summary>A float array and how to compare it: rows of <paramref name="Width"/> values.</summary>
    private sealed record ArrayValue(float[] Values, ArrayKind Kind, int Width);

    /// <summary>Probabilities for some test images, to compare with those images' rows of the stored array <paramref name="Fixture"/>.</summary>
    private sealed record RowsValue(string Fixture, List<string> Images, float[] Values);

    /// <summary>Named results of one check.</summary>
    private sealed class Part
    {
        /// <summary>Compared exactly everywhere (structure, counts, names).</summary>
        public Dictionary<string, JsonNode?> Texts { get; } = new(StringComparer.Ordinal);

        /// <summary>Hashes of float data: compared only on the capturing machine's instruction-set profile.</summary>
        public Dictionary<string, JsonNode> Hashes { get; } = new(StringComparer.Ordinal);

        /// <summary>Doubles: exact bits on the same profile, within <see cref="NumberTolerance"/> elsewhere.</summary>
        public Dictionary<string, double> Numbers { get; } = new(StringComparer.Ordinal);

        /// <summary>Float arrays, stored as little-endian float32 .bin files.</summary>
        public Dictionary<string, ArrayValue> Arrays { get; } = new(StringComparer.Ordinal);

        /// <summary>Rows that must equal the rows of a stored array for the same test images (not stored themselves).</summary>
        public Dictionary<string, RowsValue> Rows { get; } = new(StringComparer.Ordinal);

        public void AddArray(string name, float[] values, ArrayKind kind, int width) => Arrays[name] = new ArrayValue(values, kind, width);

        public void Add(Part other)
        {
            foreach (var (k, v) in other.Texts)
            {
                Texts[k] = v?.DeepClone();
            }

            foreach (var (k, v) in other.Hashes)
            {
                Hashes[k] = v.DeepClone();
            }

            foreach (var (k, v) in other.Numbers)
            {
                Numbers[k] = v;
            }

            foreach (var (k, v) in other.Arrays)
            {
                Arrays[k] = v;
            }

            foreach (var (k, v) in other.Rows)
            {
                Rows[k] = v;
            }
        }
    }

    /// <summary>The fixtures: expected.json (texts, hashes, numbers, and the index of the .bin arrays) and the arrays.</summary>
    private sealed class Expected
    {
        private readonly string _folder;

        private Expected(string folder, JsonObject facts)
        {
            _folder = folder;
            Facts = facts;
        }

        public JsonObject Facts { get; }

        public static Expected Load(string folder) => new(folder, JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "expected.json")))!.AsObject());

        public static void Write(string folder, Part all)
        {
            var arrays = new JsonObject();
            foreach (var (name, array) in all.Arrays.OrderBy(a => a.Key, StringComparer.Ordinal))
            {
                var file = $"{name}.bin";
                var bytes = new byte[array.Values.Length * 4];
                for (var i = 0; i < array.Values.Length; i++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), array.Values[i]);
                }

                File.WriteAllBytes(Path.Combine(folder, file), bytes);
                arrays[name] = new JsonObject { ["file"] = file, ["length"] = array.Values.Length, ["width"] = array.Width, ["kind"] = array.Kind.ToString() };
            }

            var facts = new JsonObject
            {
                ["comment"] = "Written by BitIdentityTests.Capture_CurrentCode_WritesFixtures (PK_CAPTURE_FIXTURES=1). Numbers are doubles in round-trip form; arrays are little-endian float32 files.",
                ["texts"] = Sorted(all.Texts),
                ["hashes"] = Sorted(all.Hashes),
                ["numbers"] = Sorted(all.Numbers.ToDictionary(n => n.Key, n => (JsonNode?)JsonValue.Create(n.Value), StringComparer.Ordinal)),
                ["arrays"] = arrays,
            };
            File.WriteAllText(Path.Combine(folder, "expected.json"), facts.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }

        public float[]? LoadArray(string name)
        {
            if (Facts["arrays"]![name] is not { } entry)
            {
                return null;
            }

            var bytes = File.ReadAllBytes(Path.Combine(_folder, entry["file"]!.GetValue<string>()));
            var values = new float[bytes.Length / 4];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
            }

            return values;
        }

        private static JsonObject Sorted<T>(IReadOnlyDictionary<string, T> values)
            where T : JsonNode?
        {
            var result = new JsonObject();
            foreach (var (k, v) in values.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                result[k] = v?.DeepClone();
            }

            return result;
        }
    }
}
