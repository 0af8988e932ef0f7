using PretrainedKit.Models;
using PretrainedKit.Training;

namespace PretrainedKit.Tests.Training;

/// <summary>Temperature scaling, the calibration error and the choice of the unknown threshold, on synthetic numbers.</summary>
public class CalibrationTests
{
    [Test]
    public void Options_Defaults_AreTheDocumentedOnes()
    {
        Assert.Multiple(() =>
        {
            Assert.That(ImageClassifierOptions.Default.Calibrate, Is.True);
            Assert.That(ImageClassifierOptions.Default.UnknownPrecisionTarget, Is.Null);
            Assert.That(ImageClassifierOptions.MinimumCalibrationImages, Is.EqualTo(20));
            Assert.That(Calibration.MinimumTemperature, Is.EqualTo(0.05));
            Assert.That(Calibration.MaximumTemperature, Is.EqualTo(20));
            Assert.That(Calibration.CalibrationErrorBins, Is.EqualTo(10));
            Assert.That(MakePrediction(0.01f, threshold: null).IsUnknown, Is.False, "without a threshold a prediction is never unknown");
        });
    }

    [Test]
    public void IsUnknown_BelowTheThreshold_IsTrueAndAtOrAboveIsFalse()
    {
        Assert.Multiple(() =>
        {
            Assert.That(MakePrediction(0.69f, 0.7f).IsUnknown, Is.True);
            Assert.That(MakePrediction(0.7f, 0.7f).IsUnknown, Is.False, "a top probability equal to the threshold is accepted");
            Assert.That(MakePrediction(0.9f, 0.7f).IsUnknown, Is.False);
            Assert.That((MakePrediction(0.9f, 0.7f) with { UnknownThreshold = 0.95f }).IsUnknown, Is.True, "another threshold applied with 'with'");
            Assert.That(MakePrediction(0.69f, 0.7f).Label, Is.EqualTo("a"), "the best guess stays in Label");
        });
    }

    [Test]
    public void FitTemperature_OverconfidentLogits_RaisesTAndMinimisesTheLogLoss()
    {
        var (logits, labels) = Synthetic(scale: 6, n: 200);
        var t = Calibration.FitTemperature(logits, labels);
        var fitted = Calibration.NegativeLogLikelihood(logits, labels, t);
        Assert.Multiple(() =>
        {
            Assert.That(t, Is.GreaterThan(1.5), "over-confident logits are softened");
            Assert.That(fitted, Is.LessThan(Calibration.NegativeLogLikelihood(logits, labels, 1)));
            foreach (var other in new[] { 0.05, 0.5, 1, t * 0.97, t * 1.03, 5, 20 })
            {
                Assert.That(fitted, Is.LessThanOrEqualTo(Calibration.NegativeLogLikelihood(logits, labels, other) + 1e-12), $"T = {other}");
            }
        });
    }

    [Test]
    public void FitTemperature_UnderconfidentLogits_LowersT()
    {
        var (logits, labels) = Synthetic(scale: 0.2, n: 200);
        var t = Calibration.FitTemperature(logits, labels);
        Assert.That(t, Is.LessThan(1));
        Assert.That(Calibration.NegativeLogLikelihood(logits, labels, t), Is.LessThan(Calibration.NegativeLogLikelihood(logits, labels, 1)));
    }

    [Test]
    public void Calibrate_TurnedOff_KeepsTemperatureOneAndSaysWhy()
    {
        var (logits, labels) = Synthetic(scale: 6, n: 50);
        var off = Calibration.Calibrate(logits, labels, ImageClassifierOptions.Default with { Calibrate = false });
        var on = Calibration.Calibrate(logits, labels, ImageClassifierOptions.Default);
        Assert.Multiple(() =>
        {
            Assert.That(off.Temperature, Is.EqualTo(1));
            Assert.That(off.Calibrated, Is.False);
            Assert.That(off.CalibrationSkippedReason, Does.Contain("turned off"));
            Assert.That(off.ExpectedCalibrationErrorAfter, Is.EqualTo(off.ExpectedCalibrationErrorBefore));
            Assert.That(on.Calibrated, Is.True);
            Assert.That(on.Temperature, Is.Not.EqualTo(1));
            Assert.That(on.LogLossAfter, Is.LessThan(on.LogLossBefore!.Value));
            Assert.That(on.ExpectedCalibrationErrorAfter, Is.LessThan(on.ExpectedCalibrationErrorBefore!.Value));
            Assert.That(on.ValidationImages, Is.EqualTo(50));
            Assert.That(on.UnknownThreshold, Is.Null, "no target, no threshold");
        });
    }

