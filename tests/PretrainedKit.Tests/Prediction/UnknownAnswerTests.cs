using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Tests.Onnx;

namespace PretrainedKit.Tests.Prediction;

/// <summary>
/// One model trained on the bundled Fashion-MNIST subset with a precision target: calibrated on its 40 validation
/// images, with an "unknown" threshold, checked through Predict, Evaluate, Save/Load and the ONNX export.
/// </summary>
[Category("Slow")]
public class UnknownAnswerTests
{
    private const double Target = 0.9;
    private ImageClassifierModel _model = null!;
    private List<string> _testImages = null!;
    private string _folder = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        _model = await ImageClassifier.Create().FromFolder(TestPaths.FashionTrain).WithSeed(1).WithUnknownPrecisionTarget(Target).TrainAsync();
        _testImages = Directory.EnumerateFiles(TestPaths.FashionTest, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        _folder = TestPaths.NewTempFolder("unknown");
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _model.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void Train_WithTarget_ReportsTemperatureErrorsAndThresholdOnTheValidationImages()
    {
        var report = _model.TrainingReport!;
        var c = report.Calibration!;
        Assert.Multiple(() =>
        {
            Assert.That(c.ValidationImages, Is.EqualTo(report.Counts.Sum(x => x.Validation)).And.EqualTo(40));
            Assert.That(c.Calibrated, Is.True, c.CalibrationSkippedReason);
            Assert.That(c.Temperature, Is.Not.EqualTo(1).And.EqualTo(_model.Temperature));
            Assert.That(c.LogLossAfter, Is.LessThan(c.LogLossBefore!.Value), "the fitted temperature lowers the validation log-loss");
            Assert.That(report.ValidationMetrics!.LogLoss, Is.EqualTo(c.LogLossAfter!.Value).Within(1e-4), "validation metrics use the calibrated probabilities");
            Assert.That(c.ExpectedCalibrationErrorBefore, Is.Not.Null);
            Assert.That(c.ExpectedCalibrationErrorAfter, Is.Not.Null);
            Assert.That(c.UnknownPrecisionTarget, Is.EqualTo(Target));
            Assert.That(c.UnknownThreshold, Is.Not.Null.And.EqualTo(_model.UnknownThreshold));
            Assert.That(c.TargetReached, Is.EqualTo(c.ValidationPrecision >= Target));
            Assert.That(c.ValidationCoverage, Is.GreaterThan(0).And.LessThanOrEqualTo(1));
            Assert.That(report.Warnings, Has.Some.Contains("chosen on only 40 validation images"), "a threshold chosen on few images is flagged as noisy");
        });
    }

    [Test]
    public void Predict_WithThreshold_IsUnknownExactlyWhenTheTopProbabilityIsBelowIt()
    {
        var threshold = _model.UnknownThreshold!.Value;
        var predictions = _model.PredictBatch(_testImages, topK: 1).Predictions();
        var single = _model.Predict(_testImages[0], topK: 1);
        Assert.Multiple(() =>
        {
            foreach (var p in predictions)
            {
                Assert.That(p.UnknownThreshold, Is.EqualTo(threshold));
                Assert.That(p.IsUnknown, Is.EqualTo(p.Probability < threshold), p.Path);
            }

            Assert.That(predictions.Count(p => p.IsUnknown), Is.GreaterThan(0).And.LessThan(predictions.Count), "some test images are unknown, not all");
            Assert.That(single.IsUnknown, Is.EqualTo(predictions[0].IsUnknown));
            Assert.That(single.Probabilities, Is.EqualTo(predictions[0].Probabilities));
        });

        var answered = predictions.Where(p => !p.IsUnknown).ToList();
        var precision = answered.Average(p => p.Label == Path.GetFileName(Path.GetDirectoryName(p.Path)) ? 1.0 : 0.0);
        var accuracy = predictions.Average(p => p.Label == Path.GetFileName(Path.GetDirectoryName(p.Path)) ? 1.0 : 0.0);
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"T {_model.Temperature:0.###}, threshold {threshold:0.###}: {answered.Count}/{predictions.Count} answered, precision {precision:P1} (accuracy of all {accuracy:P1})"));
        Assert.That(precision, Is.GreaterThan(accuracy), "refusing the unsure images makes the answered ones more often right");
    }

    [Test]
    public async Task Evaluate_WithThreshold_ReportsCoverageAndPrecisionOfTheAnswered()
    {
        var evaluation = await _model.EvaluateAsync(TestPaths.FashionTest);
        var answered = evaluation.Images.Where(i => i.PredictedProbability >= _model.UnknownThreshold!.Value).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(evaluation.UnknownThreshold, Is.EqualTo(_model.UnknownThreshold));
            Assert.That(evaluation.Coverage, Is.EqualTo((double)answered.Count / 200).Within(1e-12));
            Assert.That(evaluation.AcceptedPrecision, Is.EqualTo(answered.Average(i => i.IsCorrect ? 1.0 : 0.0)).Within(1e-12));
            Assert.That(evaluation.Coverage, Is.LessThan(1));
        });
    }

    [Test]
    public void SaveLoad_KeepsTemperatureAndThreshold()
    {
        var path = Path.Combine(_folder, "fashion.pkmodel");
        _model.Save(path);
        using var loaded = ImageClassifierModel.Load(path);
        var images = _testImages.Where((_, i) => i % 20 == 0).ToList();
        var before = _model.PredictBatch(images).Predictions();
        var after = loaded.PredictBatch(images).Predictions();
        Assert.Multiple(() =>
        {
            Assert.That(loaded.Temperature, Is.EqualTo(_model.Temperature));
            Assert.That(loaded.UnknownThreshold, Is.EqualTo(_model.UnknownThreshold));
            for (var i = 0; i < images.Count; i++)
            {
                Assert.That(after[i].Probabilities, Is.EqualTo(before[i].Probabilities), images[i]);
                Assert.That(after[i].IsUnknown, Is.EqualTo(before[i].IsUnknown), images[i]);
            }
        });
    }

    [Test]
    public void ExportOnnx_CalibratedModel_MatchesPredictAndRecordsTemperatureAndThreshold()
    {
        var onnx = Path.Combine(_folder, "fashion.onnx");
        _model.ExportOnnx(onnx);
        var images = _testImages.Where((_, i) => i % 10 == 0).ToList();
        var expected = _model.PredictBatch(images, topK: 1).Predictions();
        using var session = new InferenceSession(onnx);
        var actual = OnnxExportTests.Run(session, images, _model.ImageOptions);
        var k = _model.Classes.Count;
        var maxDifference = 0.0;
        for (var i = 0; i < images.Count; i++)
        {
            for (var c = 0; c < k; c++)
            {
                maxDifference = Math.Max(maxDifference, Math.Abs(actual[(i * k) + c] - expected[i].Probabilities[c]));
            }
        }

        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Multiple(() =>
        {
            Assert.That(_model.Temperature, Is.Not.EqualTo(1), "the parity below is checked with a temperature folded in");
            Assert.That(maxDifference, Is.LessThanOrEqualTo(1e-4));
            Assert.That(double.Parse(metadata["pretrainedkit.temperature"], CultureInfo.InvariantCulture), Is.EqualTo(_model.Temperature));
            Assert.That(float.Parse(metadata["pretrainedkit.unknown_threshold"], CultureInfo.InvariantCulture), Is.EqualTo(_model.UnknownThreshold));
        });
    }
}
