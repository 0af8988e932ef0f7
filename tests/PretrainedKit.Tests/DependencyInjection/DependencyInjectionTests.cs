using Microsoft.Extensions.DependencyInjection;
using PretrainedKit.DependencyInjection;

namespace PretrainedKit.Tests.DependencyInjection;

/// <summary>Models served from a container, as an ASP.NET Core app would use them.</summary>
public class DependencyInjectionTests
{
    private string _data = null!;
    private string _modelPath = null!;
    private List<string> _images = null!;
    private List<string> _expected = null!;

    [OneTimeSetUp]
    public async Task TrainModel()
    {
        _data = SmallDataset.Create(6);
        _modelPath = Path.Combine(TestPaths.NewTempFolder("di"), "colours.pkmodel");
        using var model = await ImageClassifier.Create().FromFolder(_data).WithSeed(1).TrainAsync();
        model.Save(_modelPath);
        _images = Directory.EnumerateFiles(_data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        _expected = _images.Select(p => model.Predict(p, 1).Label).ToList();
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        Directory.Delete(_data, recursive: true);
        Directory.Delete(Path.GetDirectoryName(_modelPath)!, recursive: true);
    }

    [Test]
    public void AddImageClassifier_Singleton_SameInstanceAcrossScopesAndDisposedWithContainer()
    {
        ImageClassifierModel first;
        using (var provider = new ServiceCollection().AddImageClassifier(_modelPath).BuildServiceProvider())
        {
            using var scope1 = provider.CreateScope();
            using var scope2 = provider.CreateScope();
            first = scope1.ServiceProvider.GetRequiredService<ImageClassifierModel>();
            Assert.That(scope2.ServiceProvider.GetRequiredService<ImageClassifierModel>(), Is.SameAs(first));
            Assert.That(first.Classes, Is.EqualTo(SmallDataset.Classes));
        }

        Assert.That(() => first.Predict(_images[0]), Throws.TypeOf<ObjectDisposedException>());
    }

    [Test]
    public void AddImageClassifier_ConcurrentRequests_MatchSequentialPredictions()
    {
        using var provider = new ServiceCollection().AddImageClassifier(_modelPath).BuildServiceProvider();
        var actual = new string[_images.Count];
        Parallel.For(0, _images.Count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            using var scope = provider.CreateScope(); // one scope per request, as in ASP.NET Core
            actual[i] = scope.ServiceProvider.GetRequiredService<ImageClassifierModel>().Predict(_images[i], 1).Label;
        });
        Assert.That(actual, Is.EqualTo(_expected));
    }

    [Test]
    public void AddImageClassifierPool_NamedModels_PredictFromManyThreadsAndLoadEachOnce()
    {
        var services = new ServiceCollection();
        services.AddImageClassifierPool().FromFile("colours", _modelPath).FromFile("colours-copy", _modelPath);
        using var provider = services.BuildServiceProvider();
        var pool = provider.GetRequiredService<ImageClassifierPool>();
        var first = pool.GetModel("colours");
        var actual = new string[_images.Count];
        Parallel.For(0, _images.Count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            using var stream = File.OpenRead(_images[i]);
            actual[i] = pool.Predict(i % 2 == 0 ? "colours" : "colours-copy", stream, 1).Label;
        });
        Assert.Multiple(() =>
        {
            Assert.That(actual, Is.EqualTo(_expected));
            Assert.That(pool.ModelNames, Is.EquivalentTo(new[] { "colours", "colours-copy" }));
            Assert.That(pool.GetModel("colours"), Is.SameAs(first), "each name is loaded once and shared");
            Assert.That(pool.GetModel("colours"), Is.Not.SameAs(pool.GetModel("colours-copy")));
        });
    }

    [Test]
    public void AddImageClassifierPool_UnknownName_ThrowsListingRegisteredNames()
    {
        var services = new ServiceCollection();
        services.AddImageClassifierPool().FromFile("colours", _modelPath);
        using var provider = services.BuildServiceProvider();
        var pool = provider.GetRequiredService<ImageClassifierPool>();
        Assert.That(() => pool.Predict("pets", _images[0]), Throws.TypeOf<KeyNotFoundException>().With.Message.Contains("pets").And.Message.Contains("colours"));
    }

    [Test]
    public void AddImageClassifierPool_CalledTwice_AddsToTheSamePool()
    {
        var services = new ServiceCollection();
        services.AddImageClassifierPool().FromFile("a", _modelPath);
        services.AddImageClassifierPool().FromFile("b", _modelPath);
        using var provider = services.BuildServiceProvider();
        Assert.That(provider.GetRequiredService<ImageClassifierPool>().ModelNames, Is.EquivalentTo(new[] { "a", "b" }));
    }

    [Test]
    public void AddImageClassifierPool_MissingFile_ThrowsNamingItOnFirstUse()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}.pkmodel");
        var services = new ServiceCollection();
        services.AddImageClassifierPool().FromFile("m", missing);
        using var provider = services.BuildServiceProvider();
        Assert.That(() => provider.GetRequiredService<ImageClassifierPool>().GetModel("m"), Throws.TypeOf<FileNotFoundException>().With.Message.Contains(missing));
    }

    [Test]
    public void FromFile_DuplicateName_Throws()
    {
        var builder = new ServiceCollection().AddImageClassifierPool().FromFile("a", _modelPath);
        Assert.That(() => builder.FromFile("a", _modelPath), Throws.ArgumentException.With.Message.Contains("'a'"));
    }
}
