using PretrainedKit.Featurization;
using PretrainedKit.Models;
using PretrainedKit.Tests.Featurization;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Imaging;

namespace PretrainedKit.Tests.Caching;

public class FeatureCacheTests
{
    private static TestSession _session = null!;
    private string[] _images = null!;

    [OneTimeSetUp]
    public void OpenBackbone()
    {
        _session = TestSession.Open(KnownBackbones.ResNet18);
        var data = SmallDataset.Create(3);
        _images = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
    }

    [OneTimeTearDown]
    public void CloseBackbone() => _session.Dispose();

    private static FeatureCache NewCache(long maxBytes = FeatureCacheOptions.DefaultMaxBytes) =>
        new(new FeatureCacheOptions { Directory = TestPaths.NewTempFolder("cache"), MaxBytes = maxBytes });

    private Task<FeatureSet> Featurize(FeatureCache? cache, ImagePreprocessingOptions? image = null) =>
        TestSession.RunAsync(_session, _images, image ?? ImagePreprocessingOptions.Default, null, CancellationToken.None, cache);

    [Test]
    public async Task RunAsync_WarmCache_ReturnsTheColdFeaturesBitForBit()
    {
        var cache = NewCache();
        var uncached = await Featurize(null);
        var cold = await Featurize(cache);
        var warm = await Featurize(cache);
        Assert.Multiple(() =>
        {
            Assert.That(cold.CacheHits, Is.Zero);
            Assert.That(warm.CacheHits, Is.EqualTo(_images.Length));
            Assert.That(cold.Features, Is.EqualTo(uncached.Features));
            Assert.That(warm.Features, Is.EqualTo(cold.Features));
        });
    }

    [Test]
    public async Task RunAsync_OtherPreprocessing_MissesTheCache()
    {
        var cache = NewCache();
        await Featurize(cache);
        var black = await Featurize(cache, new ImagePreprocessingOptions { Background = RgbColor.Black });
        var cropped = await Featurize(cache, new ImagePreprocessingOptions { ResizeMode = ResizeMode.CenterCrop });
        Assert.That(black.CacheHits, Is.Zero);
        Assert.That(cropped.CacheHits, Is.Zero);
    }

    [Test]
    public async Task TryRead_CorruptEntry_IsDetectedDeletedAndRecomputed()
    {
        var cache = NewCache();
        var cold = await Featurize(cache);
        var files = Directory.GetFiles(cache.Directory, "*.bin", SearchOption.AllDirectories);
        Assert.That(files, Has.Length.EqualTo(_images.Length));
        var flipped = files[0];
        var bytes = File.ReadAllBytes(flipped);
        bytes[40] ^= 0x01;
        File.WriteAllBytes(flipped, bytes);
        File.WriteAllBytes(files[1], bytes[..10]); // truncated
        File.WriteAllBytes(files[2], []); // empty

        var again = await Featurize(cache);
        Assert.That(again.CacheHits, Is.EqualTo(_images.Length - 3));
        Assert.That(again.Features, Is.EqualTo(cold.Features));
        Assert.That(File.ReadAllBytes(flipped), Is.Not.EqualTo(bytes), "the corrupt entry was replaced");
    }

    [Test]
    public async Task Trim_OverTheLimit_EvictsLeastRecentlyUsedFirst()
    {
        var cache = NewCache();
        await Featurize(cache);
        var entries = new DirectoryInfo(cache.Directory).GetFiles("*.bin", SearchOption.AllDirectories);
        var size = entries[0].Length;
        var oldest = entries.OrderBy(f => f.FullName, StringComparer.Ordinal).ToList();
        for (var i = 0; i < oldest.Count; i++)
        {
            File.SetLastWriteTimeUtc(oldest[i].FullName, new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddMinutes(i));
        }

        var bounded = new FeatureCache(cache.Options with { MaxBytes = 4 * size });
        var deleted = bounded.Trim();
        Assert.Multiple(() =>
        {
            Assert.That(deleted, Is.EqualTo(entries.Length - 3), "evicted down to 90 % of the limit: 3 entries of 4 fit");
            Assert.That(bounded.GetSize(), Is.LessThanOrEqualTo((long)(4 * size * FeatureCache.TrimTarget)));
            Assert.That(File.Exists(oldest[0].FullName), Is.False, "the least recently used entry went first");
            Assert.That(File.Exists(oldest[^1].FullName), Is.True, "the most recently used entry stayed");
        });
    }

