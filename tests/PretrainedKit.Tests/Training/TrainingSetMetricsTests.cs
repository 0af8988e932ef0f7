using PretrainedKit.Evaluation;
using PretrainedKit.Reporting;

namespace PretrainedKit.Tests.Training;

/// <summary>The training report's metrics on the training images themselves, and the HTML report's training-set section.</summary>
public class TrainingSetMetricsTests
{
    [Test]
    public async Task TrainAsync_Report_HasTrainingSetMetricsOnEveryTrainingImageAndTheHtmlShowsThem()
    {
        var data = SmallDataset.Create(6);
        try
        {
            using var model = await ImageClassifier.Create().FromFolder(data).WithSeed(1).TrainAsync();
            var report = model.TrainingReport!;
            var training = report.TrainingMetrics!;
            var evaluation = new EvaluationReport { Metrics = report.ValidationMetrics!, Skipped = [], IgnoredFileCount = 0, Elapsed = TimeSpan.Zero };
            var html = HtmlReport.Render(evaluation, new HtmlReportOptions { TrainingMetrics = training, WorstMistakes = 0 });
            Assert.Multiple(() =>
            {
                Assert.That(training.Count, Is.EqualTo(report.Counts.Sum(c => c.Training)));
                Assert.That(training.Classes, Is.EqualTo(report.Classes));
                Assert.That(training.MicroAccuracy, Is.InRange(0.0, 1.0));
                Assert.That(training.LogLoss, Is.GreaterThanOrEqualTo(0));
                Assert.That(training.MicroAccuracy, Is.EqualTo(1.0), "three well-separated colours: the head fits its training images");
                Assert.That(html, Does.Contain("id=\"training-set\"").And.Contain("id=\"training-set-table\""));
                Assert.That(html, Does.Contain(training.LogLoss.ToString("F3", System.Globalization.CultureInfo.InvariantCulture)));
                Assert.That(HtmlReport.Render(evaluation), Does.Not.Contain("id=\"training-set\""), "no section without training metrics");
            });
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
