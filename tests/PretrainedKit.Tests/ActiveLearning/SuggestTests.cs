using PretrainedKit.ActiveLearning;
using SkiaSharp;

namespace PretrainedKit.Tests.ActiveLearning;

/// <summary>Issue #16: the ranking arithmetic on constructed cases (no backbone).</summary>
public class LabelingRankerTests
{
    private static readonly string[] Classes = ["a", "b", "c"];

    private static float[] Unit(params float[] v)
    {
        var length = (float)Math.Sqrt(v.Sum(x => x * x));
        return v.Select(x => x / length).ToArray();
    }

    [Test]
    public void Rank_PrefersTheUncertainImageOverTheConfidentOne()
    {
        var (suggestions, _, _) = LabelingRanker.Rank(
            ["confident", "uncertain"],
            [[0.98f, 0.01f, 0.01f], [0.45f, 0.44f, 0.11f]],
            [Unit(1, 0, 0), Unit(0, 1, 0)],
            [],
            Classes,
            LabelingSuggestionOptions.Default with { Top = 1 });
        Assert.That(suggestions.Single().Path, Is.EqualTo("uncertain"));
        Assert.That(suggestions[0].Reason, Does.Contain("'a'").And.Contain("'b'"));
    }

    [TestCase(UncertaintyMeasure.Margin)]
    [TestCase(UncertaintyMeasure.Entropy)]
    public void Uncertainty_IsHigherForFlatterProbabilities(UncertaintyMeasure measure)
    {
        Assert.Multiple(() =>
        {
            Assert.That(LabelingRanker.Uncertainty([1f / 3, 1f / 3, 1f / 3], measure), Is.EqualTo(1).Within(1e-6));
            Assert.That(LabelingRanker.Uncertainty([1f, 0f, 0f], measure), Is.EqualTo(0).Within(1e-6));
            Assert.That(LabelingRanker.Uncertainty([0.5f, 0.4f, 0.1f], measure), Is.GreaterThan(LabelingRanker.Uncertainty([0.8f, 0.1f, 0.1f], measure)));
        });
    }

    [Test]
    public void Rank_WithDiversity_DoesNotSuggestNearCopiesTogether()
    {
        // Three near-copies of the most uncertain picture, and six other pictures slightly less uncertain.
        var copy = Unit(1, 0.01f, 0, 0, 0, 0, 0);
        string[] paths = ["copy1", "copy2", "copy3", "other1", "other2", "other3", "other4", "other5", "other6"];
        float[][] p = [[0.5f, 0.49f, 0.01f], [0.5f, 0.49f, 0.01f], [0.5f, 0.49f, 0.01f], .. Enumerable.Range(0, 6).Select(i => new[] { 0.55f + (0.01f * i), 0.4f - (0.01f * i), 0.05f })];
        float[][] e = [copy, Unit(1, 0.011f, 0, 0, 0, 0, 0), Unit(1, 0.012f, 0, 0, 0, 0, 0), .. Enumerable.Range(1, 6).Select(i => Unit([.. Enumerable.Range(0, 7).Select(j => j == i ? 1f : 0.05f)]))];
        var diverse = LabelingRanker.Rank(paths, p, e, [], Classes, LabelingSuggestionOptions.Default with { Top = 3 }).Suggestions;
        var plain = LabelingRanker.Rank(paths, p, e, [], Classes, LabelingSuggestionOptions.Default with { Top = 3, Diversity = false }).Suggestions;
        Assert.Multiple(() =>
        {
            Assert.That(diverse.Count(s => s.Path.StartsWith("copy", StringComparison.Ordinal)), Is.EqualTo(1), string.Join(", ", diverse.Select(s => s.Path)));
            Assert.That(plain.Select(s => s.Path), Is.EqualTo(new[] { "copy1", "copy2", "copy3" }), "uncertainty alone takes the copies");
        });
    }

