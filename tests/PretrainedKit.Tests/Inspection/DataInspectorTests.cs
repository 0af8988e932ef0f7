using PretrainedKit.Inspection;

namespace PretrainedKit.Tests.Inspection;

/// <summary>The findings' arithmetic on constructed cases with known answers (issue #15).</summary>
public class DataInspectorTests
{
    private static readonly string[] Classes = ["a", "b", "c"];

    [Test]
    public void LabelIssues_FlagTheImageTheModelConfidentlyPutsInAnotherClass_AndNoCleanOne()
    {
        // Nine clean images (confident in their own class) and one labelled "a" that the out-of-fold model puts in "c".
        var probabilities = new List<double[]?>();
        var labels = new List<int>();
        for (var c = 0; c < 3; c++)
        {
            for (var i = 0; i < 3; i++)
            {
                var p = new double[] { 0.1, 0.1, 0.1 };
                p[c] = 0.8 - (0.05 * i);
                probabilities.Add(p);
                labels.Add(c);
            }
        }

        probabilities.Add([0.05, 0.05, 0.9]);
        labels.Add(0);
        probabilities.Add(null); // Not judged (a class too small for out-of-fold predictions): never reported.
        labels.Add(1);
        var paths = labels.Select((_, i) => $"img{i}.png").ToList();

        var issues = DataInspector.FindLabelIssues(probabilities, labels, Classes, paths);

        Assert.That(issues, Has.Count.EqualTo(1));
        Assert.Multiple(() =>
        {
            Assert.That(issues[0].Path, Is.EqualTo("img9.png"));
            Assert.That(issues[0].GivenLabel, Is.EqualTo("a"));
            Assert.That(issues[0].SuggestedLabel, Is.EqualTo("c"));
            Assert.That(issues[0].Score, Is.EqualTo(0.95).Within(1e-12));
            Assert.That(issues[0].SuggestedLabelProbability, Is.EqualTo(0.9));
        });
    }

