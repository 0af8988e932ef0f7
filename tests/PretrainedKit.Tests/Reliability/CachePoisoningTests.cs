using PretrainedKit.Caching;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// A shared feature cache folder is writable by others: one valid entry copied over every other entry must not reach
/// training (issue #19: it passed the checksum and took test accuracy from 0.865 to 0.405). Each entry is bound to its key.
/// </summary>
public class CachePoisoningTests
{
    [Test]
    public async Task TrainAsync_OneEntryCopiedOverAllOthers_RecomputesThemAndEqualsAnUncachedModel()
    {
        var data = SmallDataset.Create(5);
        var test = SmallDataset.Create(2);
        var cacheDir = TestPaths.NewTempFolder("poisoned-cache");
        using (var cold = await ImageClassifier.Create().FromFolder(data).WithFeatureCacheDirectory(cacheDir).TrainAsync())
        {
            Assert.That(cold.TrainingReport!.FeatureCacheHits, Is.Zero);
        }

        const int Entries = 30; // 15 images, each with the original and the mirror view that automatic lever choice computes.
        var probe = new FeatureCache(new FeatureCacheOptions { Directory = cacheDir }, isolated: true);
        var records = Caching.FeatureCacheTests.IndexRecords(probe);
        Assert.That(records, Has.Count.EqualTo(Entries));
        var pack = Directory.GetFiles(probe.PacksDirectory, "*.pack").Single();
        var first = new byte[records[1].Offset - records[0].Offset];
        using (var handle = File.OpenHandle(pack, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
        {
            RandomAccess.Read(handle, first, records[0].Offset);
            foreach (var (_, offset) in records.Skip(1))
            {
                RandomAccess.Write(handle, first, offset); // The first entry copied over every other one, in place.
            }
        }

        using var poisoned = await ImageClassifier.Create().FromFolder(data).WithFeatureCacheDirectory(cacheDir).TrainAsync();
        using var uncached = await ImageClassifier.Create().FromFolder(data).WithFeatureCache(FeatureCacheOptions.Disabled).TrainAsync();
        using var again = await ImageClassifier.Create().FromFolder(data).WithFeatureCacheDirectory(cacheDir).TrainAsync();
        var images = Directory.GetFiles(test, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(poisoned.TrainingReport!.FeatureCacheHits, Is.EqualTo(1), "only the copied entry, under its own name, is used");
            Assert.That(poisoned.Definition.Head.Weights, Is.EqualTo(uncached.Definition.Head.Weights));
            Assert.That(poisoned.Definition.Head.Biases, Is.EqualTo(uncached.Definition.Head.Biases));
            Assert.That(images.Select(i => poisoned.Predict(i, 3).Probabilities), Is.EqualTo(images.Select(i => uncached.Predict(i, 3).Probabilities)));
            Assert.That(again.TrainingReport!.FeatureCacheHits, Is.EqualTo(Entries), "the recomputed entries replaced the copies");
            Assert.That(new FeatureCache(new FeatureCacheOptions { Directory = cacheDir }, isolated: true).GetEntryCount(), Is.EqualTo(Entries));
        });
    }

    [Test]
    public void TryRead_IndexRecordFilingAnEntryUnderAnotherKey_IsAMiss()
    {
        var options = new FeatureCacheOptions { Directory = TestPaths.NewTempFolder("cache") };
        var writer = new FeatureCache(options, isolated: true);
        var a = FeatureCache.ComputeKey([1, 2, 3], "context");
        var b = FeatureCache.ComputeKey([4, 5, 6], "context");
        Assert.That(writer.TryWrite(a, Enumerable.Repeat(1f, 512).ToArray()), Is.True);
        writer.CloseWriter();
        var idx = Directory.GetFiles(writer.PacksDirectory, "*.idx").Single();
        var forged = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(b)).Concat(BitConverter.GetBytes(0L)).ToArray();
        File.AppendAllBytes(idx, forged); // b's name on a's entry

        var reader = new FeatureCache(options, isolated: true);
        Assert.Multiple(() =>
        {
            Assert.That(reader.TryRead(b, 512), Is.Null);
            Assert.That(reader.TryRead(a, 512), Is.EqualTo(Enumerable.Repeat(1f, 512)));
        });
    }

    [Test]
    public void TryRead_EarlierStoreEntryRenamedToAnotherKey_IsAMissAndIsDeleted()
    {
        var cache = new FeatureCache(new FeatureCacheOptions { Directory = TestPaths.NewTempFolder("cache") }, isolated: true);
        var a = FeatureCache.ComputeKey([1, 2, 3], "context");
        var b = FeatureCache.ComputeKey([4, 5, 6], "context");
        Directory.CreateDirectory(Path.GetDirectoryName(cache.PathOf(b))!);
        File.WriteAllBytes(cache.PathOf(b), Caching.FeatureCacheTests.LegacyEntry(a, Enumerable.Repeat(1f, 512).ToArray()));

        Assert.Multiple(() =>
        {
            Assert.That(cache.TryRead(b, 512), Is.Null);
            Assert.That(File.Exists(cache.PathOf(b)), Is.False);
        });
    }

    [Test]
    public void TryRead_EntryOfTheFirstFormat_IsAMiss()
    {
        // Format 1: "PKFC0001", the count, the features, SHA-256 of the rest; valid then, but not bound to its key.
        var cache = new FeatureCache(new FeatureCacheOptions { Directory = TestPaths.NewTempFolder("cache") });
        var key = FeatureCache.ComputeKey([1, 2, 3], "context");
        var body = new byte[12 + (4 * 4)];
        "PKFC0001"u8.CopyTo(body);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(8), 4);
        var entry = body.Concat(System.Security.Cryptography.SHA256.HashData(body)).ToArray();
        Directory.CreateDirectory(Path.GetDirectoryName(cache.PathOf(key))!);
        File.WriteAllBytes(cache.PathOf(key), entry);

        Assert.That(cache.TryRead(key, 4), Is.Null);
    }
}
