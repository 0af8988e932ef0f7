using System.Collections.Concurrent;
using System.IO.Compression;
using PretrainedKit.Imaging;
using PretrainedKit.Serialization;

namespace PretrainedKit.Tests.Prediction;

public class ModelTests
{
    private string _data = null!;
    private ImageClassifierModel _model = null!;
    private string[] _images = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        _data = SmallDataset.Create(8);
        _model = await ImageClassifier.Create().FromFolder(_data).WithSeed(2).TrainAsync();
        _images = Directory.GetFiles(_data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    [Test]
    public void Predict_ReturnsTopKInOrderAndProbabilitiesSumToOne()
    {
        var p = _model.Predict(_images[0], topK: 2);
        Assert.Multiple(() =>
        {
            Assert.That(p.TopK, Has.Count.EqualTo(2));
            Assert.That(p.TopK.Select(t => t.Probability), Is.Ordered.Descending);
            Assert.That(p.Probabilities.Sum(), Is.EqualTo(1f).Within(1e-5f));
            Assert.That(p.Label, Is.EqualTo(p.TopK[0].Label));
            Assert.That(p.Path, Is.EqualTo(_images[0]));
            Assert.That(_model.Predict(_images[0], topK: 50).TopK, Has.Count.EqualTo(3), "capped at the class count");
        });
    }

    [Test]
    public void Predict_PathStreamAndBytes_GiveTheSameProbabilities()
    {
        var fromPath = _model.Predict(_images[5]);
        using var stream = File.OpenRead(_images[5]);
        var fromStream = _model.Predict(stream);
        var fromBytes = _model.Predict(File.ReadAllBytes(_images[5]));
        Assert.That(fromStream.Probabilities, Is.EqualTo(fromPath.Probabilities));
        Assert.That(fromBytes.Probabilities, Is.EqualTo(fromPath.Probabilities));
    }

    [Test]
    public void Predict_OnTrainingColours_IsRight()
    {
        var right = _images.Count(i => _model.Predict(i).Label == Path.GetFileName(Path.GetDirectoryName(i)));
        Assert.That(right, Is.EqualTo(_images.Length), "three well-separated colour classes are learnt perfectly");
    }

    [Test]
    public void PredictBatch_EqualsSinglePredictions()
    {
        var batch = _model.PredictBatch(_images).Predictions();
        for (var i = 0; i < _images.Length; i++)
        {
            Assert.That(batch[i].Probabilities, Is.EqualTo(_model.Predict(_images[i]).Probabilities), _images[i]);
        }
    }

    [Test]
    public void Predict_BadImage_ThrowsInvalidImageExceptionNamingTheFile()
    {
        var folder = TestPaths.NewTempFolder();
        var bad = Path.Combine(folder, "bad.jpg");
        File.WriteAllText(bad, "not an image");
        Assert.That(() => _model.Predict(bad), Throws.TypeOf<InvalidImageException>().With.Message.Contains(bad));
        Assert.That(_model.PredictBatch([_images[0], bad]).Select(r => r.Error?.Path), Is.EqualTo(new[] { null, bad }), "the batch goes on past a bad image and names it");
        Assert.That(() => _model.Predict(Path.Combine(folder, "missing.png")), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.Unreadable));
    }

