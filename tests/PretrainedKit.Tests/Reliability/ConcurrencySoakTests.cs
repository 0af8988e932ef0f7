using System.Collections.Concurrent;
using System.Diagnostics;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// Many threads on one shared model: results identical to sequential ones, no exception, memory that stops growing;
/// and <see cref="ImageClassifierModel.Dispose"/> while predictions are in flight.
/// </summary>
/// <remarks>
/// By default each of the 16 threads makes <see cref="DefaultPredictionsPerThread"/> predictions (about 30 ms each on a
/// 2-core machine). Set <c>PRETRAINEDKIT_SOAK_PREDICTIONS=1000</c> for the full soak (16,000 predictions, about 9 minutes
/// on 2 cores).
/// </remarks>
[Category("Soak")]
public class ConcurrencySoakTests
{
    public const int Threads = 16;
    public const int DefaultPredictionsPerThread = 12;

    private string _modelPath = null!;
    private string[] _images = null!;
    private ImageClassifierModel _model = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        var data = SmallDataset.Create(8);
        _images = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        using var trained = await ImageClassifier.Create().FromFolder(data).WithSeed(5).TrainAsync();
        _modelPath = Path.Combine(TestPaths.NewTempFolder(), "soak.pkmodel");
        trained.Save(_modelPath);
        _model = ImageClassifier.Load(_modelPath);
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    [Test]
    public void Predict_16ThreadsOnASharedModel_EqualSequentialResultsWithStableMemory()
    {
        var perThread = int.TryParse(Environment.GetEnvironmentVariable("PRETRAINEDKIT_SOAK_PREDICTIONS"), out var n) && n > 0 ? n : DefaultPredictionsPerThread;
        var sequential = _images.Select(i => _model.Predict(i).Probabilities.ToArray()).ToArray();

        // A first concurrent round lets ONNX Runtime and the thread pool reach their working size.
        var warmUp = Run(Math.Max(2, perThread / 10), sequential);
        var (managedBefore, rssBefore) = Memory();
        var stopwatch = Stopwatch.StartNew();
        var run = Run(perThread, sequential);
        stopwatch.Stop();
        var (managedAfter, rssAfter) = Memory();

        var total = Threads * perThread;
        TestContext.Progress.WriteLine(
            $"[soak] {Threads} threads x {perThread} = {total:N0} predictions in {stopwatch.Elapsed.TotalSeconds:F1} s ({total / stopwatch.Elapsed.TotalSeconds:F1}/s); " +
            $"mismatches {run.Mismatches}, exceptions {run.Exceptions.Count}; managed heap {managedBefore / 1e6:F1} -> {managedAfter / 1e6:F1} MB; " +
            $"working set {rssBefore / 1e6:F0} -> {rssAfter / 1e6:F0} MB (peak {run.PeakRss / 1e6:F0} MB)");
        Assert.Multiple(() =>
        {
            Assert.That(warmUp.Exceptions.Concat(run.Exceptions), Is.Empty);
            Assert.That(warmUp.Mismatches + run.Mismatches, Is.Zero, "bit-identical to the sequential predictions");
            Assert.That(run.Completed, Is.EqualTo(total));
            Assert.That(managedAfter - managedBefore, Is.LessThan(16_000_000), "the managed heap does not grow with the number of predictions");
            Assert.That(rssAfter - rssBefore, Is.LessThan(128_000_000), "native memory does not grow with the number of predictions");
        });
    }

    [Test]
    public void Dispose_WhilePredictionsAreInFlight_CallsFinishOrThrowObjectDisposed()
    {
        var model = ImageClassifier.Load(_modelPath);
        var bytes = File.ReadAllBytes(_images[1]);
        var unexpected = new ConcurrentQueue<Exception>();
        var disposedSeen = 0;
        var successes = 0;
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            for (var i = 0; ; i++)
            {
                try
                {
                    _ = ((t + i) % 4) switch
                    {
                        0 => model.Predict(_images[i % _images.Length]).Label,
                        1 => model.Predict(bytes).Label,
                        2 => model.PredictBatch([_images[0], _images[^1]]).Predictions()[0].Label,
                        _ => model.Predict(new MemoryStream(bytes)).Label,
                    };
                    Interlocked.Increment(ref successes);
                }
                catch (ObjectDisposedException)
                {
                    Interlocked.Increment(ref disposedSeen);
                    return;
                }
#pragma warning disable CA1031 // Any other exception is the failure this test looks for.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    unexpected.Enqueue(ex);
                    return;
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        SpinWait.SpinUntil(() => Volatile.Read(ref successes) >= 16, TimeSpan.FromMinutes(2));

        model.Dispose(); // Waits for the calls in flight, then frees the ONNX session.
        var afterDispose = Volatile.Read(ref successes);
        threads.ForEach(t => t.Join());

        Assert.Multiple(() =>
        {
            Assert.That(unexpected, Is.Empty, "only ObjectDisposedException, never another exception or a native crash");
            Assert.That(disposedSeen, Is.EqualTo(8), "every thread ended with ObjectDisposedException");
            Assert.That(Volatile.Read(ref successes), Is.EqualTo(afterDispose), "no call succeeded after Dispose returned");
            Assert.That(() => model.Predict(_images[0]), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => model.PredictBatch(_images), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => model.Save(Path.Combine(TestPaths.NewTempFolder(), "x.pkmodel")), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => model.EvaluateAsync(Path.GetDirectoryName(Path.GetDirectoryName(_images[0]))!), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(model.Dispose, Throws.Nothing, "a second Dispose is harmless");
        });
    }

    private static (long Managed, long Rss) Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        return (GC.GetTotalMemory(forceFullCollection: true), process.WorkingSet64);
    }

    private SoakRun Run(int perThread, float[][] sequential)
    {
        var result = new SoakRun();
        using var done = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                using var process = Process.GetCurrentProcess();
                result.PeakRss = Math.Max(result.PeakRss, process.WorkingSet64);
                await Task.Delay(100).ConfigureAwait(false);
            }
        });
        using var start = new Barrier(Threads);
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < perThread; i++)
            {
                var index = ((t * 7) + i) % _images.Length;
                try
                {
                    var probabilities = _model.Predict(_images[index]).Probabilities;
                    if (!probabilities.SequenceEqual(sequential[index]))
                    {
                        Interlocked.Increment(ref result.Mismatches);
                    }

                    Interlocked.Increment(ref result.Completed);
                }
#pragma warning disable CA1031 // Counted and reported by the test.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    result.Exceptions.Enqueue(ex);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        done.Cancel();
        sampler.GetAwaiter().GetResult();
        return result;
    }

    private sealed class SoakRun
    {
        public int Mismatches;
        public int Completed;
        public long PeakRss;

        public ConcurrentQueue<Exception> Exceptions { get; } = new();
    }
}
