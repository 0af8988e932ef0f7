using PretrainedKit.Evaluation;

namespace PretrainedKit.Tests.Evaluation;

public class ClassificationMetricsTests
{
    [Test]
    public void Compute_HandWorkedExample_GivesEveryMetric()
    {
        // 3 classes. Truth: a, a, b, c. Predictions: a (right), b (wrong, a 2nd), b (right), a (wrong, c 3rd).
        string[] classes = ["a", "b", "c"];
        int[] actual = [0, 0, 1, 2];
        float[][] p =
        [
            [0.7f, 0.2f, 0.1f],
            [0.3f, 0.6f, 0.1f],
            [0.1f, 0.8f, 0.1f],
            [0.5f, 0.3f, 0.2f],
        ];
        var m = ClassificationMetrics.Compute(classes, actual, p);
        Assert.Multiple(() =>
        {
            Assert.That(m.MicroAccuracy, Is.EqualTo(0.5));
            Assert.That(m.MacroAccuracy, Is.EqualTo((0.5 + 1 + 0) / 3).Within(1e-12));
            Assert.That(m.LogLoss, Is.EqualTo(-(Math.Log(0.7) + Math.Log(0.3) + Math.Log(0.8) + Math.Log(0.2)) / 4).Within(1e-6));
            Assert.That(m.TopKAccuracy, Is.EqualTo(new[] { 0.5, 0.75, 1.0 }));
            Assert.That(m.ConfusionMatrix, Is.EqualTo(new[] { new[] { 1, 1, 0 }, new[] { 0, 1, 0 }, new[] { 1, 0, 0 } }));
            Assert.That(m.PerClass[0], Is.EqualTo(new ClassMetrics("a", 0.5, 0.5, 0.5, 2)));
            Assert.That(m.PerClass[1].Precision, Is.EqualTo(0.5));
            Assert.That(m.PerClass[1].Recall, Is.EqualTo(1.0));
            Assert.That(m.PerClass[1].F1, Is.EqualTo(2 * 0.5 / 1.5).Within(1e-12));
            Assert.That(m.PerClass[2], Is.EqualTo(new ClassMetrics("c", 0, 0, 0, 1)));
        });
    }

    [Test]
    public void Compute_TopK_StopsAtFive()
    {
        var classes = Enumerable.Range(0, 8).Select(i => $"c{i}").ToArray();
        var p = new float[8];
        Array.Fill(p, 1f / 8);
        var m = ClassificationMetrics.Compute(classes, [0], [p]);
        Assert.That(m.TopKAccuracy, Has.Count.EqualTo(5));
    }

    [Test]
    public void Compute_NoImages_Throws()
    {
        Assert.That(() => ClassificationMetrics.Compute(["a", "b"], [], []), Throws.ArgumentException);
    }
}
