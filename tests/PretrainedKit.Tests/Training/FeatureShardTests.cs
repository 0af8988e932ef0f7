using PretrainedKit.Caching;
using PretrainedKit.Models;
using PretrainedKit.Tests.Cli;
using PretrainedKit.Training;

namespace PretrainedKit.Tests.Training;

/// <summary>Featurisation split over processes into one shared cache, then training on cache hits alone (issue #18 item 4).</summary>
[Category("Slow")]
public class FeatureShardTests
{
    private static string NewData()
    {
        var data = SmallDataset.Create(5);
        TestImages.WriteClass(data, "red", 1, new SkiaSharp.SKColor(200, 30, 30), 41); // 16 distinct images in all.
        return data;
    }

    private static List<string> Images(string data) => Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();

    [Test]
    public async Task CacheFeaturesAsync_FourShards_PartitionTheImagesAndTrainingRunsOnHitsAloneWithTheSameModel()
    {
        var data = NewData();
        var cacheDir = TestPaths.NewTempFolder("shards");
        ImageClassifierBuilder Builder(FeatureCacheOptions cache) => ImageClassifier.Create().FromFolder(data).WithSeed(2)
            .WithFeatureCache(cache).WithAugmentation(TrainingAugmentation.Mirror).WithTestTimeAugmentation(TestTimeAugmentation.Mirror);

        var shared = new FeatureCacheOptions { Directory = cacheDir };
        var reports = await Task.WhenAll(Enumerable.Range(0, 4).Select(k => Builder(shared).CacheFeaturesAsync(k, 4)));
        using var fromShards = await Builder(shared).TrainAsync();
        using var alone = await Builder(FeatureCacheOptions.Disabled).TrainAsync();

        var images = Images(data);
        Assert.Multiple(() =>
        {
            Assert.That(reports.Select(r => r.Images), Is.All.EqualTo(images.Count));
            Assert.That(reports.Sum(r => r.ImagesInShard), Is.EqualTo(images.Count), "every image falls in exactly one shard");
            Assert.That(reports.Count(r => r.ImagesInShard > 0), Is.GreaterThan(1), "the work is spread");
            Assert.That(reports.Sum(r => r.ViewsComputed), Is.EqualTo(2 * images.Count), "original and mirror view of each image, once");
            Assert.That(reports.Sum(r => r.CacheHits), Is.Zero);
            Assert.That(fromShards.TrainingReport!.FeatureCacheHits, Is.EqualTo(2 * fromShards.TrainingReport.ImagesUsed), "no backbone run while training (two views per image)");
            foreach (var image in images)
            {
                Assert.That(fromShards.Predict(image).Probabilities, Is.EqualTo(alone.Predict(image).Probabilities), image);
            }
        });
    }

    [Test]
    public void CacheFeaturesAsync_BadShardOrDisabledCache_IsRefusedBeforeAnyWork()
    {
        var builder = ImageClassifier.Create().FromFolder(TestPaths.NewTempFolder("no-data"));
        Assert.Multiple(() =>
        {
            Assert.That(() => builder.CacheFeaturesAsync(4, 4), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("from 0 to 3"));
            Assert.That(() => builder.CacheFeaturesAsync(0, 0), Throws.TypeOf<ArgumentOutOfRangeException>());
            Assert.That(() => ImageClassifier.Create().FromFolder("x").WithFeatureCache(FeatureCacheOptions.Disabled).CacheFeaturesAsync(), Throws.InvalidOperationException.With.Message.Contains("disabled"));
        });
    }

    [Test]
    public void Cli_FourShardProcessesThenTrain_TrainsOnHitsIntoTheSameModelAsOneProcess()
    {
        var data = NewData();
        var cacheDir = TestPaths.NewTempFolder("cli-shards");
        var environment = new Dictionary<string, string> { ["PRETRAINEDKIT_CACHE_DIR"] = cacheDir };
        var runs = Enumerable.Range(0, 4).Select(k => Task.Run(() => k % 2 == 0
            ? CliProcess.Run(environment, "featurize", data, "--shard", $"{k}/4", "--json")
            : CliProcess.Run(new Dictionary<string, string>(environment) { ["SLURM_ARRAY_TASK_ID"] = (k + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), ["SLURM_ARRAY_TASK_MIN"] = "1" }, "featurize", data, "--shard", "4", "--json"))).ToArray();
        Task.WaitAll(runs);
        var model = Path.Combine(TestPaths.NewTempFolder("cli-shards-model"), "m.pkmodel");
        var train = CliProcess.Run(environment, "train", data, "--model", model, "--seed", "3");
        using var fromShards = ImageClassifier.Load(model, featureCache: FeatureCacheOptions.Disabled);
        using var alone = ImageClassifier.Create().FromFolder(data).WithSeed(3).WithFeatureCache(FeatureCacheOptions.Disabled).Train();
        var computed = runs.Select(r => System.Text.Json.JsonDocument.Parse(r.Result.Out).RootElement.GetProperty("viewsComputed").GetInt32()).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(runs.Select(r => r.Result.ExitCode), Is.All.Zero, string.Join("\n", runs.Select(r => r.Result.Err)));
            Assert.That(computed.Sum(), Is.EqualTo(2 * Images(data).Count), "each image featurised by one process, in the original and the mirror view that automatic lever choice reads");
            Assert.That(train.ExitCode, Is.Zero, train.Err);
            foreach (var image in Images(data))
            {
                Assert.That(fromShards.Predict(image).Probabilities, Is.EqualTo(alone.Predict(image).Probabilities), image);
            }
        });

        var unset = CliProcess.Run(null, "featurize", data, "--shard", "4");
        Assert.Multiple(() =>
        {
            Assert.That(unset.ExitCode, Is.EqualTo(2));
            Assert.That(unset.Err, Does.Contain("JOB_COMPLETION_INDEX").And.Contain("--shard K/4"));
        });
    }
}