    [Test]
    public void Calibrate_FewerImagesThanTheMinimum_SkipsAndSaysHowMany()
    {
        var (logits, labels) = Synthetic(scale: 6, n: ImageClassifierOptions.MinimumCalibrationImages - 1);
        var report = Calibration.Calibrate(logits, labels, ImageClassifierOptions.Default);
        Assert.That(report.Temperature, Is.EqualTo(1));
        Assert.That(report.CalibrationSkippedReason, Does.Contain($"only {ImageClassifierOptions.MinimumCalibrationImages - 1} validation images"));
    }

    [Test]
    public void Calibrate_NoValidationImages_SkipsWithNoMeasures()
    {
        var report = Calibration.Calibrate([], [], ImageClassifierOptions.Default);
        Assert.Multiple(() =>
        {
            Assert.That(report.Temperature, Is.EqualTo(1));
            Assert.That(report.CalibrationSkippedReason, Does.Contain("no validation images"));
            Assert.That(report.ExpectedCalibrationErrorBefore, Is.Null);
        });
    }

    [Test]
    public void ExpectedCalibrationError_TwoBins_IsTheWeightedGap()
    {
        // Bin 0.9-1.0: confidence 0.95, accuracy 0.5 (gap 0.45); bin 0.5-0.6: confidence 0.55, accuracy 1 (gap 0.45);
        // bin 0.3-0.4: confidence 0.3, accuracy 0.5 (gap 0.2). Weighted by 2, 2 and 6 images of 10.
        float[] top = [0.95f, 0.95f, 0.55f, 0.55f, 0.3f, 0.3f, 0.3f, 0.3f, 0.3f, 0.3f];
        bool[] correct = [true, false, true, true, true, true, true, false, false, false];
        var expected = ((0.45 * 2) + (0.45 * 2) + (0.2 * 6)) / 10;
        Assert.That(Calibration.ExpectedCalibrationError(top, correct), Is.EqualTo(expected).Within(1e-6));
    }

    [Test]
    public void ChooseThreshold_TargetReached_IsTheLowestThresholdThatReachesIt()
    {
        // Precision of the images at or above each threshold: 0.95: 1/1, 0.9: 2/2, 0.8: 2/3, 0.7: 3/4, 0.6: 4/5, 0.5: 4/6.
        float[] top = [0.7f, 0.95f, 0.5f, 0.8f, 0.6f, 0.9f];
        bool[] correct = [true, true, false, false, true, true];
        var choice = Calibration.ChooseThreshold(top, correct, 0.75);
        Assert.Multiple(() =>
        {
            Assert.That(choice.Threshold, Is.EqualTo(0.6f));
            Assert.That(choice.Precision, Is.EqualTo(0.8));
            Assert.That(choice.Accepted, Is.EqualTo(5));
            Assert.That(choice.Coverage, Is.EqualTo(5.0 / 6));
            Assert.That(choice.TargetReached, Is.True);
            Assert.That(Calibration.ChooseThreshold(top, correct, 0.8).Threshold, Is.EqualTo(0.6f), "exactly the target counts as reached");
            Assert.That(Calibration.ChooseThreshold(top, correct, 0.81).Threshold, Is.EqualTo(0.9f), "1/1 and 2/2 reach it; 0.9 is the lower");
            Assert.That(Calibration.ChooseThreshold(top, correct, 0.6).Threshold, Is.EqualTo(0.5f), "everything accepted");
        });
    }

