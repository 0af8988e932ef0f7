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
        var entries = Directory.GetFiles(cacheDir, "*.bin", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        Assert.That(entries, Has.Length.EqualTo(Entries));
        foreach (var entry in entries[1..])
        {
            File.Copy(entries[0], entry, overwrite: true);
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
            Assert.That(entries.Select(File.ReadAllBytes).Distinct(new BytesComparer()).Count(), Is.EqualTo(Entries));
        });
    }

    [Test]
    public void TryRead_EntryRenamedToAnotherKey_IsAMissAndIsDeleted()
    {
        var cache = new FeatureCache(new FeatureCacheOptions { Directory = TestPaths.NewTempFolder("cache") });
        var a = FeatureCache.ComputeKey([1, 2, 3], "context");
        var b = FeatureCache.ComputeKey([4, 5, 6], "context");
        Assert.That(cache.TryWrite(a, Enumerable.Repeat(1f, 512).ToArray()), Is.True);
        Directory.CreateDirectory(Path.GetDirectoryName(cache.PathOf(b))!);
        File.Copy(cache.PathOf(a), cache.PathOf(b));

        Assert.Multiple(() =>
        {
            Assert.That(cache.TryRead(b, 512), Is.Null);
            Assert.That(File.Exists(cache.PathOf(b)), Is.False);
            Assert.That(cache.TryRead(a, 512), Is.EqualTo(Enumerable.Repeat(1f, 512)));
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

    private sealed class BytesComparer : IEqualityComparer<byte[]>
    {
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => obj.Length == 0 ? 0 : HashCode.Combine(obj.Length, obj[^1], obj[obj.Length / 2]);
    }
}
