using PretrainedKit.Imaging;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// The process-wide decode memory budget: waits and cancellation, refusal of an image larger than the whole budget, the
/// header-based estimate, and peak memory when 16 threads predict on a 10000x9999 16-bit RGBA interlaced PNG.
/// </summary>
public class DecodeBudgetTests
{
    /// <summary>Peak RSS allowed for 16 concurrent predictions on the hostile PNG (the issue measured a SIGABRT without the budget).</summary>
    private const long RssBound = 3_000_000_000;

    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(30);
    private string _folder = null!;
    private string _hugePng = null!;

    [OneTimeSetUp]
    public void WriteImages()
    {
        _folder = TestPaths.NewTempFolder("decode-budget");
        _hugePng = Path.Combine(_folder, "10000x9999-rgba16-interlaced.png");
        DecodeBudgetChild.WriteZeroPng(_hugePng, 10000, 9999, 16, 6, interlaced: true);
    }

    [Test]
    public void Acquire_MoreThanIsFree_WaitsUntilReleased()
    {
        var budget = new DecodeBudget(100);
        var first = budget.Acquire(60)!;
        var second = Task.Run(() => budget.Acquire(60));
        Assert.That(second.Wait(TimeSpan.FromMilliseconds(200)), Is.False, "the second caller waits while the first holds the budget");
        first.Dispose();
        Assert.That(second.Wait(NoHang), Is.True, "the second caller proceeds once the first releases");
        Assert.That(budget.InUse, Is.EqualTo(60));
        second.Result!.Dispose();
        Assert.That(budget.InUse, Is.Zero);
    }

    [Test]
    public void Acquire_CancelledWhileWaiting_ThrowsAndHoldsNothing()
    {
        var budget = new DecodeBudget(100);
        using var held = budget.Acquire(100)!;
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        Assert.That(() => budget.Acquire(10, cancel.Token), Throws.InstanceOf<OperationCanceledException>());
        held.Dispose();
        Assert.That(budget.InUse, Is.Zero);
        using var next = budget.Acquire(100);
        Assert.That(next, Is.Not.Null, "a cancelled waiter leaves no claim behind");
    }

    [Test]
    public void Acquire_MoreThanTheWholeBudget_ReturnsNull()
    {
        var budget = new DecodeBudget(100);
        Assert.That(budget.Acquire(101), Is.Null);
    }

    [Test]
    public void Estimate_Interlaced16BitRgbaPng_CountsTheInterlaceBufferAndTheBitmap()
    {
        var header = File.ReadAllBytes(_hugePng).AsSpan(0, 64).ToArray();
        var need = DecodeCost.Estimate(header, SniffedFormat.Png, 10000, 9999, 10000, 9999, 224, 224);
        const long pixels = 10000L * 9999;
        Assert.That(need, Is.GreaterThanOrEqualTo((pixels * 8) + (pixels * 4)), "8 bytes a pixel of libpng rows plus the 8-bit RGBA bitmap");
        Assert.That(need, Is.LessThanOrEqualTo(ImageLimits.DefaultDecodeMemoryBudgetCeiling), "an image within the default pixel limit fits the default budget");
    }

    [Test]
    public void DecodeNormalized_ImageLargerThanTheWholeBudget_IsRefusedAsTooLarge()
    {
        var bytes = File.ReadAllBytes(_hugePng);
        var saved = ImageLimits.DecodeMemoryBudgetBytes;
        try
        {
            ImageLimits.DecodeMemoryBudgetBytes = 64L * 1024 * 1024;
            var rgb = new byte[224 * 224 * 3];
            Assert.That(
                () => ImageDecoder.DecodeNormalized(bytes, _hugePng, ImagePreprocessingOptions.Default, 224, 224, rgb),
                Throws.TypeOf<InvalidImageException>()
                    .With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.TooLarge)
                    .And.Message.Contains(_hugePng).And.Message.Contains("ImageLimits.DecodeMemoryBudgetBytes"));
        }
        finally
        {
            ImageLimits.DecodeMemoryBudgetBytes = saved;
        }
    }

    [Test]
    public void MaxPixels_AboveTheLibraryCap_IsRejected()
    {
        var options = new ImagePreprocessingOptions { MaxPixels = 9_000_000_000_000_000_000 };
        Assert.That(options.Validate, Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("MaxPixelsCap"));
    }

    [Test]
    [Category("Slow")]
    [Platform("Linux")]
    public void Predict_SixteenThreadsOnA10000x9999Rgba16InterlacedPng_StaysUnder3GBPeakRss()
    {
        var model = Path.Combine(TestPaths.RepositoryRoot, "tests", "PretrainedKit.Tests", "Fixtures", "format-v2-fashion3.pkmodel");
        var output = Child.Run(Child.StartInfo("predict-rss", model, _hugePng, "16"));
        var values = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1].Trim());
        TestContext.Progress.WriteLine($"[decode budget] 16 threads, {new FileInfo(_hugePng).Length:N0}-byte PNG: " + string.Join(", ", values.Select(kv => $"{kv.Key}={kv.Value}")));
        Assert.Multiple(() =>
        {
            Assert.That(values["PREDICTED"], Is.EqualTo("16"), "every thread gets a prediction: the image fits the default budget, one at a time");
            Assert.That(long.Parse(values[DecodeBudgetChild.PeakRssMarker], System.Globalization.CultureInfo.InvariantCulture), Is.LessThan(RssBound));
        });
    }
}
