using PretrainedKit.Backbones;
using PretrainedKit.Onnx;

namespace PretrainedKit.Tests.Backbones;

/// <summary>
/// The int8 calibration's percentile clipping (issue #18): a rare outlier no longer stretches an activation's range, the
/// histogram is exact under range doubling, and a plain (min, max) calibration keeps its digest.
/// </summary>
public class ActivationHistogramTests
{
    /// <summary>A million values spread evenly over [0, 1), then one outlier.</summary>
    private static float[] UniformWithOutlier(float outlier)
    {
        var values = new float[1_000_001];
        for (var i = 0; i < 1_000_000; i++)
        {
            values[i] = i / 1_000_000f;
        }

        values[^1] = outlier;
        return values;
    }

    [Test]
    public void Range_Percentile_ClipsARareOutlierButKeepsTheBulk()
    {
        var histogram = new ActivationHistogram();
        histogram.Add(UniformWithOutlier(50f));

        var (min, max) = histogram.Range(99.99);

        // Min/max would give a step of 50 / 255 (0.196): every value of the bulk below 0.1 would become 0. Clipped, the
        // step is 1 / 255, and only the outlier (one value in a million) saturates.
        Assert.Multiple(() =>
        {
            Assert.That(histogram.Range(100), Is.EqualTo((0f, 50f)));
            Assert.That(min, Is.EqualTo(0f));
            Assert.That(max, Is.InRange(0.99f, 1.0f + 1e-6f), "at most one bin (50 / 2048 rounded up to a power of two) above the bulk's top");
            Assert.That(QdqQuantizer.ActivationParameters(min, max).Scale, Is.EqualTo(1f / 255).Within(1e-5));
        });
    }

    [Test]
    public void Range_Percentile_ClipsANegativeOutlierOnItsOwnSide()
    {
        var values = UniformWithOutlier(-40f).Select((v, i) => i % 2 == 0 ? -v : v).ToArray();
        values[^1] = -40f;
        var histogram = new ActivationHistogram();
        histogram.Add(values);

        var (min, max) = histogram.Range(99.99);

        Assert.Multiple(() =>
        {
            Assert.That(min, Is.InRange(-1.0f - 1e-6f, -0.99f));
            Assert.That(max, Is.InRange(0.99f, 1.0f + 1e-6f));
        });
    }

    [Test]
    public void Range_KeepsAHeavyTailThatIsNoOutlier()
    {
        // 1 % of the values at 10: a real part of the distribution, which 99.99 % must keep.
        var values = UniformWithOutlier(0f);
        for (var i = 0; i < 10_000; i++)
        {
            values[i * 100] = 10f;
        }

        var histogram = new ActivationHistogram();
        histogram.Add(values);

        Assert.That(histogram.Range(99.99).Max, Is.EqualTo(10f));
    }

    [Test]
    public void Add_InChunksWhoseMagnitudeGrows_SameRangesAsAllAtOnce()
    {
        var random = new Random(3);
        var small = Enumerable.Range(0, 50_000).Select(_ => (float)(random.NextDouble() * 0.3)).ToArray();
        var large = Enumerable.Range(0, 50_000).Select(_ => (float)((random.NextDouble() * 14) - 6)).ToArray();
        var chunked = new ActivationHistogram();
        chunked.Add(small);
        chunked.Add(large);
        var whole = new ActivationHistogram();
        whole.Add([.. large, .. small]);

        Assert.Multiple(() =>
        {
            foreach (var percentile in new[] { 100, 99.999, 99.99, 99.9, 99, 90 })
            {
                Assert.That(chunked.Range(percentile), Is.EqualTo(whole.Range(percentile)), $"percentile {percentile}");
            }

            Assert.That(chunked.Count, Is.EqualTo(100_000));
        });
    }

    [Test]
    public void Add_NotFinite_Throws()
    {
        var histogram = new ActivationHistogram();
        Assert.Multiple(() =>
        {
            Assert.That(() => histogram.Add([1f, float.NaN]), Throws.ArgumentException.With.Message.Contains("not finite"));
            Assert.That(() => histogram.Add([float.PositiveInfinity]), Throws.ArgumentException);
            Assert.That(() => histogram.Range(99.99), Throws.InvalidOperationException, "nothing was added");
        });
    }

    [TestCase(0.0)]
    [TestCase(-1.0)]
    [TestCase(100.5)]
    [TestCase(double.NaN)]
    public void Range_PercentileOutside0To100_Throws(double percentile)
    {
        var histogram = new ActivationHistogram();
        histogram.Add([1f, 2f]);
        Assert.That(() => histogram.Range(percentile), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void FromStatistics_ClipsEachActivationAndRecordsThePercentile()
    {
        var a = new ActivationHistogram();
        a.Add(UniformWithOutlier(50f));
        var b = new ActivationHistogram();
        b.Add([-2f, 0f, 3f]);
        var statistics = new Int8Statistics([("a", a), ("b", b)], 7);

        var clipped = Int8Calibration.FromStatistics(statistics, 99.99);
        var plain = Int8Calibration.FromStatistics(statistics, 100);

        Assert.Multiple(() =>
        {
            Assert.That(clipped.Percentile, Is.EqualTo(99.99));
            Assert.That(clipped.ImageCount, Is.EqualTo(7));
            Assert.That(clipped.Ranges.Select(r => r.Value), Is.EqualTo(new[] { "a", "b" }));
            Assert.That(clipped.Ranges[0].Max, Is.LessThanOrEqualTo(1.0f + 1e-6f));
            Assert.That(clipped.Ranges[1], Is.EqualTo(new Int8Range("b", -2f, 3f)), "three values: nothing to cut");
            Assert.That(plain.Ranges[0], Is.EqualTo(new Int8Range("a", 0f, 50f)));
            Assert.That(plain.Percentile, Is.EqualTo(100));
        });
    }

    [Test]
    public void Digest_PercentileIsPartOfItOnlyBelow100()
    {
        var plain = new Int8Calibration([new Int8Range("x", 0f, 1f)], QuantizedTypes.U8S7, 3);
        var clipped = plain with { Percentile = 99.99 };
        var other = plain with { Percentile = 99.999 };

        Assert.Multiple(() =>
        {
            // The digest of a (min, max) calibration is the one format 4 introduced: cached features stay valid.
            Assert.That(plain.Digest, Is.EqualTo(new Int8Calibration([new Int8Range("x", 0f, 1f)], QuantizedTypes.U8S7, 3) { Percentile = 100 }.Digest));
            Assert.That(plain.Digest, Is.EqualTo(DigestOfFormat4("U8S7;x=00000000,3f800000;")));
            Assert.That(clipped.Digest, Is.Not.EqualTo(plain.Digest), "same ranges, other method: other cache key");
            Assert.That(other.Digest, Is.Not.EqualTo(clipped.Digest));
        });
    }

    [TestCase(0.0)]
    [TestCase(101.0)]
    [TestCase(double.NaN)]
    public void Validate_PercentileOutside0To100_Throws(double percentile)
    {
        var calibration = new Int8Calibration([new Int8Range("x", 0f, 1f)], QuantizedTypes.U8S7, 3) { Percentile = percentile };
        Assert.That(calibration.Validate, Throws.ArgumentException.With.Message.Contains("percentile"));
    }

    /// <summary>The digest as format 4 computed it: the first 16 hex digits of the SHA-256 of the types and the ranges' bits.</summary>
    private static string DigestOfFormat4(string text) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..16].ToLowerInvariant();
}
