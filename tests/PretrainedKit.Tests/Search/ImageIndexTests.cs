using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using PretrainedKit.Caching;
using PretrainedKit.Imaging;
using PretrainedKit.Models;
using PretrainedKit.Search;
using PretrainedKit.Training;
using PretrainedKit.Tests.Inspection;

namespace PretrainedKit.Tests.Search;

/// <summary>
/// Issue #16: embeddings are exactly the vector the head reads (scaled, L2-normalised); the index finds each image as
/// its own nearest neighbour, round-trips through its file, rejects corrupt files by the model-file rules, and adding
/// images equals building from scratch without embedding the old ones again.
/// </summary>
[Category("Slow")]
public class ImageIndexTests
{
    private string _data = null!;
    private string _pictures = null!;
    private List<string> _pictureFiles = null!;
    private string _bad = null!;
    private ImageClassifierModel _model = null!;
    private ImageEmbedder _embedder = null!;
    private ImageIndex _index = null!;

    [OneTimeSetUp]
    public async Task CreateOnce()
    {
        _data = SmallDataset.Create(6);
        _model = await ImageClassifier.Create().FromFolder(_data).WithSeed(3).WithAutomaticLevers(false).TrainAsync();
        _pictures = TestPaths.NewTempFolder("index");
        var random = new Random(16);
        _pictureFiles = [];
        foreach (var kind in new[] { "circles", "stripes", "squares" })
        {
            Directory.CreateDirectory(Path.Combine(_pictures, kind));
            for (var i = 0; i < 4; i++)
            {
                using var picture = InspectionTests.Picture(kind, random);
                var path = Path.Combine(_pictures, kind, $"{kind}-{i}.png");
                File.WriteAllBytes(path, TestImages.Png(picture));
                _pictureFiles.Add(path);
            }
        }

        _pictureFiles.Sort(StringComparer.Ordinal);
        _bad = Path.Combine(_pictures, "squares", "truncated.png");
        File.WriteAllBytes(_bad, File.ReadAllBytes(_pictureFiles[0])[..60]);
        File.WriteAllText(Path.Combine(_pictures, "notes.txt"), "not an image");
        _embedder = ImageEmbedder.Open(featureCache: FeatureCacheOptions.Disabled);
        _index = await ImageIndex.BuildAsync(_embedder, _pictures);
    }

    [OneTimeTearDown]
    public void DisposeAll()
    {
        _embedder.Dispose();
        _model.Dispose();
    }