    [Test]
    public void Rank_NeverReturnsAnImageTwice_AndHonoursTop()
    {
        var random = new Random(4);
        var n = 200;
        var paths = Enumerable.Range(0, n).Select(i => $"img{i}").ToList();
        var p = Enumerable.Range(0, n).Select(_ =>
        {
            var raw = Enumerable.Range(0, 3).Select(_ => (float)random.NextDouble()).ToArray();
            return raw.Select(x => x / raw.Sum()).ToArray();
        }).ToList();
        var e = Enumerable.Range(0, n).Select(_ => Unit(Enumerable.Range(0, 8).Select(_ => (float)random.NextDouble() - 0.5f).ToArray())).ToList();
        foreach (var top in new[] { 1, 7, 50, 200, 500 })
        {
            var (s, unknown, _) = LabelingRanker.Rank(paths, p, e, e.Take(10).ToList(), Classes, LabelingSuggestionOptions.Default with { Top = top });
            Assert.That(s, Has.Count.EqualTo(Math.Min(top, n - unknown.Count)));
            Assert.That(s.Select(x => x.Path).Intersect(unknown.Select(u => u.Path)), Is.Empty);
            Assert.That(s.Select(x => x.Path), Is.Unique);
            Assert.That(s.Select(x => x.Rank), Is.EqualTo(Enumerable.Range(1, s.Count)));
        }
    }

    [Test]
    public void Rank_ImageFarFromEveryLabelledImage_IsListedApartAsLikelyUnknown()
    {
        var random = new Random(5);
        var references = Enumerable.Range(0, 20).Select(_ => Unit(1, (float)random.NextDouble() * 0.2f, (float)random.NextDouble() * 0.2f, 0)).ToList();
        var pool = Enumerable.Range(0, 30).Select(_ => Unit(1, (float)random.NextDouble() * 0.2f, (float)random.NextDouble() * 0.2f, 0)).Append(Unit(0, 0, 0, 1)).ToList();
        var paths = Enumerable.Range(0, pool.Count).Select(i => i == 30 ? "strange" : $"img{i}").ToList();
        var p = pool.Select(_ => new[] { 0.6f, 0.3f, 0.1f }).ToList();
        var (suggestions, unknown, _) = LabelingRanker.Rank(paths, p, pool, references, Classes, LabelingSuggestionOptions.Default with { Top = 40 });
        Assert.Multiple(() =>
        {
            Assert.That(unknown.Select(u => u.Path), Is.EqualTo(new[] { "strange" }));
            Assert.That(unknown[0].Reason, Does.Contain("far from every labelled image"));
            Assert.That(suggestions.Select(s => s.Path), Does.Not.Contain("strange"));
            Assert.That(suggestions, Has.Count.EqualTo(30));
        });
    }

    [Test]
    public void Rank_WithTypicality_PrefersATypicalImageToAnOddOneOfEqualUncertainty()
    {
        // Twelve images in one tight group and one odd image, all equally uncertain: typicality takes one from the group.
        var random = new Random(6);
        var group = Enumerable.Range(0, 12).Select(_ => Unit(1, (float)random.NextDouble() * 0.3f, (float)random.NextDouble() * 0.3f)).ToList();
        List<float[]> e = [Unit(0, 0, 1), .. group];
        var paths = e.Select((_, i) => i == 0 ? "odd" : $"typical{i}").ToList();
        var p = e.Select(_ => new[] { 0.5f, 0.4f, 0.1f }).ToList();
        var plain = LabelingRanker.Rank(paths, p, e, [], Classes, LabelingSuggestionOptions.Default with { Top = 1 }).Suggestions;
        var typical = LabelingRanker.Rank(paths, p, e, [], Classes, LabelingSuggestionOptions.Default with { Top = 1, Typicality = true }).Suggestions;
        Assert.Multiple(() =>
        {
            Assert.That(plain.Single().Path, Is.EqualTo("odd"), "without typicality the tie goes to the first");
            Assert.That(typical.Single().Path, Does.StartWith("typical"));
            Assert.That(LabelingRanker.TypicalityPercentile(e)[0], Is.EqualTo(0), "the odd image is the least typical");
        });
    }

    [Test]
    public void Options_OutOfRange_AreAllReportedTogether()
    {
        var options = LabelingSuggestionOptions.Default with { Top = 0, CandidateFactor = 0, UnknownScore = double.NaN };
        Assert.That(options.Validate, Throws.ArgumentException.With.Message.Contains("Top").And.Message.Contains("CandidateFactor").And.Message.Contains("UnknownScore"));
    }
}

/// <summary>Issue #16: <c>SuggestLabelsAsync</c> on real features (a small colour model).</summary>
[Category("Slow")]
public class SuggestTests
{
    private string _data = null!;
    private string _pool = null!;
    private string _ambiguous = null!;
    private string _bad = null!;
    private ImageClassifierModel _model = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        _data = SmallDataset.Create(6);
        _model = await ImageClassifier.Create().FromFolder(_data).WithSeed(5).WithAutomaticLevers(false).TrainAsync();
        _pool = TestPaths.NewTempFolder("pool");
        TestImages.WriteClass(_pool, "reds", 4, new SKColor(200, 30, 30), 11);
        TestImages.WriteClass(_pool, "blues", 4, new SKColor(30, 40, 200), 12);

