namespace PretrainedKit.Tests.Prediction;

/// <summary>Trains on the bundled Fashion-MNIST subset (20 train images per class) and tests on its 200 test images.</summary>
[Category("Slow")]
public class RealDataTests
{
    /// <summary>
    /// Chance is 0.10 for ten balanced classes. Measured on this subset: 0.78 (2026-11-27). With 200 test images the
    /// binomial standard error is about 0.03, so 0.60 is five standard errors below the measurement and six times chance:
    /// it fails only if the pipeline is broken (wrong preprocessing, shifted labels, orientation), not on noise.
    /// </summary>
    private const double MinimumTestAccuracy = 0.60;

    [Test]
    public async Task TrainOnFashionSubset_TestAccuracy_IsWellAboveChance()
    {
        using var model = await ImageClassifier.Create().FromFolder(TestPaths.FashionTrain).WithSeed(1).TrainAsync();
        var evaluation = await model.EvaluateAsync(TestPaths.FashionTest);
        TestContext.Out.WriteLine($"Fashion-MNIST subset: test micro accuracy {evaluation.Metrics.MicroAccuracy:F3}, macro {evaluation.Metrics.MacroAccuracy:F3}");
        Assert.Multiple(() =>
        {
            Assert.That(evaluation.Metrics.Count, Is.EqualTo(200));
            Assert.That(evaluation.Skipped, Is.Empty);
            Assert.That(evaluation.Metrics.MicroAccuracy, Is.GreaterThanOrEqualTo(MinimumTestAccuracy));
            Assert.That(model.TrainingReport!.Counts, Has.Count.EqualTo(10));
            Assert.That(model.TrainingReport.Counts.All(c => c.Training == 16 && c.Validation == 4));
        });
    }
}
