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

    /// <summary>A pack's index records: (key hash, offset), in file order.</summary>
    internal static List<(byte[] KeyHash, long Offset)> IndexRecords(FeatureCache cache) =>
        Directory.GetFiles(cache.PacksDirectory, "*.idx").Order(StringComparer.Ordinal).SelectMany(f =>
        {
            var bytes = File.ReadAllBytes(f);
            return Enumerable.Range(0, bytes.Length / 40).Select(i => (bytes[(i * 40)..((i * 40) + 32)], BitConverter.ToInt64(bytes, (i * 40) + 32)));
        }).ToList();

    private static void Overwrite(string path, long offset, byte[] bytes)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        RandomAccess.Write(handle, bytes, offset);
    }

    /// <summary>An entry of the earlier one-file-per-entry store, as that store wrote it.</summary>
    internal static byte[] LegacyEntry(string key, float[] features)
    {
        var body = new byte[12 + 32 + (4 * features.Length)];
        "PKFC0002"u8.CopyTo(body);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(8), features.Length);
        System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)).CopyTo(body, 12);
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(features.AsSpan()).CopyTo(body.AsSpan(44));
        return [.. body, .. System.Security.Cryptography.SHA256.HashData(body)];
    }

    /// <summary>A cache folder written by <paramref name="writers"/> finished processes, each with its own pack of <paramref name="perWriter"/> entries.</summary>
    private static (FeatureCacheOptions Options, List<string[]> Keys) Written(int writers, int perWriter, long maxBytes = FeatureCacheOptions.DefaultMaxBytes)
    {
        var options = new FeatureCacheOptions { Directory = TestPaths.NewTempFolder("cache"), MaxBytes = maxBytes };
        var keys = new List<string[]>();
        for (var w = 0; w < writers; w++)
        {
            var writer = new FeatureCache(options, isolated: true);
            var own = Enumerable.Range(0, perWriter).Select(i => FeatureCache.ComputeKey(BitConverter.GetBytes((w * 1000) + i), "test")).ToArray();
            foreach (var key in own)
            {
                Assert.That(writer.TryWrite(key, Enumerable.Repeat((float)w, 16).ToArray()), Is.True);
            }

            writer.CloseWriter();
            keys.Add(own);
        }

        return (options, keys);
    }

    [Test]
    public async Task TryRead_CorruptEntry_IsDetectedAndRecomputed()
    {
        // Each step as a separate process would see it (a store of its own that loads the index from the disk).
        var options = new FeatureCacheOptions { Directory = TestPaths.NewTempFolder("cache") };
        var first = new FeatureCache(options, isolated: true);
        var cold = await Featurize(first);
        first.CloseWriter();
        var records = IndexRecords(first);
        Assert.That(records, Has.Count.EqualTo(_images.Length));
        var pack = Directory.GetFiles(first.PacksDirectory, "*.pack").Single();
        Overwrite(pack, records[0].Offset + 60, [0xFF]); // a feature flipped
        Overwrite(pack, records[1].Offset + 12, new byte[32]); // the key hash zeroed
        var idx = Directory.GetFiles(first.PacksDirectory, "*.idx").Single();
        Overwrite(idx, (2 * 40) + 32, BitConverter.GetBytes(records[3].Offset)); // an index record pointing at another entry

        var second = new FeatureCache(options, isolated: true);
        var again = await Featurize(second);
        second.CloseWriter();
        var fresh = await Featurize(new FeatureCache(options, isolated: true));
        Assert.Multiple(() =>
        {
            Assert.That(again.CacheHits, Is.EqualTo(_images.Length - 3));
            Assert.That(again.Features, Is.EqualTo(cold.Features));
            Assert.That(fresh.CacheHits, Is.EqualTo(_images.Length), "the recomputed entries were appended, and a later process finds them");
            Assert.That(fresh.Features, Is.EqualTo(cold.Features));
        });
    }

    [Test]
    public void TryRead_TornTailsAndForeignFiles_AreMissesNeverErrors()
    {
        var (options, keys) = Written(writers: 1, perWriter: 3);
        var packs = new FeatureCache(options).PacksDirectory;
        var idx = Directory.GetFiles(packs, "*.idx").Single();
        File.AppendAllText(Path.ChangeExtension(idx, ".pack"), "half an entry");
        File.AppendAllBytes(idx, new byte[25]); // half an index record
        File.WriteAllBytes(Path.Combine(packs, "stray.idx"), new byte[40]); // an index whose pack is missing
        var reader = new FeatureCache(options, isolated: true);
        Assert.Multiple(() =>
        {
            Assert.That(keys[0].Select(k => reader.TryRead(k, 16)), Has.All.EqualTo(Enumerable.Repeat(0f, 16)));
            Assert.That(reader.TryRead(FeatureCache.ComputeKey([9], "test"), 16), Is.Null);
            Assert.That(reader.GetEntryCount(), Is.EqualTo(4), "three entries and the stray record");
        });
    }

    [Test]
    public void TryRead_AnotherProcesssEntries_AreFoundWithoutRecomputing()
    {
        var (options, keys) = Written(writers: 4, perWriter: 5);
        var reader = new FeatureCache(options, isolated: true);
        Assert.Multiple(() =>
        {
            for (var w = 0; w < 4; w++)
            {
                Assert.That(keys[w].Select(k => reader.TryRead(k, 16)), Has.All.EqualTo(Enumerable.Repeat((float)w, 16)), $"writer {w}");
            }

            Assert.That(Directory.GetFiles(reader.PacksDirectory, "*.pack"), Has.Length.EqualTo(4), "one pack per writing process");
            Assert.That(reader.GetEntryCount(), Is.EqualTo(20));
        });
    }

    [Test]
    public void Trim_OverTheLimit_EvictsLeastRecentlyUsedPacksFirst_AndKeepsWhatThisProcessUsed()
    {
        var (options, keys) = Written(writers: 4, perWriter: 10);
        var packs = new FeatureCache(options).PacksDirectory;
        var byWriter = keys.Select(k => Directory.GetFiles(packs, "*.idx").Single(f => IndexRecordsOf(f).Contains(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(k[0])))))).ToList();
        for (var w = 0; w < 4; w++)
        {
            // Writer 0's pack used least recently; all within the recency resolution, so the read below does not re-stamp it.
            File.SetLastWriteTimeUtc(byWriter[w], DateTime.UtcNow - (FeatureCache.RecencyResolution / 2) + TimeSpan.FromSeconds(w));
        }

        var packBytes = new FileInfo(byWriter[0]).Length + new FileInfo(Path.ChangeExtension(byWriter[0], ".pack")).Length;
        var bounded = new FeatureCache(options with { MaxBytes = (packBytes * 5) / 2 }, isolated: true);
        Assert.That(bounded.TryRead(keys[0][0], 16), Is.Not.Null, "this process uses one entry of the oldest pack");
        var deleted = bounded.Trim();
        var after = new FeatureCache(options, isolated: true);
        Assert.Multiple(() =>
        {
            Assert.That(deleted, Is.EqualTo(19), "two packs of 10 evicted (to 90 % of 2.5 packs), the used entry kept");
            Assert.That(bounded.GetSize(), Is.LessThanOrEqualTo((long)(bounded.Options.MaxBytes * FeatureCache.TrimTarget)));
            Assert.That(File.Exists(byWriter[0]) || File.Exists(byWriter[1]), Is.False, "the two least recently used packs went");
            Assert.That(File.Exists(byWriter[2]) && File.Exists(byWriter[3]), Is.True, "the two most recently used stayed");
            Assert.That(after.TryRead(keys[0][0], 16), Is.EqualTo(Enumerable.Repeat(0f, 16)), "the entry this process used survived its trim");
            Assert.That(after.TryRead(keys[0][1], 16), Is.Null);
            Assert.That(keys[3].Select(k => after.TryRead(k, 16)), Has.All.Not.Null);
        });
    }

    private static List<string> IndexRecordsOf(string idx)
    {
        var bytes = File.ReadAllBytes(idx);
        return Enumerable.Range(0, bytes.Length / 40).Select(i => Convert.ToHexString(bytes, i * 40, 32)).ToList();
    }

    [Test]
    public void Trim_NeverRemovesAPackThatALiveProcessIsWriting()
    {
        var options = new FeatureCacheOptions { Directory = TestPaths.NewTempFolder("cache"), MaxBytes = 1 };
        var live = new FeatureCache(options, isolated: true);
        var key = FeatureCache.ComputeKey([1], "test");
        Assert.That(live.TryWrite(key, new float[16]), Is.True);
        var other = new FeatureCache(options, isolated: true);
        Assert.Multiple(() =>
        {
            Assert.That(other.Trim(), Is.Zero, "the only pack is held by a live writer");
            Assert.That(other.TryRead(key, 16), Is.Not.Null);
        });
        live.CloseWriter();
        Assert.That(other.Trim(), Is.EqualTo(1), "once the writer is gone, the pack can go");
    }

    [Test]
    public void Trim_ManySmallPacks_AreMergedAndEveryEntryStaysReadable()
    {
        var (options, keys) = Written(writers: PackStore.MaxPacks + 6, perWriter: 2);
        var merger = new FeatureCache(options, isolated: true);
        Assert.That(merger.Trim(), Is.Zero, "within the limit: nothing evicted");
        merger.CloseWriter();
        var reader = new FeatureCache(options, isolated: true);
        Assert.Multiple(() =>
        {
            Assert.That(Directory.GetFiles(reader.PacksDirectory, "*.idx").Length, Is.LessThanOrEqualTo((PackStore.MaxPacks / 2) + 1));
            Assert.That(keys.SelectMany(k => k).Select(k => reader.TryRead(k, 16)), Has.All.Not.Null);
            Assert.That(reader.GetEntryCount(), Is.EqualTo(2 * (PackStore.MaxPacks + 6)));
        });
    }

    [Test]
    public void TryRead_ReadMarksAStalePackAsUsed_ButARecentOneIsNotRewritten()
    {
        var (options, keys) = Written(writers: 2, perWriter: 1);
        var packs = new FeatureCache(options).PacksDirectory;
        var indexes = keys.Select(k => Directory.GetFiles(packs, "*.idx").Single(f => IndexRecordsOf(f).Contains(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(k[0])))))).ToList();
        var old = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var recently = DateTime.UtcNow - (FeatureCache.RecencyResolution / 2);
        File.SetLastWriteTimeUtc(indexes[0], old);
        File.SetLastWriteTimeUtc(indexes[1], recently);

        var reader = new FeatureCache(options, isolated: true);
        var before = DateTime.UtcNow.AddSeconds(-1);
        Assert.Multiple(() =>
        {
            Assert.That(reader.TryRead(keys[0][0], 16), Is.Not.Null);
            Assert.That(reader.TryRead(keys[1][0], 16), Is.Not.Null);
            Assert.That(File.GetLastWriteTimeUtc(indexes[0]), Is.GreaterThanOrEqualTo(before), "a read marks a stale pack as recently used");
            Assert.That(File.GetLastWriteTimeUtc(indexes[1]), Is.EqualTo(recently).Within(TimeSpan.FromMilliseconds(1)), "a pack used within the resolution is not rewritten");
        });
    }

    [Test]
    public void TryRead_EntryOfAnotherLength_IsAMiss()
    {
        var cache = NewCache();
        var key = FeatureCache.ComputeKey([7, 8, 9], "context");
        Assert.That(cache.TryWrite(key, new float[8]), Is.True);
        Assert.That(cache.TryRead(key, 16), Is.Null);
    }

    [Test]
    public void EarlierStore_EntriesAreRead_AndGoFirstWhenTrimmed()
    {
        var options = new FeatureCacheOptions { Directory = TestPaths.NewTempFolder("cache") };
        var cache = new FeatureCache(options, isolated: true);
        var legacy = Enumerable.Range(0, 3).Select(i => FeatureCache.ComputeKey(BitConverter.GetBytes(i), "old")).ToArray();
        foreach (var key in legacy)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(cache.PathOf(key))!);
            File.WriteAllBytes(cache.PathOf(key), LegacyEntry(key, Enumerable.Repeat(2f, 16).ToArray()));
        }

        var fresh = new FeatureCache(options, isolated: true);
        var packed = FeatureCache.ComputeKey([42], "new");
        Assert.That(fresh.TryWrite(packed, new float[16]), Is.True);
        fresh.CloseWriter();
        var legacyBytes = new FileInfo(cache.PathOf(legacy[0])).Length * 3;
        var bounded = new FeatureCache(options with { MaxBytes = (fresh.GetSize() - legacyBytes) * 5 / 3 }, isolated: true); // over with the old entries, within without
        Assert.Multiple(() =>
        {
            Assert.That(legacy.Select(k => fresh.TryRead(k, 16)), Has.All.EqualTo(Enumerable.Repeat(2f, 16)), "entries of the one-file-per-entry store are still read");
            Assert.That(fresh.GetEntryCount(), Is.EqualTo(4));
            Assert.That(bounded.Trim(), Is.EqualTo(3), "over the limit: the earlier store's entries go first");
            Assert.That(bounded.TryRead(packed, 16), Is.Not.Null, "the pack stayed");
        });
    }

    [Test]
    public void EarlierStore_SizeIsEstimatedFromASample()
    {
        var options = new FeatureCacheOptions { Directory = TestPaths.NewTempFolder("cache"), MaxBytes = long.MaxValue };
        var cache = new FeatureCache(options, isolated: true);
        for (var i = 0; i < 5000; i++)
        {
            var key = FeatureCache.ComputeKey(BitConverter.GetBytes(i), "sample");
            Directory.CreateDirectory(Path.GetDirectoryName(cache.PathOf(key))!);
            File.WriteAllBytes(cache.PathOf(key), LegacyEntry(key, new float[16]));
        }

        var exact = cache.GetSize();
        var estimate = cache.EstimateLegacySize(new Random(1));
        Assert.Multiple(() =>
        {
            Assert.That(estimate, Is.Not.EqualTo(exact), "5,000 entries over 256 folders: the estimate comes from a sample, not a full listing");
            Assert.That((double)estimate, Is.EqualTo(exact).Within(15).Percent, "keys spread evenly over the folders");
            Assert.That(cache.Trim(), Is.Zero);
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
        Assert.That(cache.GetEntryCount(), Is.Zero);
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