        // Half red, half green: the constructed uncertain image.
        using (var mixed = TestImages.Bitmap(32, 32, (x, _) => x < 16 ? new SKColor(200, 30, 30) : new SKColor(30, 180, 40)))
        {
            _ambiguous = Path.Combine(_pool, "mixed.png");
            File.WriteAllBytes(_ambiguous, TestImages.Png(mixed));
        }

        _bad = Path.Combine(_pool, "zero.png");
        File.WriteAllBytes(_bad, []);
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    [Test]
    public async Task SuggestLabels_PutsTheAmbiguousImageFirst_HonoursTop_AndNamesTheBadImage()
    {
        var before = Directory.GetFiles(_pool, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        var report = await _model.SuggestLabelsAsync(_pool, LabelingSuggestionOptions.Default with { Top = 3 });
        Assert.Multiple(() =>
        {
            Assert.That(report.Suggestions, Has.Count.EqualTo(3));
            Assert.That(report.Suggestions[0].Path, Is.EqualTo(_ambiguous), report.Suggestions[0].Reason);
            Assert.That(report.Suggestions[0].Uncertainty, Is.GreaterThan(report.Suggestions[2].Uncertainty));
            Assert.That(report.Suggestions.Select(s => s.Path), Is.Unique);
            Assert.That(report.Skipped.Select(s => s.Path), Is.EqualTo(new[] { _bad }));
            Assert.That(report.ImageCount, Is.EqualTo(9));
            Assert.That(report.Notes, Has.Some.Contains("likely unknowns were not looked for"), "a linear head without labelled images");
            Assert.That(Directory.GetFiles(_pool, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal), Is.EqualTo(before), "nothing moved");
        });
    }

    [Test]
    public async Task SuggestLabels_WithLabelledImages_MeasuresDistancesAndSkipsLabelledOnes()
    {
        var labelled = Directory.GetFiles(_data, "*.png", SearchOption.AllDirectories);
        var pool = Directory.GetFiles(_pool, "*.png", SearchOption.AllDirectories).Where(p => p != _bad).Append(labelled[0]).ToList();
        var report = await _model.SuggestLabelsAsync(pool, LabelingSuggestionOptions.Default with { Top = 20, LabelledImages = labelled });
        Assert.Multiple(() =>
        {
            Assert.That(report.ReferenceCount, Is.EqualTo(labelled.Length));
            Assert.That(report.Suggestions.Concat<object>(report.LikelyUnknown).Count(), Is.EqualTo(9), "every unlabelled image once, the labelled one not at all");
            Assert.That(report.Suggestions.Select(s => s.Path), Does.Not.Contain(labelled[0]));
            Assert.That(report.Suggestions.All(s => s.Distance is not null), Is.True);
        });
    }

    [Test]
    public async Task CopySuggestionsTo_CopiesWithoutTouchingTheOriginals()
    {
        var report = await _model.SuggestLabelsAsync(_pool, LabelingSuggestionOptions.Default with { Top = 2 });
        var target = Path.Combine(TestPaths.NewTempFolder("to-label"), "batch1");
        var copies = report.CopySuggestionsTo(target);
        var again = report.CopySuggestionsTo(target);
        Assert.Multiple(() =>
        {
            Assert.That(copies, Has.Count.EqualTo(2));
            Assert.That(File.ReadAllBytes(copies[0]), Is.EqualTo(File.ReadAllBytes(report.Suggestions[0].Path)));
            Assert.That(Path.GetFileName(copies[0]), Does.StartWith("001-"));
            Assert.That(again, Is.Not.EquivalentTo(copies), "an existing copy is never overwritten");
            Assert.That(File.Exists(report.Suggestions[0].Path), Is.True);
        });
    }

    [Test]
    public void SuggestLabels_CancelledOrMissingFolder_Throws()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var missing = Path.Combine(_pool, "missing");
        Assert.Multiple(() =>
        {
            Assert.That(() => _model.SuggestLabelsAsync(_pool, null, null, cancelled.Token), Throws.InstanceOf<OperationCanceledException>());
            Assert.That(() => _model.SuggestLabelsAsync(missing), Throws.TypeOf<DirectoryNotFoundException>().With.Message.Contains(missing));
        });
    }
}
