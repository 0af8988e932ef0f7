using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using PretrainedKit.DependencyInjection;
using SkiaSharp;

namespace PretrainedKit.Tests.DependencyInjection;

/// <summary>
/// <see cref="ImageClassifierPool"/> with <c>watchForChanges</c>: a replaced model file is reloaded in the background, a
/// broken one keeps the old model serving, calls in flight finish on the old model, and a disposed pool stops watching.
/// </summary>
[NonParallelizable]
public class PoolReloadTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private string _work = null!;
    private string _coloursPath = null!;
    private string _shadesPath = null!;
    private string _image = null!;
    private ImageClassifierModel _shades = null!;
    private string[] _shadeClasses = null!;

    [OneTimeSetUp]
    public async Task TrainModels()
    {
        _work = TestPaths.NewTempFolder("pool-reload");
        var colours = SmallDataset.Create(4);
        using (var model = await ImageClassifier.Create().FromFolder(colours).WithSeed(1).TrainAsync())
        {
            _coloursPath = Path.Combine(_work, "colours.pkmodel");
            model.Save(_coloursPath);
        }

        // Another model with other classes, kept open so that tests can Save it (atomically) over a served file.
        var shades = TestPaths.NewTempFolder("shades");
        TestImages.WriteClass(shades, "dark", 4, new SKColor(20, 20, 20), 4);
        TestImages.WriteClass(shades, "light", 4, new SKColor(235, 235, 235), 5);
        _shades = await ImageClassifier.Create().FromFolder(shades).WithSeed(1).TrainAsync();
        _shadeClasses = [.. _shades.Classes];
        _shadesPath = Path.Combine(_work, "shades.pkmodel");
        _shades.Save(_shadesPath);
        _image = Directory.EnumerateFiles(colours, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _shades.Dispose();
        Directory.Delete(_work, recursive: true);
    }

    [Test]
    public async Task FromFile_WatchedFileReplacedBySave_PredictionsSwitchToTheNewClasses()
    {
        var (pool, served) = NewPool(out _);
        using (pool)
        {
            Assert.That(SmallDataset.Classes, Does.Contain(pool.Predict("m", _image, 1).Label));
            var reloaded = Next(pool, failed: false);
            _shades.Save(served); // temp file + rename over the served file
            var args = await reloaded.WaitAsync(Patience);
            Assert.Multiple(() =>
            {
                Assert.That(args.Error, Is.Null);
                Assert.That(args.Generation, Is.EqualTo(2));
                Assert.That(pool.GetGeneration("m"), Is.EqualTo(2));
                Assert.That(pool.GetModel("m").Classes, Is.EqualTo(_shadeClasses));
                Assert.That(_shadeClasses, Does.Contain(pool.Predict("m", _image, 1).Label));
            });
        }
    }

    [Test]
    public async Task FromFile_WatchedFileDeletedThenCreated_Reloads()
    {
        var (pool, served) = NewPool(out _);
        using (pool)
        {
            _ = pool.Predict("m", _image, 1);
            var reloaded = Next(pool, failed: false);
            File.Delete(served);
            Assert.That(SmallDataset.Classes, Does.Contain(pool.Predict("m", _image, 1).Label), "a deleted file leaves the model serving");
            File.Copy(_shadesPath, served);
            await reloaded.WaitAsync(Patience);
            Assert.That(pool.GetModel("m").Classes, Is.EqualTo(_shadeClasses));
        }
    }

    [Test]
    public async Task FromFile_CorruptReplacement_KeepsTheOldModelServingAndLogsWhy()
    {
        var (pool, served) = NewPool(out var logger);
        using (pool)
        {
            var before = pool.Predict("m", _image, 3);
            var failed = Next(pool, failed: true);
            var temp = served + ".tmp";
            await File.WriteAllBytesAsync(temp, [0x50, 0x4B, 0x03, 0x04, 1, 2, 3]); // a truncated zip
            File.Move(temp, served, overwrite: true);
            var args = await failed.WaitAsync(Patience);
            var after = pool.Predict("m", _image, 3);
            Assert.Multiple(() =>
            {
                Assert.That(args.Error, Is.Not.Null);
                Assert.That(args.Generation, Is.EqualTo(1));
                Assert.That(pool.GetGeneration("m"), Is.EqualTo(1));
                Assert.That(after.Probabilities, Is.EqualTo(before.Probabilities), "the old model still serves");
                Assert.That(logger.Messages, Has.Some.Contains("was not reloaded").And.Contains(served).And.Contains("previous model keeps serving"));
            });
        }
    }

    [Test]
    public async Task Reload_CallsInFlight_FinishOnTheOldModelWhichIsDisposedAfterThem()
    {
        var (pool, served) = NewPool(out _);
        using (pool)
        {
            var lease = pool.Rent("m");
            var reloaded = Next(pool, failed: false);
            var errors = new ConcurrentQueue<Exception>();
            var labels = new ConcurrentBag<string>();
            using var stop = new CancellationTokenSource();
            var load = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        labels.Add(pool.Predict("m", _image, 1).Label);
                    }
                    catch (Exception ex)
                    {
                        errors.Enqueue(ex);
                    }
                }
            })).ToArray();
            _shades.Save(served);
            await reloaded.WaitAsync(Patience);
            var afterSwap = pool.Predict("m", _image, 1).Label;
            await stop.CancelAsync();
            await Task.WhenAll(load);

            var oldModelStillWorks = lease.Model.Predict(_image, 1).Label;
            var oldGeneration = lease.Generation;
            lease.Dispose();
            Assert.Multiple(() =>
            {
                Assert.That(errors, Is.Empty, "no call fails during the swap");
                Assert.That(labels.All(l => SmallDataset.Classes.Contains(l) || _shadeClasses.Contains(l)), Is.True);
                Assert.That(_shadeClasses, Does.Contain(afterSwap));
                Assert.That(oldGeneration, Is.EqualTo(1));
                Assert.That(SmallDataset.Classes, Does.Contain(oldModelStillWorks), "a leased model outlives the reload");
                Assert.That(() => lease.Model.Predict(_image, 1), Throws.TypeOf<ObjectDisposedException>(), "the old model is disposed after its last user");
            });
        }
    }

    [Test]
    public async Task Dispose_StopsWatchingAndDisposesTheModel()
    {
        var (pool, served) = NewPool(out _);
        var model = pool.GetModel("m");
        var events = 0;
        pool.ModelReloaded += (_, _) => Interlocked.Increment(ref events);
        pool.ModelReloadFailed += (_, _) => Interlocked.Increment(ref events);
        pool.Dispose();
        _shades.Save(served);
        await Task.Delay(TimeSpan.FromSeconds(2)); // 20 times the reload delay: a watching pool would have reloaded by now
        Assert.Multiple(() =>
        {
            Assert.That(Volatile.Read(ref events), Is.Zero);
            Assert.That(() => pool.Predict("m", _image), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => model.Predict(_image), Throws.TypeOf<ObjectDisposedException>());
        });
    }

    [Test]
    public async Task FromFile_WarmUp_LoadsAheadOfFirstUse()
    {
        var served = Path.Combine(TestPaths.NewTempFolder("pool-warm"), "m.pkmodel");
        File.Copy(_coloursPath, served);
        using var pool = new ImageClassifierPool([new PooledModelOptions { ModelName = "m", FilePath = served, WarmUp = true }]);
        var deadline = DateTime.UtcNow + Patience;
        while (pool.GetGeneration("m") == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        using var plain = ImageClassifier.Load(_coloursPath);
        Assert.Multiple(() =>
        {
            Assert.That(pool.GetGeneration("m"), Is.EqualTo(1), "loaded without any call");
            Assert.That(pool.Predict("m", _image, 3).Probabilities, Is.EqualTo(plain.Predict(_image, 3).Probabilities));
        });
    }

    [Test]
    public void Load_WarmUp_PredictsTheSameAsWithout()
    {
        using var warm = ImageClassifier.Load(_coloursPath, warmUp: true);
        using var cold = ImageClassifier.Load(_coloursPath);
        Assert.That(warm.Predict(_image, 3).Probabilities, Is.EqualTo(cold.Predict(_image, 3).Probabilities));
    }

    [Test]
    public void Constructor_WatchedModelInAMissingFolder_ThrowsNamingIt()
    {
        var missing = Path.Combine(_work, "no-such-folder", "m.pkmodel");
        Assert.That(
            () => new ImageClassifierPool([new PooledModelOptions { ModelName = "m", FilePath = missing, WatchForChanges = true }]),
            Throws.TypeOf<DirectoryNotFoundException>().With.Message.Contains(Path.GetDirectoryName(missing)!));
    }

    private static Task<ModelReloadEventArgs> Next(ImageClassifierPool pool, bool failed)
    {
        var source = new TaskCompletionSource<ModelReloadEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (failed)
        {
            pool.ModelReloadFailed += (_, e) => source.TrySetResult(e);
            pool.ModelReloaded += (_, e) => source.TrySetException(new AssertionException($"Expected a failed reload, got generation {e.Generation}."));
        }
        else
        {
            pool.ModelReloaded += (_, e) => source.TrySetResult(e);
            pool.ModelReloadFailed += (_, e) => source.TrySetException(e.Error!);
        }

        return source.Task;
    }

    private (ImageClassifierPool Pool, string Served) NewPool(out ListLogger logger)
    {
        var served = Path.Combine(TestPaths.NewTempFolder("pool-served"), "served.pkmodel");
        File.Copy(_coloursPath, served);
        logger = new ListLogger();
        var pool = new ImageClassifierPool(
            [new PooledModelOptions { ModelName = "m", FilePath = served, WatchForChanges = true, ReloadDelay = TimeSpan.FromMilliseconds(100) }],
            logger);
        return (pool, served);
    }

    internal sealed class ListLogger : ILogger
    {
        public ConcurrentQueue<string> Messages { get; } = new();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Enqueue(formatter(state, exception));
    }
}
