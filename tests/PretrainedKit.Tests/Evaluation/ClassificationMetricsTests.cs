using Microsoft.ML;
using Microsoft.ML.Data;
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
            Assert.That(m.TopKAccuracyForAllK, Is.EqualTo(new[] { 0.5, 0.75, 1.0 }));
            Assert.That(m.ConfusionMatrix, Is.EqualTo(new[] { new[] { 1, 1, 0 }, new[] { 0, 1, 0 }, new[] { 1, 0, 0 } }));
            Assert.That(m.PerClass[0], Is.EqualTo(new ClassMetrics("a", 0.5, 0.5, 0.5, 2)));
            Assert.That(m.PerClass[1].Precision, Is.EqualTo(0.5));
            Assert.That(m.PerClass[1].Recall, Is.EqualTo(1.0));
            Assert.That(m.PerClass[1].F1, Is.EqualTo(2 * 0.5 / 1.5).Within(1e-12));
            Assert.That(m.PerClass[2], Is.EqualTo(new ClassMetrics("c", 0, 0, 0, 1)));
            Assert.That(m.PerClassLogLoss[0], Is.EqualTo(-(Math.Log(0.7) + Math.Log(0.3)) / 2).Within(1e-6));
            Assert.That(m.PerClassLogLoss[2], Is.EqualTo(-Math.Log(0.2)).Within(1e-6));
            var prior = -((0.5 * Math.Log(0.5)) + (2 * 0.25 * Math.Log(0.25)));
            Assert.That(m.LogLossReduction, Is.EqualTo((prior - m.LogLoss) / prior).Within(1e-12));
        });
    }

    [Test]
    public void Compute_SamePredictionsAsMlNetEvaluate_EverySharedMetricAgrees()
    {
        // 5 classes, 300 images with random scores (no ties), some confidently wrong; every class has images.
        const int k = 5;
        var random = new Random(17);
        var actual = new int[300];
        var probabilities = new float[actual.Length][];
        for (var n = 0; n < actual.Length; n++)
        {
            actual[n] = n < k ? n : random.Next(k);
            var raw = Enumerable.Range(0, k).Select(c => (float)random.NextDouble() + (c == actual[n] ? 0.8f : 0f)).ToArray();
            if (n % 37 == 0)
            {
                raw[actual[n]] = 1e-9f; // confidently wrong: exercises the clipping at 1e-15 after normalisation
            }

            var sum = raw.Sum();
            probabilities[n] = raw.Select(v => v / sum).ToArray();
        }

        var classes = Enumerable.Range(0, k).Select(c => $"c{c}").ToArray();
        var ours = ClassificationMetrics.Compute(classes, actual, probabilities);

        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(ScoredRow));
        schema[nameof(ScoredRow.PredictedLabel)].ColumnType = new KeyDataViewType(typeof(uint), k);
        schema[nameof(ScoredRow.Score)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, k);
        var rows = actual.Select((a, n) => new ScoredRow
        {
            Label = a, // a numeric label is the 0-based class index
            Score = probabilities[n],
            PredictedLabel = (uint)Array.IndexOf(probabilities[n], probabilities[n].Max()) + 1,
        }).ToList();
        var theirs = ml.MulticlassClassification.Evaluate(ml.Data.LoadFromEnumerable(rows, schema), topKPredictionCount: k);

        Assert.Multiple(() =>
        {
            Assert.That(ours.MicroAccuracy, Is.EqualTo(theirs.MicroAccuracy).Within(1e-9), nameof(ours.MicroAccuracy));
            Assert.That(ours.MacroAccuracy, Is.EqualTo(theirs.MacroAccuracy).Within(1e-9), nameof(ours.MacroAccuracy));
            Assert.That(ours.LogLoss, Is.EqualTo(theirs.LogLoss).Within(1e-6), nameof(ours.LogLoss));
            Assert.That(ours.LogLossReduction, Is.EqualTo(theirs.LogLossReduction).Within(1e-6), nameof(ours.LogLossReduction));
            Assert.That(ours.PerClassLogLoss, Is.EqualTo(theirs.PerClassLogLoss.ToArray()).Within(1e-6), nameof(ours.PerClassLogLoss));
            Assert.That(ours.TopKAccuracyForAllK, Is.EqualTo(theirs.TopKAccuracyForAllK.ToArray()).Within(1e-9), nameof(ours.TopKAccuracyForAllK));
            Assert.That(ours.ConfusionMatrix.Select(r => r.Select(c => (double)c).ToArray()).ToArray(), Is.EqualTo(theirs.ConfusionMatrix.Counts.Select(r => r.ToArray()).ToArray()), "confusion matrix");
            Assert.That(ours.PerClass.Select(c => c.Precision).ToArray(), Is.EqualTo(theirs.ConfusionMatrix.PerClassPrecision.ToArray()).Within(1e-9), "per-class precision");
            Assert.That(ours.PerClass.Select(c => c.Recall).ToArray(), Is.EqualTo(theirs.ConfusionMatrix.PerClassRecall.ToArray()).Within(1e-9), "per-class recall");
        });
    }

    [Test]
    public void Compute_TopK_StopsAtFive()
    {
        var classes = Enumerable.Range(0, 8).Select(i => $"c{i}").ToArray();
        var p = new float[8];
        Array.Fill(p, 1f / 8);
        var m = ClassificationMetrics.Compute(classes, [0], [p]);
        Assert.That(m.TopKAccuracyForAllK, Has.Count.EqualTo(5));
    }

    [Test]
    public void Compute_NoImages_Throws()
    {
        Assert.That(() => ClassificationMetrics.Compute(["a", "b"], [], []), Throws.ArgumentException);
    }

    [Test]
    public void Compute_OneClassOnly_LogLossReductionIsZeroNotNaN()
    {
        var m = ClassificationMetrics.Compute(["a", "b"], [0, 0], [[0.9f, 0.1f], [0.6f, 0.4f]]);
        Assert.Multiple(() =>
        {
            Assert.That(m.LogLossReduction, Is.Zero);
            Assert.That(m.PerClassLogLoss[1], Is.Zero, "a class without images");
        });
    }

    /// <summary>One scored image as ML.NET's multiclass evaluator reads it.</summary>
    private sealed class ScoredRow
    {
        public float Label { get; set; }

        public float[] Score { get; set; } = [];

        public uint PredictedLabel { get; set; }
    }
}