    [Test]
    public void TryRead_StaleStamp_IsRefreshedButARecentOneIsNotRewritten()
    {
        var cache = NewCache();
        var features = Enumerable.Range(0, 8).Select(i => i * 0.5f).ToArray();
        var stale = FeatureCache.ComputeKey([1, 2, 3], "context");
        var recent = FeatureCache.ComputeKey([4, 5, 6], "context");
        Assert.That(cache.TryWrite(stale, features) && cache.TryWrite(recent, features), Is.True);
        var old = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var recently = DateTime.UtcNow - (FeatureCache.RecencyResolution / 2);
        File.SetLastWriteTimeUtc(cache.PathOf(stale), old);
        File.SetLastWriteTimeUtc(cache.PathOf(recent), recently);

        var before = DateTime.UtcNow.AddSeconds(-1);
        Assert.Multiple(() =>
        {
            Assert.That(cache.TryRead(stale, features.Length), Is.EqualTo(features));
            Assert.That(cache.TryRead(recent, features.Length), Is.EqualTo(features));
            Assert.That(File.GetLastWriteTimeUtc(cache.PathOf(stale)), Is.GreaterThanOrEqualTo(before), "a read marks a stale entry as recently used");
            Assert.That(File.GetLastWriteTimeUtc(cache.PathOf(recent)), Is.EqualTo(recently).Within(TimeSpan.FromMilliseconds(1)), "an entry used within the resolution is not rewritten");
        });
    }

    [Test]
    public void TryRead_EntryOfAnotherLength_IsAMissAndDeleted()
    {
        var cache = NewCache();
        var key = FeatureCache.ComputeKey([7, 8, 9], "context");
        Assert.That(cache.TryWrite(key, new float[8]), Is.True);
        Assert.Multiple(() =>
        {
            Assert.That(cache.TryRead(key, 16), Is.Null);
            Assert.That(File.Exists(cache.PathOf(key)), Is.False);
        });
    }

    [Test]
    public void Trim_WithinTheLimit_DeletesNothingAndEstimatesTheSizeFromASample()
    {
        var cache = NewCache(maxBytes: long.MaxValue);
        var features = new float[16];
        for (var i = 0; i < 5000; i++)
        {
            Assert.That(cache.TryWrite(FeatureCache.ComputeKey(BitConverter.GetBytes(i), "sample"), features), Is.True);
        }

        var exact = cache.GetSize();
        var estimate = cache.EstimateSize(new Random(1));
        var entrySize = exact / 5000;
        var nearLimit = new FeatureCache(cache.Options with { MaxBytes = exact + entrySize });
        Assert.Multiple(() =>
        {
            Assert.That(estimate, Is.Not.EqualTo(exact), "5,000 entries over 256 folders: the estimate comes from a sample, not a full listing");
            Assert.That((double)estimate, Is.EqualTo(exact).Within(15).Percent, "keys spread evenly over the folders");
            Assert.That(cache.Trim(), Is.Zero);
            Assert.That(nearLimit.Trim(), Is.Zero, "within the limit (the estimate is confirmed by a full listing near it)");
            Assert.That(cache.GetSize(), Is.EqualTo(exact));
        });
    }