    [Test]
    public void LabelIssues_AreRankedByHowUnlikelyTheGivenLabelIs()
    {
        double[]?[] probabilities = [[0.9, 0.1], [0.8, 0.2], [0.25, 0.75], [0.1, 0.9], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95]];
        int[] labels = [0, 0, 0, 1, 1, 1, 0];
        var issues = DataInspector.FindLabelIssues(probabilities, labels, ["x", "y"], labels.Select((_, i) => $"{i}").ToList());
        Assert.That(issues.Select(i => i.Path), Is.EqualTo(new[] { "6", "2", "5" }));
        Assert.That(issues.Select(i => i.Score), Is.Ordered.Descending);
    }

    [Test]
    public void Duplicates_ExactNearLeakageAndConflict_AreTold_AndDistinctImagesAreNot()
    {
        var hash = new byte[] { 1, 2, 3 };
        var images = new List<InspectedImage>
        {
            new("t0.png", "a", false, hash, [1, 0, 0, 0]),
            new("t1.png", "a", false, [.. hash], [0.2f, 0.9f, 0, 0]),   // Same bytes as t0 (features do not matter).
            new("t2.png", "b", false, [9], [0, 0, 1, 0]),
            new("t3.png", "a", false, [8], [0, 0.01f, 1, 0]),          // Near copy of t2 under another label: a conflict.
            new("t4.png", "c", false, [7], [0, 0, 0, 1]),
            new("t5.png", "c", false, [6], [0, 0.5f, 0, 1]),           // Same class as t4, but not the same image (cosine 0.89).
            new("s0.png", "c", true, [5], [0, 0, 0.001f, 1]),          // A test image that is (nearly) t4: leakage.
            new("s1.png", "c", true, [4], [0, 0.001f, 0.001f, 1]),     // Another one, both on the test side: not compared with each other.
        };

        var (duplicates, _) = DataInspector.FindDuplicatesAndOutliers(images, 0.95, CancellationToken.None);

        var described = duplicates.Select(d => $"{d.Path}={d.OtherPath} {d.Kind} leak:{d.IsLeakage} conflict:{d.IsConflict}").ToList();
        Assert.That(described, Is.EqualTo(new[]
        {
            "t0.png=t1.png Exact leak:False conflict:False",
            "t4.png=s0.png Near leak:True conflict:False",
            "t4.png=s1.png Near leak:True conflict:False",
            "t2.png=t3.png Near leak:False conflict:True",
        }));
        Assert.That(duplicates[0].Similarity, Is.EqualTo(1.0));
    }

    [Test]
    public void Outliers_TheOneImageFarFromAllOthers_IsTheOnlyOne()
    {
        var random = new Random(5);
        var images = new List<InspectedImage>();
        for (var i = 0; i < 40; i++)
        {
            // Two tight clusters with a little spread.
            var v = i % 2 == 0 ? new float[] { 1, 0, 0, 0, 0 } : [0, 1, 0, 0, 0];
            for (var j = 0; j < v.Length; j++)
            {
                v[j] += (float)(random.NextDouble() * 0.2);
            }

            images.Add(new InspectedImage($"{i}.png", i % 2 == 0 ? "x" : "y", false, [(byte)i], v));
        }

        images.Add(new InspectedImage("blank.png", "x", false, [200], [0, 0, 0, 0, 1]));
        var (_, outliers) = DataInspector.FindDuplicatesAndOutliers(images, 0.9999, CancellationToken.None);

        Assert.That(outliers.Select(o => o.Path), Is.EqualTo(new[] { "blank.png" }));
        Assert.That(outliers[0].Score, Is.GreaterThan(DataInspector.OutlierThreshold));
        Assert.That(outliers[0].NeighbourSimilarity, Is.LessThan(0.5));
    }

    [Test]
    public void Report_Summary_NamesEachKindFound()
    {
        var report = new DataInspectionReport
        {
            LabelIssues = [new LabelIssue("a.png", "cat", "dog", 0.9, 0.1, 0.8)],
            Duplicates =
            [
                new DuplicatePair("b.png", "cat", "c.png", "cat", DuplicateKind.Exact, 1, false),
                new DuplicatePair("b.png", "cat", "t.png", "dog", DuplicateKind.Near, 0.99, true),
            ],
            Outliers = [],
            ImageCount = 3,
            TestImageCount = 1,
            Skipped = [],
            LabelMethod = "test",
            NearDuplicateThreshold = 0.95,
            OutlierThreshold = 3.5,
            Notes = [],
            Duration = TimeSpan.Zero,
        };
        Assert.That(report.Summary, Is.EqualTo("1 likely label error, 1 duplicate pair within the training images, 1 duplicate pair across training and test, 1 conflict (the same image under two labels)"));
        Assert.That(report.Leakage, Has.Count.EqualTo(1));
        Assert.That(report with { LabelIssues = [], Duplicates = [] }, Has.Property(nameof(DataInspectionReport.HasFindings)).False);
    }

    [Test]
    public void MatrixProduct_MultiplyTransposed_EqualsTheDotProducts()
    {
        var random = new Random(3);
        float[] Matrix(int rows, int columns) => [.. Enumerable.Range(0, rows * columns).Select(_ => (float)(random.NextDouble() - 0.5))];
        var a = Matrix(7, 33);
        var b = Matrix(5, 33);
        var y = PretrainedKit.Onnx.MatrixProduct.MultiplyTransposed(a, 7, b, 5, 33);
        Assert.That(y, Has.Length.EqualTo(35));
        for (var i = 0; i < 7; i++)
        {
            for (var j = 0; j < 5; j++)
            {
                var expected = Enumerable.Range(0, 33).Sum(c => (double)a[(i * 33) + c] * b[(j * 33) + c]);
                Assert.That(y[(i * 5) + j], Is.EqualTo(expected).Within(1e-5), $"({i}, {j})");
            }
        }

        var block = PretrainedKit.Onnx.MatrixProduct.MultiplyTransposed(a.AsMemory(2 * 33), 3, b, 5, 33);
        Assert.That(block, Is.EqualTo(y.Skip(2 * 5).Take(15)).Within(1e-6f), "a block of rows from an offset");
        Assert.That(PretrainedKit.Onnx.MatrixProduct.MultiplyTransposed(a, 0, b, 5, 33), Is.Empty);
    }
}
