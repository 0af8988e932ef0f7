using PretrainedKit.Featurization;
using PretrainedKit.Models;
using PretrainedKit.Tests.Featurization;
using Microsoft.ML;
using Microsoft.ML.Data;
using PretrainedKit.Imaging;
using PretrainedKit.Training;

namespace PretrainedKit.Tests.Training;

public class TrainingTests
{
    private string _data = null!;

    [OneTimeSetUp]
    public void CreateData() => _data = SmallDataset.Create(8);

    [Test]
    public async Task TrainAsync_SameSeedAndData_GiveTheSameModel()
    {
        using var a = await ImageClassifier.Create().FromFolder(_data).WithSeed(11).TrainAsync();
        using var b = await ImageClassifier.Create().FromFolder(_data).WithSeed(11).TrainAsync();
        using var c = await ImageClassifier.Create().FromFolder(_data).WithSeed(12).TrainAsync();
        Assert.That(a.Definition.Head.Weights, Is.EqualTo(b.Definition.Head.Weights));
        Assert.That(a.Definition.Head.Biases, Is.EqualTo(b.Definition.Head.Biases));
        Assert.That(c.Definition.Head.Weights, Is.Not.EqualTo(a.Definition.Head.Weights), "another seed gives another split");
    }

    [Test]
    public async Task TrainAsync_Progress_ReportsEveryPhaseWithTotals()
    {
        var reports = new List<TrainingProgress>();
        var progress = new SynchronousProgress(reports.Add);
        // A cold cache of its own: a cache hit counts all views of its image at once, and other tests train on the same images.
        using var model = await ImageClassifier.Create().FromFolder(_data).WithFeatureCacheDirectory(TestPaths.NewTempFolder("cold-cache")).TrainAsync(progress);
        Assert.Multiple(() =>
        {
            Assert.That(reports.Select(r => r.Phase).Distinct(), Is.EqualTo(new[] { TrainingPhase.Scanning, TrainingPhase.Validating, TrainingPhase.LoadingBackbone, TrainingPhase.Featurizing, TrainingPhase.SearchingLevers, TrainingPhase.Inspecting, TrainingPhase.Training, TrainingPhase.Evaluating, TrainingPhase.Completed }));
            var featurizing = reports.Where(r => r.Phase == TrainingPhase.Featurizing).ToList();
            Assert.That(featurizing.Select(r => r.Completed), Is.EqualTo(Enumerable.Range(1, 48)), "24 images, each in the original and the mirror view");
            Assert.That(featurizing.All(r => r.Total == 48 && r.EstimatedRemaining is not null));
            var searching = reports.Where(r => r.Phase == TrainingPhase.SearchingLevers && r.Total > 1).ToList();
            Assert.That(searching.Select(r => r.Completed), Is.EqualTo(Enumerable.Range(1, searching[0].Total)), "every candidate fit reported once, in order");
            Assert.That(featurizing.Last().EstimatedRemaining, Is.EqualTo(TimeSpan.Zero));
            Assert.That(reports.Select(r => r.Elapsed), Is.Ordered);
            Assert.That(reports.Where(r => r.Phase == TrainingPhase.Validating).Select(r => r.Completed), Is.Ordered, "validated in parallel, reported one at a time");
        });
    }