    [Test]
    public async Task Clear_RemovesEveryEntry()
    {
        var cache = NewCache();
        await Featurize(cache);
        Assert.That(cache.Clear(), Is.EqualTo(_images.Length));
        Assert.That(cache.GetSize(), Is.Zero);
    }

    [Test]
    public void ComputeKeys_HashesOnce_AndEqualsComputeKeyPerContext()
    {
        byte[] bytes = [1, 2, 3, 4];
        string[] contexts = ["a", "a|view=Mirror", "b"];
        var keys = FeatureCache.ComputeKeys(bytes, contexts);
        Assert.That(keys, Is.EqualTo(contexts.Select(c => FeatureCache.ComputeKey(bytes, c))));
        Assert.That(keys.Distinct().Count(), Is.EqualTo(3));
    }

    [Test]
    public void TryWrite_ConcurrentWritersOfOneKey_NeverLeaveATornEntry()
    {
        var cache = NewCache();
        var key = FeatureCache.ComputeKey([1, 2, 3], "test");
        var vectors = Enumerable.Range(0, 8).Select(t => Enumerable.Repeat((float)t, 512).ToArray()).ToArray();
        var torn = 0;
        Parallel.For(0, 400, i =>
        {
            cache.TryWrite(key, vectors[i % 8]);
            var read = cache.TryRead(key, 512);
            if (read is not null && read.Distinct().Count() != 1)
            {
                Interlocked.Increment(ref torn);
            }
        });
        Assert.That(torn, Is.Zero);
        Assert.That(cache.TryRead(key, 512), Is.Not.Null);
        Assert.That(Directory.GetFiles(cache.Directory, "*.tmp", SearchOption.AllDirectories), Is.Empty);
    }

    [Test]
    public void ResolveDirectory_DefaultsAndOverrides()
    {
        Assert.That(new FeatureCacheOptions { Directory = "relative/dir" }.ResolveDirectory(), Is.EqualTo(Path.GetFullPath("relative/dir")));
        Assert.That(FeatureCacheOptions.Default.Enabled, Is.True);
        Assert.That(FeatureCacheOptions.Default.MaxBytes, Is.EqualTo(1L << 30));
        Assert.That(FeatureCacheOptions.Disabled.Enabled, Is.False);
    }
}

public class CachedTrainingTests
{
    [Test]
    public async Task TrainAsync_FromCachedFeatures_EqualsTheColdModel()
    {
        var data = SmallDataset.Create(5);
        var cacheDir = TestPaths.NewTempFolder("cache");
        using var cold = await ImageClassifier.Create().FromFolder(data).WithFeatureCacheDirectory(cacheDir).TrainAsync();
        using var warm = await ImageClassifier.Create().FromFolder(data).WithFeatureCacheDirectory(cacheDir).TrainAsync();
        using var otherHead = await ImageClassifier.Create().FromFolder(data).WithFeatureCacheDirectory(cacheDir).WithL2Regularization(1f).TrainAsync();
        using var uncached = await ImageClassifier.Create().FromFolder(data).WithFeatureCache(FeatureCacheOptions.Disabled).TrainAsync();
        Assert.Multiple(() =>
        {
            Assert.That(cold.TrainingReport!.FeatureCacheHits, Is.Zero);
            Assert.That(warm.TrainingReport!.FeatureCacheHits, Is.EqualTo(30), "15 images, each with the original and the mirror view that automatic choice needs");
            Assert.That(otherHead.TrainingReport!.FeatureCacheHits, Is.EqualTo(30), "other head settings reuse the features");
            Assert.That(warm.Definition.Head.Weights, Is.EqualTo(cold.Definition.Head.Weights));
            Assert.That(warm.Definition.Head.Biases, Is.EqualTo(cold.Definition.Head.Biases));
            Assert.That(uncached.Definition.Head.Weights, Is.EqualTo(cold.Definition.Head.Weights));
            Assert.That(uncached.TrainingReport!.FeatureCacheHits, Is.Zero);
        });
    }
}