    [Test]
    public void ChooseThreshold_TargetOutOfReach_TakesTheMostPreciseAndSaysSo()
    {
        float[] top = [0.9f, 0.8f, 0.7f, 0.6f];
        bool[] correct = [false, true, true, false];
        var choice = Calibration.ChooseThreshold(top, correct, 0.9);
        Assert.Multiple(() =>
        {
            Assert.That(choice.TargetReached, Is.False);
            Assert.That(choice.Threshold, Is.EqualTo(0.7f), "2/3 beats 0/1, 1/2 and 2/4");
            Assert.That(choice.Precision, Is.EqualTo(2.0 / 3));
        });
    }

    [Test]
    public void ChooseThreshold_TiedProbabilities_AreAcceptedOrRefusedTogether()
    {
        float[] top = [0.8f, 0.8f, 0.6f];
        bool[] correct = [true, false, true];
        var strict = Calibration.ChooseThreshold(top, correct, 0.9);
        Assert.Multiple(() =>
        {
            Assert.That(strict.TargetReached, Is.False, "1/1 at 0.8 is not an option: the two 0.8s go together (1/2)");
            Assert.That(strict.Threshold, Is.EqualTo(0.6f));
            Assert.That(strict.Precision, Is.EqualTo(2.0 / 3));
            Assert.That(Calibration.ChooseThreshold(top, correct, 0.5).Threshold, Is.EqualTo(0.6f));
        });
    }

    [Test]
    public void Warnings_TargetMissedOnFewImages_SayWhatWasReachedAndOnHowMany()
    {
        var (logits, labels) = Synthetic(scale: 1, n: 30);
        var report = Calibration.Calibrate(logits, labels, ImageClassifierOptions.Default with { UnknownPrecisionTarget = 1 });
        var warnings = Calibration.Warnings(report).ToList();
        Assert.That(report.TargetReached, Is.False, "the most confident synthetic image is wrong, so precision 1 is out of reach");
        Assert.That(warnings, Has.Some.Contains("target 100.0 % was not reached").And.Some.Contains("chosen on only 30 validation images"));
    }

    [TestCase(0.0)]
    [TestCase(1.5)]
    [TestCase(double.NaN)]
    public void Validate_TargetOutOfRange_Throws(double target) =>
        Assert.That(() => (ImageClassifierOptions.Default with { UnknownPrecisionTarget = target }).Validate(), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("above 0 and at most 1"));

    [Test]
    public void Train_TargetWithoutValidation_FailsFirstNamingTheFix()
    {
        var builder = ImageClassifier.Create().FromFolder(TestPaths.NewTempFolder("no-data")).WithValidationSplit(0).WithUnknownPrecisionTarget(0.95);
        Assert.That(() => builder.Train(), Throws.ArgumentException.With.Message.Contains("keep a validation split above 0").And.Message.Contains("validation folder"));
    }

    private static PretrainedKit.Prediction MakePrediction(float top, float? threshold) =>
        new() { TopK = [new LabelProbability("a", top), new LabelProbability("b", 1 - top)], Probabilities = [top, 1 - top], UnknownThreshold = threshold };

    /// <summary>
    /// Three-class logits, <paramref name="scale"/> times a margin: the true class wins 70% of the time, and the most
    /// confident image (the first) is wrong.
    /// </summary>
    private static (List<double[]> Logits, List<int> Labels) Synthetic(double scale, int n)
    {
        var random = new Random(3);
        var logits = new List<double[]>();
        var labels = new List<int>();
        for (var i = 0; i < n; i++)
        {
            var label = i % 3;
            var winner = i == 0 || random.NextDouble() >= 0.7 ? (label + 1) % 3 : label;
            var l = new double[3];
            for (var c = 0; c < 3; c++)
            {
                l[c] = scale * random.NextDouble();
            }

            l[winner] += scale * (i == 0 ? 5 : 1 + random.NextDouble());
            logits.Add(l);
            labels.Add(label);
        }

        return (logits, labels);
    }
}