    [Test]
    public void TrainAsync_Cancelled_StopsAfterTheImagesInFlight()
    {
        using var cts = new CancellationTokenSource();
        int? cancelledAt = null;
        var last = 0;
        var progress = new SynchronousProgress(p =>
        {
            if (p.Phase == TrainingPhase.Featurizing)
            {
                last = p.Completed;
                if (cancelledAt is null)
                {
                    cancelledAt = p.Completed;
                    cts.Cancel();
                }
            }
        });
        var builder = ImageClassifier.Create().FromFolder(_data).WithFeatureCache(PretrainedKit.Caching.FeatureCacheOptions.Disabled);
        Assert.That(() => builder.TrainAsync(progress, cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(cancelledAt, Is.Not.Null);
        Assert.That(last, Is.LessThanOrEqualTo(cancelledAt!.Value + PretrainedKit.Backbones.BackboneRuntime.MaxConcurrentRuns), "each backbone run in flight may finish; no other image starts");
        Assert.That(last, Is.LessThan(24), "not every image was featurised");
    }

    [Test]
    public async Task TrainAsync_Builder_IsReusableAndModelsAreIndependent()
    {
        var builder = ImageClassifier.Create().FromFolder(_data).WithSeed(5);
        using var first = await builder.TrainAsync();
        builder.WithL2Regularization(0.001f).WithBackground(RgbColor.Black);
        using var second = await builder.TrainAsync();
        Assert.Multiple(() =>
        {
            Assert.That(first.TrainingReport!.LeverSearch!.Fixed, Is.EqualTo(AutoLevers.None));
            Assert.That(second.TrainingReport!.LeverSearch!.Fixed, Is.EqualTo(AutoLevers.Head), "the L2 weight set on the reused builder fixes the head");
            Assert.That(first.ImageOptions.Background, Is.EqualTo(RgbColor.White));
            Assert.That(((LinearHeadOptions)second.TrainingReport!.Options.Head).L2Regularization, Is.EqualTo(0.001f));
            Assert.That(second.ImageOptions.Background, Is.EqualTo(RgbColor.Black));
        });
    }

    [Test]
    public void Options_Defaults_AreTheDocumentedOnes()
    {
        var o = ImageClassifierOptions.Default;
        Assert.Multiple(() =>
        {
            Assert.That(o.Backbone, Is.SameAs(PretrainedKit.Backbones.KnownBackbones.ResNet18));
            Assert.That(o.Seed, Is.EqualTo(1));
            Assert.That(o.ValidationFraction, Is.EqualTo(0.2));
            Assert.That(o.ValidationFolder, Is.Null);
            Assert.That(o.Strict, Is.False);
            Assert.That(o.Head, Is.TypeOf<LinearHeadOptions>());
            Assert.That(((LinearHeadOptions)o.Head).L2Regularization, Is.EqualTo(10f));
            Assert.That(((LinearHeadOptions)o.Head).L1Regularization, Is.Zero);
            Assert.That(((LinearHeadOptions)o.Head).MaximumIterations, Is.EqualTo(200));
            Assert.That(o.ClassWeighting, Is.EqualTo(ClassWeighting.Balanced));
            Assert.That(o.Image.Background, Is.EqualTo(RgbColor.White));
            Assert.That(o.Image.ResizeMode, Is.EqualTo(ResizeMode.Stretch));
            Assert.That(o.Image.MaxPixels, Is.EqualTo(100_000_000));
        });
    }

    [TestCase(-0.1)]
    [TestCase(1.0)]
    public void WithValidationSplit_OutOfRange_Throws(double fraction)
    {
        Assert.That(() => ImageClassifier.Create().FromFolder(_data).WithValidationSplit(fraction).TrainAsync(), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void TrainAsync_NoDataSource_Throws()
    {
        Assert.That(() => ImageClassifier.Create().TrainAsync(), Throws.InvalidOperationException.With.Message.Contains("FromFolder"));
    }

    [Test]
    public void HeadTrainer_Probabilities_MatchMlNetScores()
    {
        var (features, labels) = Synthetic(90, 3, 6, seed: 4);
        var (head, mlModel, context, _) = HeadTrainer.Train(features, labels, 3, ImageClassifierOptions.Default, CancellationToken.None);
        var schema = SchemaDefinition.Create(typeof(HeadTrainer.HeadRow));
        schema[nameof(HeadTrainer.HeadRow.Label)].ColumnType = new KeyDataViewType(typeof(uint), 3);
        schema[nameof(HeadTrainer.HeadRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 6);
        var rows = features.Select((f, i) => new HeadTrainer.HeadRow { Label = (uint)labels[i], Features = head.Scaling.Apply(f), Weight = 1 });
        var scores = mlModel!.Transform(context!.Data.LoadFromEnumerable(rows, schema)).GetColumn<float[]>("Score").ToList();
        for (var i = 0; i < features.Count; i++)
        {
            var ours = head.Probabilities(features[i]);
            Assert.That(ours, Is.EqualTo(scores[i]).Within(1e-5f), $"row {i}");
            Assert.That(ours.Sum(), Is.EqualTo(1f).Within(1e-5f));
        }
    }

    [Test]
    public void HeadTrainer_BalancedWeights_FavourTheMinorityClass()
    {
        // 100 images of class 0, 8 of class 1, overlapping: balanced weighting must recall more of class 1.
        var (features, labels) = Synthetic(108, 2, 4, seed: 9, overlap: 1.6, counts: [100, 8]);
        var balanced = HeadTrainer.Train(features, labels, 2, ImageClassifierOptions.Default, CancellationToken.None).Head;
        var plain = HeadTrainer.Train(features, labels, 2, ImageClassifierOptions.Default with { ClassWeighting = ClassWeighting.None }, CancellationToken.None).Head;
        double MinorityRecall(HeadDefinition h) => features.Where((f, i) => labels[i] == 1).Average(f => h.Probabilities(f)[1] > 0.5 ? 1.0 : 0.0);
        double MinorityProbability(HeadDefinition h) => features.Where((f, i) => labels[i] == 1).Average(f => h.Probabilities(f)[1]);
        Assert.That(MinorityProbability(balanced), Is.GreaterThan(MinorityProbability(plain)));
        Assert.That(MinorityRecall(balanced), Is.GreaterThanOrEqualTo(MinorityRecall(plain)));
    }

    private static (List<float[]> Features, List<int> Labels) Synthetic(int n, int classes, int dimension, int seed, double overlap = 0.5, int[]? counts = null)
    {
        var random = new Random(seed);
        var features = new List<float[]>();
        var labels = new List<int>();
        for (var c = 0; c < classes; c++)
        {
            var count = counts?[c] ?? n / classes;
            for (var i = 0; i < count; i++)
            {
                var f = new float[dimension];
                for (var j = 0; j < dimension; j++)
                {
                    f[j] = (float)(random.NextDouble() * overlap);
                }

                f[c] += 1;
                features.Add(f);
                labels.Add(c);
            }
        }

        return (features, labels);
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread, in order (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value) => report(value);
}
