using PretrainedKit.Caching;

namespace PretrainedKit.Tests.Caching;

/// <summary>Evaluation and batch prediction read and write the feature cache like training does.</summary>
public class CachedEvaluationTests
{
    private string _train = null!;
    private string _test = null!;
    private string _cacheDir = null!;
    private ImageClassifierModel _model = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        _train = SmallDataset.Create(6);
        _test = TestPaths.NewTempFolder("eval-cache-test"); // Other seeds: images the training never saw.
        TestImages.WriteClass(_test, "red", 4, new SkiaSharp.SKColor(200, 30, 30), 11);
        TestImages.WriteClass(_test, "green", 4, new SkiaSharp.SKColor(30, 180, 40), 12);
        TestImages.WriteClass(_test, "blue", 4, new SkiaSharp.SKColor(30, 40, 200), 13);
        _cacheDir = TestPaths.NewTempFolder("eval-cache");
        _model = await ImageClassifier.Create().FromFolder(_train).WithSeed(3).WithFeatureCacheDirectory(_cacheDir).TrainAsync();
    }

    [OneTimeTearDown]
    public void Close() => _model.Dispose();

    private static long Entries(string folder) => new FeatureCache(new FeatureCacheOptions { Directory = folder }, isolated: true).GetEntryCount();

    [Test]
    public async Task EvaluateAsync_SameFolderTwice_SecondRunTakesEveryFeatureFromTheCacheWithTheSameResult()
    {
        var model = _model;
        var entriesBefore = Entries(_cacheDir);
        var first = await model.EvaluateAsync(_test);
        var entriesAfterFirst = Entries(_cacheDir);
        var second = await model.EvaluateAsync(_test);
        Assert.Multiple(() =>
        {
            Assert.That(model.FeatureCache.Directory, Is.EqualTo(_cacheDir), "a trained model keeps the run's cache");
            Assert.That(first.FeatureCacheHits, Is.Zero, "the test images were never featurised before");
            Assert.That(entriesAfterFirst - entriesBefore, Is.EqualTo(first.Metrics.Count), "the first evaluation wrote one entry per image");
            Assert.That(second.FeatureCacheHits, Is.EqualTo(second.Metrics.Count).And.EqualTo(12));
            Assert.That(Entries(_cacheDir), Is.EqualTo(entriesAfterFirst));
            Assert.That(second.Metrics.LogLoss, Is.EqualTo(first.Metrics.LogLoss));
            Assert.That(second.Images.Select(i => i.Probabilities), Is.EqualTo(first.Images.Select(i => i.Probabilities)), "cached features give bit-identical probabilities");
        });
    }

    [Test]
    public async Task Load_WithACacheFolder_EvaluatesFromItAndDisabledWritesNothing()
    {
        var file = Path.Combine(TestPaths.NewTempFolder("eval-cache-model"), "m.pkmodel");
        _model.Save(file);
        await _model.EvaluateAsync(_test); // The test images' features are now in the training cache.

        using var shared = ImageClassifier.Load(file, featureCache: new FeatureCacheOptions { Directory = _cacheDir });
        var fromCache = await shared.EvaluateAsync(_test);

        var unused = TestPaths.NewTempFolder("eval-cache-unused");
        using var uncached = ImageClassifier.Load(file, featureCache: FeatureCacheOptions.Disabled);
        var computed = await uncached.EvaluateAsync(_test);
        Assert.Multiple(() =>
        {
            Assert.That(fromCache.FeatureCacheHits, Is.EqualTo(12));
            Assert.That(uncached.FeatureCache.Enabled, Is.False);
            Assert.That(computed.FeatureCacheHits, Is.Zero);
            Assert.That(Entries(unused), Is.Zero);
            Assert.That(computed.Images.Select(i => i.Probabilities), Is.EqualTo(fromCache.Images.Select(i => i.Probabilities)), "a loaded model predicts the same from cached and computed features");
        });
    }

    [Test]
    public void PredictBatch_NewImages_WritesTheirFeaturesToTheModelsCache()
    {
        var folder = TestPaths.NewTempFolder("eval-cache-batch");
        var file = Path.Combine(folder, "m.pkmodel");
        _model.Save(file);
        var cache = Path.Combine(folder, "cache");
        using var loaded = ImageClassifier.Load(file, featureCache: new FeatureCacheOptions { Directory = cache });
        var images = Directory.GetFiles(_test, "*.png", SearchOption.AllDirectories);
        _ = loaded.PredictBatch(images);
        Assert.That(Entries(cache), Is.EqualTo(images.Length));
    }
}