    [Test]
    public void Embed_IsTheHeadsScaledInputWithLengthOne()
    {
        var image = Directory.GetFiles(_data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
        var raw = _model.ExtractFeatures(File.ReadAllBytes(image), image);
        var embedding = _model.Embed(image);
        var head = (LinearHeadDefinition)_model.Definition.Head;
        var scaled = head.Scaling.Apply(raw);
        var length = Math.Sqrt(scaled.Sum(v => (double)v * v));
        var logits = head.Logits(raw);
        Assert.Multiple(() =>
        {
            Assert.That(embedding, Has.Length.EqualTo(_model.EmbeddingDimension).And.Length.EqualTo(raw.Length));
            Assert.That(Math.Sqrt(embedding.Sum(v => (double)v * v)), Is.EqualTo(1).Within(1e-5));
            Assert.That(embedding, Is.EqualTo(scaled.Select(v => (float)(v / length)).ToArray()).Within(1e-6f), "the head's scaled input, divided by its length");

            // What the head consumes: its logits are b + |z| W e for the SAME |z| in every class, so e is the direction of its input.
            for (var c = 0; c < logits.Length; c++)
            {
                var fromEmbedding = head.Biases[c] + (length * head.Weights[c].Zip(embedding, (w, e) => (double)w * e).Sum());
                Assert.That(fromEmbedding, Is.EqualTo(logits[c]).Within(1e-3 * Math.Max(1, Math.Abs(logits[c]))), $"class {c}");
            }
        });
    }

    [Test]
    public async Task Embed_PathBytesStreamAndBatch_Agree()
    {
        var image = _pictureFiles[1];
        var fromPath = _model.Embed(image);
        using var stream = File.OpenRead(image);
        var batch = await _model.EmbedBatchAsync([image, _bad]);
        Assert.Multiple(() =>
        {
            Assert.That(_model.Embed(File.ReadAllBytes(image)), Is.EqualTo(fromPath));
            Assert.That(_model.Embed(stream), Is.EqualTo(fromPath));
            Assert.That(batch[0].Vector, Is.EqualTo(fromPath).Within(1e-4f), "the cached many-image pass gives the same embedding");
            Assert.That(batch[1].Vector, Is.Null);
            Assert.That(batch[1].Error!.Message, Does.Contain(_bad));
        });
    }

    [Test]
    public void Build_SkipsAndNamesBadImages_AndCountsOtherFiles()
    {
        Assert.Multiple(() =>
        {
            Assert.That(_index.Paths, Is.EqualTo(_pictureFiles));
            Assert.That(_index.Skipped.Select(s => s.Path), Is.EqualTo(new[] { _bad }));
            Assert.That(_index.IgnoredFileCount, Is.EqualTo(1), "notes.txt");
            Assert.That(_index.Dimension, Is.EqualTo(512));
            Assert.That(_index.EmbeddingId, Is.EqualTo(_embedder.Id));
        });
    }

    [Test]
    public void Search_EachIndexedImage_IsItsOwnNearestNeighbour()
    {
        foreach (var path in _pictureFiles)
        {
            var hits = _index.Search(_embedder, path, top: 3);
            Assert.That(hits[0].Path, Is.EqualTo(path));
            Assert.That(hits[0].Similarity, Is.EqualTo(1f).Within(1e-4f));
            Assert.That(hits.Select(h => h.Similarity), Is.Ordered.Descending);
            Assert.That(hits.Select(h => h.Rank), Is.EqualTo(new[] { 1, 2, 3 }));
        }

        Assert.That(_index.Search(_embedder.Embed(_pictureFiles[0]), top: 500), Has.Count.EqualTo(_pictureFiles.Count), "capped at the index size");
    }

    [Test]
    public void Search_WrongSpaceOrLength_Throws()
    {
        Assert.Multiple(() =>
        {
            Assert.That(() => _index.Search(_model.Embedder, _pictureFiles[0]), Throws.ArgumentException.With.Message.Contains("OpenEmbedder"));
            Assert.That(() => _index.Search(new float[10]), Throws.ArgumentException.With.Message.Contains("512"));
            Assert.That(() => _index.Search(new float[512], top: 0), Throws.TypeOf<ArgumentOutOfRangeException>());
        });
    }

    [Test]
    public void SaveLoad_RoundTrips_AndTheLoadedIndexOpensItsEmbedder()
    {
        var file = Path.Combine(TestPaths.NewTempFolder("index-file"), "pictures.pkindex");
        _index.Save(file);
        var loaded = ImageIndex.Load(file);
        using var embedder = loaded.OpenEmbedder(featureCache: FeatureCacheOptions.Disabled);
        Assert.Multiple(() =>
        {
            Assert.That(loaded.Paths, Is.EqualTo(_index.Paths));
            Assert.That(loaded.EmbeddingId, Is.EqualTo(_index.EmbeddingId));
            Assert.That(loaded.Vectors.ToArray(), Is.EqualTo(_index.Vectors.ToArray()));
            Assert.That(embedder.Id, Is.EqualTo(_embedder.Id));
            Assert.That(loaded.Search(embedder, _pictureFiles[4]), Is.EqualTo(_index.Search(_embedder, _pictureFiles[4])));
        });
    }

    [Test]
    public async Task SaveLoad_ModelIndex_KeepsTheHeadsScaling()
    {
        var index = await ImageIndex.BuildAsync(_model.Embedder, _pictureFiles.Take(4));
        var file = Path.Combine(TestPaths.NewTempFolder("index-model"), "model.pkindex");
        index.Save(file);
        using var embedder = ImageIndex.Load(file).OpenEmbedder(featureCache: FeatureCacheOptions.Disabled);
        Assert.Multiple(() =>
        {
            Assert.That(embedder.Id, Is.EqualTo(_model.Embedder.Id));
            Assert.That(embedder.Embed(_pictureFiles[0]), Is.EqualTo(_model.Embed(_pictureFiles[0])).Within(1e-6f));
        });
    }

    [Test]
    public async Task AddAsync_EqualsBuildingFromScratch_WithoutEmbeddingTheOldImagesAgain()
    {
        var folder = TestPaths.NewTempFolder("index-add");
        var files = _pictureFiles.Select((p, i) =>
        {
            var copy = Path.Combine(folder, $"{i:D2}.png");
            File.Copy(p, copy);
            return copy;
        }).ToList();
        var scratch = await ImageIndex.BuildAsync(_embedder, files);
        var first = await ImageIndex.BuildAsync(_embedder, files.Take(5));

        // An indexed image's file is gone: adding must not read it again.
        File.Delete(files[0]);
        var added = await first.AddAsync(_embedder, files.Skip(5).Prepend(files[0]));
        Assert.Multiple(() =>
        {
            Assert.That(added.Paths, Is.EqualTo(scratch.Paths));
            Assert.That(added.Vectors.ToArray(), Is.EqualTo(scratch.Vectors.ToArray()).Within(1e-6f));
            Assert.That(added.Skipped, Is.Empty, "the deleted image was already indexed and not read again");
            Assert.That(added.IgnoredFileCount, Is.EqualTo(1));
            Assert.That(first.Count, Is.EqualTo(5), "the old index is unchanged");
        });
    }

    [Test]
    public void Save_FailureBeforeRename_LeavesThePreviousFile()
    {
        var file = Path.Combine(TestPaths.NewTempFolder("index-atomic"), "a.pkindex");
        File.WriteAllText(file, "previous");
        Assert.That(() => ImageIndexFile.Save(file, _index, _ => throw new IOException("disk full")), Throws.TypeOf<IOException>().With.Message.Contains(file));
        Assert.That(File.ReadAllText(file), Is.EqualTo("previous"));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(file)!), Has.Length.EqualTo(1), "no temporary file left");
    }

    [Test]
    public void Load_CorruptFiles_AreRejectedNamingTheFile()
    {
        var folder = TestPaths.NewTempFolder("index-corrupt");
        var good = Path.Combine(folder, "good.pkindex");
        _index.Save(good);
        var bytes = File.ReadAllBytes(good);

        string Write(string name, byte[] content)
        {
            var path = Path.Combine(folder, name);
            File.WriteAllBytes(path, content);
            return path;
        }

        // Rewrites the manifest and recomputes the checksum: damage that only the later checks can catch.
        byte[] Resealed(Func<string, string> manifest, Action<byte[]>? numbers = null)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
            var json = manifest(Encoding.UTF8.GetString(bytes, 12, length));
            var jsonBytes = Encoding.UTF8.GetBytes(json);
            var rest = bytes[(12 + length)..^32];
            numbers?.Invoke(rest);
            var body = new byte[12 + jsonBytes.Length + rest.Length];
            bytes.AsSpan(0, 8).CopyTo(body);
            BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(8), jsonBytes.Length);
            jsonBytes.CopyTo(body, 12);
            rest.CopyTo(body, 12 + jsonBytes.Length);
            return [.. body, .. SHA256.HashData(body)];
        }

        var flipped = bytes.ToArray();
        flipped[bytes.Length / 2] ^= 0x40;
        var cases = new (string Name, byte[] Content, string Expected)[]
        {
            ("empty.pkindex", [], "empty"),
            ("text.pkindex", Encoding.UTF8.GetBytes("hello, this is not an index at all, not at all, really"), "magic"),
            ("flipped.pkindex", flipped, "checksum"),
            ("truncated.pkindex", bytes[..(bytes.Length - 100)], "checksum"),
            ("newer.pkindex", Resealed(m => m.Replace("\"formatVersion\":1", "\"formatVersion\":99", StringComparison.Ordinal)), "Update PretrainedKit"),
            ("count.pkindex", Resealed(m => m.Replace($"\"count\":{_index.Count}", $"\"count\":{_index.Count + 1}", StringComparison.Ordinal)), "sizes do not agree"),
            ("nan.pkindex", Resealed(m => m, r => BinaryPrimitives.WriteSingleLittleEndian(r.AsSpan(40), float.NaN)), "not a finite number"),
            ("length.pkindex", Resealed(m => m, r => BinaryPrimitives.WriteSingleLittleEndian(r.AsSpan(0), 5f)), "length 1"),
            ("relative.pkindex", Resealed(m => m.Replace(_pictures, "relative", StringComparison.Ordinal)), "not absolute"),
        };
        Assert.Multiple(() =>
        {
            foreach (var (name, content, expected) in cases)
            {
                var path = Write(name, content);
                Assert.That(() => ImageIndex.Load(path), Throws.TypeOf<ImageIndexFormatException>().With.Message.Contains(path).And.Message.Contains(expected), name);
            }

            Assert.That(() => ImageIndex.Load(Path.Combine(folder, "missing.pkindex")), Throws.TypeOf<FileNotFoundException>().With.Message.Contains("pretrainedkit index"));
            Assert.That(() => ImageIndex.Load(folder), Throws.TypeOf<FileNotFoundException>());
            Assert.That(ImageIndex.Load(good).Count, Is.EqualTo(_index.Count), "the intact file still loads");
        });
    }

    [Test]
    public void Embed_FromManyThreads_EqualsSequential()
    {
        var sequential = _pictureFiles.Select(_model.Embed).ToList();
        var parallel = new float[_pictureFiles.Count][];
        Parallel.For(0, _pictureFiles.Count * 3, new ParallelOptions { MaxDegreeOfParallelism = 6 }, i => parallel[i % _pictureFiles.Count] = _model.Embed(_pictureFiles[i % _pictureFiles.Count]));
        for (var i = 0; i < sequential.Count; i++)
        {
            Assert.That(parallel[i], Is.EqualTo(sequential[i]), _pictureFiles[i]);
        }
    }

    [Test]
    public async Task BuildAsync_ReportsProgress_AndStopsWhenCancelled()
    {
        var reports = new List<TrainingProgress>();
        var progress = new SynchronousProgress(reports.Add);
        var index = await ImageIndex.BuildAsync(_embedder, _pictureFiles.Take(3), progress);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        Assert.Multiple(() =>
        {
            Assert.That(index.Count, Is.EqualTo(3));
            Assert.That(reports.Where(r => r.Phase == TrainingPhase.Featurizing).Select(r => r.Completed).Max(), Is.EqualTo(3));
            Assert.That(() => ImageIndex.BuildAsync(_embedder, _pictureFiles, null, cancelled.Token), Throws.InstanceOf<OperationCanceledException>());
        });
    }

    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Test]
    public void Embed_AfterDispose_Throws()
    {
        var embedder = ImageEmbedder.Open(featureCache: FeatureCacheOptions.Disabled);
        embedder.Dispose();
        Assert.That(() => embedder.Embed(_pictureFiles[0]), Throws.TypeOf<ObjectDisposedException>());
    }
}
