using PretrainedKit.Data;
using PretrainedKit.DependencyInjection;
using PretrainedKit.Imaging;

namespace PretrainedKit.Tests.Prediction;

/// <summary>PredictAsync on streams, PredictBatch with one result per input, and evaluation over a list.</summary>
public class StreamAndBatchTests
{
    private string _data = null!;
    private string _bad = null!;
    private ImageClassifierModel _model = null!;
    private string[] _images = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        _data = SmallDataset.Create(6);
        _model = await ImageClassifier.Create().FromFolder(_data).WithSeed(3).TrainAsync();
        _images = Directory.GetFiles(_data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        _bad = Path.Combine(TestPaths.NewTempFolder("bad"), "bad.png");
        File.WriteAllText(_bad, "not an image");
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    [Test]
    public async Task PredictAsync_StreamThatForbidsSynchronousReads_EqualsPredictOnThePath()
    {
        await using var stream = new AsyncOnlyStream(await File.ReadAllBytesAsync(_images[4]), chunk: 7);

        var p = await _model.PredictAsync(stream, topK: 2);

        Assert.That(p.Probabilities, Is.EqualTo(_model.Predict(_images[4]).Probabilities));
        Assert.That(p.TopK, Has.Count.EqualTo(2));
        Assert.That(p.Path, Is.Null);
    }

    [Test]
    public async Task ReadAsync_StreamOverTheLimit_IsRefusedAsTooLargeAndReadingStopsThere()
    {
        var bytes = new byte[10_000];
        await using var endless = new AsyncOnlyStream(bytes, chunk: 1000);
        var ex = Assert.ThrowsAsync<InvalidImageException>(() => ImageFile.ReadAsync(endless, 4_000, CancellationToken.None))!;
        Assert.That(ex.Reason, Is.EqualTo(BadImageReason.TooLarge));
        Assert.That(ex.Message, Does.Contain("4,000 bytes").And.Contain("ImageLimits.MaxFileBytes"));
        Assert.That(endless.Position, Is.LessThanOrEqualTo(4_001), "reading stopped at the bound");

        await using var exact = new AsyncOnlyStream(bytes[..4_000], chunk: 1000);
        Assert.That(await ImageFile.ReadAsync(exact, 4_000, CancellationToken.None), Has.Length.EqualTo(4_000), "exactly the bound is accepted");
    }

    [Test]
    public void PredictAsync_NotAnImageOrCancelled_ThrowsClearly()
    {
        Assert.That(async () => await _model.PredictAsync(new MemoryStream("hello"u8.ToArray())), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.NotAnImage));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.That(async () => await _model.PredictAsync(new AsyncOnlyStream(File.ReadAllBytes(_images[0]), 7), cancellationToken: cancelled.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(async () => await _model.PredictAsync(new MemoryStream(), topK: 0), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public async Task Pool_PredictAsync_ForwardsToTheNamedModel()
    {
        var path = Path.Combine(TestPaths.NewTempFolder(), "m.pkmodel");
        _model.Save(path);
        using var pool = new ImageClassifierPool([new KeyValuePair<string, string>("colours", path)]);
        await using var stream = new AsyncOnlyStream(await File.ReadAllBytesAsync(_images[1]), 100);

        var p = await pool.PredictAsync("colours", stream, 1);

        Assert.That(p.Probabilities, Is.EqualTo(_model.Predict(_images[1]).Probabilities));
        Assert.That(() => pool.PredictAsync("nope", new MemoryStream()), Throws.TypeOf<KeyNotFoundException>());
    }

    [Test]
    public void PredictBatch_PathsWithBadAndMissingFiles_GivesOneResultPerInputInOrder()
    {
        var missing = Path.Combine(Path.GetDirectoryName(_bad)!, "missing.png");
        string[] paths = [_images[0], _bad, _images[7], missing, _images[0]];

        var results = _model.PredictBatch(paths, topK: 1);

        Assert.That(results.Select(r => r.Index), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
        Assert.That(results.Select(r => r.Path), Is.EqualTo(paths));
        Assert.That(results.Select(r => r.Succeeded), Is.EqualTo(new[] { true, false, true, false, true }));
        Assert.Multiple(() =>
        {
            Assert.That(results[0].Prediction!.Probabilities, Is.EqualTo(_model.Predict(_images[0]).Probabilities));
            Assert.That(results[2].Prediction!.Probabilities, Is.EqualTo(_model.Predict(_images[7]).Probabilities));
            Assert.That(results[4].Prediction!.Probabilities, Is.EqualTo(results[0].Prediction!.Probabilities));
            Assert.That(results[0].Prediction!.TopK, Has.Count.EqualTo(1));
            Assert.That(results[1].Error!.Path, Is.EqualTo(_bad));
            Assert.That(results[1].Error!.Reason, Is.EqualTo(BadImageReason.NotAnImage));
            Assert.That(results[1].Prediction, Is.Null);
            Assert.That(results[3].Error!.Message, Does.Contain(missing));
            Assert.That(results[0].Error, Is.Null);
        });
    }

    [Test]
    public async Task PredictBatchAsync_Bytes_NamesTheIndexOfABadInput()
    {
        var good = await File.ReadAllBytesAsync(_images[3]);

        var results = await _model.PredictBatchAsync([good, "junk"u8.ToArray(), []]);

        Assert.That(results.Select(r => r.Succeeded), Is.EqualTo(new[] { true, false, false }));
        Assert.That(results[0].Prediction!.Probabilities, Is.EqualTo(_model.Predict(_images[3]).Probabilities));
        Assert.That(results[1].Error!.Message, Does.StartWith("input 1 of the batch"));
        Assert.That(results[2].Error!.Message, Does.StartWith("input 2 of the batch"));
        Assert.That(results[2].Error!.Reason, Is.EqualTo(BadImageReason.Empty));
        Assert.That(results.Select(r => r.Path), Is.All.Null);
    }

    [Test]
    public async Task PredictBatchAsync_Streams_AFailingStreamIsThatInputsError()
    {
        var good = await File.ReadAllBytesAsync(_images[9]);
        var failing = new AsyncOnlyStream(good, 5) { FailAfter = 10 };
        var results = await _model.PredictBatchAsync([new AsyncOnlyStream(good, 64), failing, new MemoryStream("text"u8.ToArray()), new MemoryStream(good)]);

        Assert.That(results.Select(r => r.Succeeded), Is.EqualTo(new[] { true, false, false, true }));
        Assert.That(results[0].Prediction!.Probabilities, Is.EqualTo(_model.Predict(_images[9]).Probabilities));
        Assert.That(results[3].Prediction!.Probabilities, Is.EqualTo(results[0].Prediction!.Probabilities));
        Assert.That(results[1].Error!.Reason, Is.EqualTo(BadImageReason.Unreadable));
        Assert.That(results[1].Error!.Message, Does.Contain("stream 1 of the batch could not be read"));
        Assert.That(results[1].Error!.InnerException, Is.TypeOf<IOException>());
        Assert.That(results[2].Error!.Message, Does.StartWith("input 2 of the batch"));
    }

    [Test]
    public void PredictBatchAsync_Cancelled_Throws()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.That(async () => await _model.PredictBatchAsync(_images, cancellationToken: cancelled.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(async () => await _model.PredictBatchAsync(_images, topK: 0), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public async Task EvaluateAsync_List_EqualsTheFolderEvaluation()
    {
        var list = _images.Select(i => new LabeledImage(i, Path.GetFileName(Path.GetDirectoryName(i))!)).ToList();

        var fromFolder = await _model.EvaluateAsync(_data);
        var fromList = await _model.EvaluateAsync(list.Append(new LabeledImage(_bad, "red")));

        Assert.That(fromList.Metrics.MacroAccuracy, Is.EqualTo(fromFolder.Metrics.MacroAccuracy));
        Assert.That(fromList.Metrics.ConfusionMatrix, Is.EqualTo(fromFolder.Metrics.ConfusionMatrix));
        Assert.That(fromList.Images.Select(i => i.Probabilities), Is.EqualTo(fromFolder.Images.Select(i => i.Probabilities)));
        Assert.That(fromList.Skipped.Select(s => s.Path), Is.EqualTo(new[] { _bad }), "the bad image is skipped and listed");
    }

    [Test]
    public void EvaluateAsync_ListWithUnknownOrEmptyLabels_NamesEveryProblem()
    {
        var unknown = Assert.ThrowsAsync<InvalidDatasetException>(() => _model.EvaluateAsync([new LabeledImage(_images[0], "purple"), new LabeledImage(_images[1], "purple"), new LabeledImage(_images[2], "teal")]))!;
        Assert.That(unknown.Problems.Select(p => p.Kind), Is.All.EqualTo(DatasetProblemKind.UnknownClass));
        Assert.That(unknown.Problems, Has.Count.EqualTo(2));
        Assert.That(unknown.Message, Does.Contain("'purple' (2 images, the first '" + _images[0] + "')").And.Contain("'teal'").And.Contain("blue, green, red"));

        Assert.That(() => _model.EvaluateAsync([]), Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("The image list is empty"));
        Assert.That(() => _model.EvaluateAsync([new LabeledImage(_images[0], " ")]), Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("empty label"));
        Assert.That(() => _model.EvaluateAsync([new LabeledImage(_bad, "red")]), Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("None of the 1 images of the list could be used"));
    }

    /// <summary>A read-only stream that, like ASP.NET Core's request body, throws on synchronous reads; it yields at most <c>chunk</c> bytes per read.</summary>
    private sealed class AsyncOnlyStream(byte[] bytes, int chunk) : Stream
    {
        private long _position;

        public int FailAfter { get; init; } = -1;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => throw new InvalidOperationException("Synchronous operations are disallowed.");

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            if (FailAfter >= 0 && _position >= FailAfter)
            {
                throw new IOException("The connection was reset (simulated).");
            }

            var n = (int)Math.Min(Math.Min(buffer.Length, chunk), bytes.Length - _position);
            bytes.AsMemory((int)_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