    [Test]
    public void Predict_FromEightThreads_EqualsSequentialResults()
    {
        var sequential = _images.Select(i => _model.Predict(i).Probabilities.ToArray()).ToArray();
        var concurrent = new ConcurrentDictionary<(int Thread, int Image), float[]>();
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            for (var round = 0; round < 1; round++)
            {
                for (var i = 0; i < _images.Length; i++)
                {
                    var index = (i + (t * 5)) % _images.Length;
                    concurrent[(t, index)] = _model.Predict(_images[index]).Probabilities.ToArray();
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.That(concurrent, Has.Count.EqualTo(8 * _images.Length));
        foreach (var ((_, image), probabilities) in concurrent)
        {
            Assert.That(probabilities, Is.EqualTo(sequential[image]));
        }
    }

    [Test]
    public void SaveAndLoad_ReloadedModel_PredictsExactlyTheSame()
    {
        var path = Path.Combine(TestPaths.NewTempFolder(), "model.pkmodel");
        _model.Save(path);
        using var loaded = ImageClassifier.Load(path);
        Assert.Multiple(() =>
        {
            Assert.That(loaded.Classes, Is.EqualTo(_model.Classes));
            Assert.That(loaded.ImageOptions, Is.EqualTo(_model.ImageOptions));
            Assert.That(loaded.TrainingReport, Is.Null);
            foreach (var image in _images)
            {
                Assert.That(loaded.Predict(image).Probabilities, Is.EqualTo(_model.Predict(image).Probabilities), image);
            }
        });
    }

    [Test]
    public void Save_FailureBeforeRename_LeavesTheOldFileIntactAndNoTempFile()
    {
        var folder = TestPaths.NewTempFolder();
        var path = Path.Combine(folder, "model.pkmodel");
        _model.Save(path);
        var before = File.ReadAllBytes(path);
        Assert.That(() => _model.SaveCore(path, _ => throw new IOException("disk full (simulated)")), Throws.TypeOf<IOException>().With.Message.Contains(path).And.Message.Contains("unchanged"));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(Directory.GetFiles(folder), Is.EqualTo(new[] { path }), "the temporary file was removed");
        using var loaded = ImageClassifier.Load(path);
        Assert.That(loaded.Classes, Is.EqualTo(_model.Classes));
    }

    [Test]
    public void Save_IntoMissingFolder_ThrowsNamingIt()
    {
        var path = Path.Combine(TestPaths.NewTempFolder(), "nope", "model.pkmodel");
        Assert.That(() => _model.Save(path), Throws.TypeOf<DirectoryNotFoundException>().With.Message.Contains(Path.GetDirectoryName(path)!));
    }

    [Test]
    public void Load_CorruptFiles_ThrowModelFormatExceptionNamingTheFile()
    {
        var folder = TestPaths.NewTempFolder();
        var good = Path.Combine(folder, "good.pkmodel");
        _model.Save(good);
        var bytes = File.ReadAllBytes(good);

        var cases = new Dictionary<string, byte[]>
        {
            ["random.pkmodel"] = Enumerable.Range(0, 500).Select(i => (byte)(i * 7)).ToArray(),
            ["truncated.pkmodel"] = bytes[..(bytes.Length / 2)],
            ["empty.pkmodel"] = [],
            ["head-edited.pkmodel"] = Rewrite(bytes, "head.bin", b => { b[100] ^= 0xFF; return b; }),
            ["future.pkmodel"] = Rewrite(bytes, "manifest.json", b => ReplaceText(b, "\"formatVersion\": 1", "\"formatVersion\": 99")),
            ["other-backbone.pkmodel"] = Rewrite(bytes, "manifest.json", b => ReplaceText(b, "resnet18-imagenet", "resnet50-imagenet")),
            ["other-weights.pkmodel"] = Rewrite(bytes, "manifest.json", b => ReplaceText(b, _model.BackboneWeightsSha256, new string('0', 64))),
            ["one-class.pkmodel"] = Rewrite(bytes, "manifest.json", b => ReplaceText(b, "\"green\",", string.Empty)),
        };
        foreach (var (name, content) in cases)
        {
            var path = Path.Combine(folder, name);
            File.WriteAllBytes(path, content);
            Assert.That(() => ImageClassifier.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains(path), name);
        }

        Assert.That(() => ImageClassifier.Load(Path.Combine(folder, "future.pkmodel")), Throws.TypeOf<ModelFormatException>().With.Message.Contains("version 99"));
        Assert.That(() => ImageClassifier.Load(Path.Combine(folder, "other-weights.pkmodel")), Throws.TypeOf<ModelFormatException>().With.Message.Contains("weights"));
        Assert.That(() => ImageClassifier.Load(Path.Combine(folder, "missing.pkmodel")), Throws.TypeOf<FileNotFoundException>().With.Message.Contains("missing.pkmodel"));
    }

    [Test]
    public void Dispose_ThenPredict_ThrowsObjectDisposed()
    {
        var path = Path.Combine(TestPaths.NewTempFolder(), "m.pkmodel");
        _model.Save(path);
        var loaded = ImageClassifier.Load(path);
        loaded.Dispose();
        loaded.Dispose();
        Assert.That(() => loaded.Predict(_images[0]), Throws.TypeOf<ObjectDisposedException>());
    }

    private static byte[] Rewrite(byte[] model, string entryName, Func<byte[], byte[]> change)
    {
        using var output = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(model), ZipArchiveMode.Read))
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in source.Entries)
            {
                using var s = entry.Open();
                using var buffer = new MemoryStream();
                s.CopyTo(buffer);
                var content = buffer.ToArray();
                if (entry.FullName == entryName)
                {
                    content = change(content);
                }

                using var t = target.CreateEntry(entry.FullName).Open();
                t.Write(content);
            }
        }

        return output.ToArray();
    }

    private static byte[] ReplaceText(byte[] content, string from, string to)
    {
        var text = System.Text.Encoding.UTF8.GetString(content);
        Assert.That(text, Does.Contain(from), "the test edits a field that exists");
        return System.Text.Encoding.UTF8.GetBytes(text.Replace(from, to, StringComparison.Ordinal));
    }
}
