using PretrainedKit.Imaging;
using PretrainedKit.Inspection;
using PretrainedKit.Tests.Inspection;
using SkiaSharp;

namespace PretrainedKit.Tests.Imaging;

/// <summary>
/// The aligned pixel check of near-duplicate candidates (issue #15): copies line up with their original at the shipped
/// threshold, different pictures of the same kind do not, flat images are handled, and the inspector applies the rule
/// (with the feature threshold where a thumbnail is missing).
/// </summary>
public class AlignedThumbnailTests
{
    private static AlignedThumbnail Thumbnail(byte[] encoded) => AlignedThumbnail.Decode(encoded, "test.png", ImagePreprocessingOptions.Default, CancellationToken.None);

    private static double Aligned(byte[] first, byte[] second) => Thumbnail(first).Similarity(Thumbnail(second).Drawings());

    private static SKBitmap Transformed(SKBitmap source, string how)
    {
        switch (how)
        {
            case "resize90":
            case "resize110":
            {
                var scale = how == "resize90" ? 0.9 : 1.1;
                return source.Resize(new SKImageInfo((int)Math.Round(source.Width * scale), (int)Math.Round(source.Height * scale)), new SKSamplingOptions(SKCubicResampler.Mitchell));
            }

            case "crop5":
            {
                var d = (int)Math.Round(source.Width * 0.025);
                var result = new SKBitmap();
                Assert.That(source.ExtractSubset(result, new SKRectI(d, d, source.Width - d, source.Height - d)), Is.True);
                return result.Copy();
            }

            case "mirror":
            {
                var result = new SKBitmap(source.Width, source.Height);
                using var canvas = new SKCanvas(result);
                canvas.Scale(-1, 1, source.Width / 2f, 0);
                canvas.DrawBitmap(source, 0, 0);
                return result;
            }

            default:
                throw new ArgumentException(how);
        }
    }

    [TestCase("circles")]
    [TestCase("squares")]
    [TestCase("stripes")]
    public void Copies_LineUpWithTheirOriginal_DifferentPicturesOfTheKindDoNot(string kind)
    {
        var random = new Random(1500 + kind.Length);
        using var original = InspectionTests.Picture(kind, random);
        var png = TestImages.Png(original);
        var copies = new Dictionary<string, byte[]> { ["jpeg70"] = TestImages.Encode(original, SKEncodedImageFormat.Jpeg, 70) };
        foreach (var how in new[] { "resize90", "resize110", "crop5", "mirror" })
        {
            using var copy = Transformed(original, how);
            copies[how] = TestImages.Png(copy);
        }

        var others = Enumerable.Range(0, 5).Select(_ =>
        {
            using var other = InspectionTests.Picture(kind, random);
            return TestImages.Png(other);
        }).ToList();

        Assert.Multiple(() =>
        {
            foreach (var (how, copy) in copies)
            {
                // A crop of fine stripes lines up only roughly (about 0.97): the rule takes it where the features are almost identical.
                var expected = how == "crop5" ? DataInspector.AlignedLowThreshold : DataInspector.AlignedThreshold;
                Assert.That(Aligned(png, copy), Is.GreaterThanOrEqualTo(expected), how);
            }

            foreach (var other in others)
            {
                Assert.That(Aligned(png, other), Is.LessThan(DataInspector.AlignedLowThreshold), "a different picture of the same kind");
            }
        });
    }

    [Test]
    public void FlatImages_TwoAreTheSame_OneAndAPictureAreNot()
    {
        using var black = TestImages.Bitmap(40, 30, (_, _) => SKColors.Black);
        using var grey = TestImages.Bitmap(64, 64, (_, _) => new SKColor(128, 128, 128));
        using var picture = InspectionTests.Picture("circles", new Random(3));
        Assert.Multiple(() =>
        {
            Assert.That(Thumbnail(TestImages.Png(black)).Identity, Is.Null);
            Assert.That(Aligned(TestImages.Png(black), TestImages.Png(grey)), Is.EqualTo(1.0));
            Assert.That(Aligned(TestImages.Png(black), TestImages.Png(picture)), Is.EqualTo(0.0));
            Assert.That(Aligned(TestImages.Png(picture), TestImages.Png(black)), Is.EqualTo(0.0));
        });
    }

    [Test]
    public void Drawings_AreTheImageAsItIsFirst_ThenEveryVariant_EachOfUnitLength()
    {
        using var picture = InspectionTests.Picture("squares", new Random(4));
        var thumbnail = Thumbnail(TestImages.Png(picture));
        var drawings = thumbnail.Drawings();
        Assert.Multiple(() =>
        {
            Assert.That(drawings, Has.Length.EqualTo(AlignedThumbnail.VariantCount));
            Assert.That(drawings[0], Is.EqualTo(thumbnail.Identity));
            Assert.That(thumbnail.Similarity(drawings), Is.EqualTo(1.0).Within(1e-5), "an image is its own copy");
            Assert.That(drawings.Select(d => System.Numerics.Tensors.TensorPrimitives.Norm<float>(d!)), Is.All.EqualTo(1f).Within(1e-4f));
        });
    }

    [Test]
    public void Inspector_JudgesCandidatesOnPixels_AndFallsBackToFeaturesWithoutThem()
    {
        using var first = InspectionTests.Picture("circles", new Random(5));
        using var second = InspectionTests.Picture("circles", new Random(6));
        var same = Thumbnail(TestImages.Png(first));
        var copy = Thumbnail(TestImages.Encode(first, SKEncodedImageFormat.Jpeg, 70));
        var different = Thumbnail(TestImages.Png(second));

        // Unit features, one pair per two dimensions: cosine 0.93 for (a, b) and (c, d) (candidates, below the
        // features-alone threshold 0.96); (e, f) are test images (never paired with each other); 0.97 for (g, h).
        static float[] Unit(int k, double cosine)
        {
            var v = new float[8];
            v[2 * k] = (float)cosine;
            v[(2 * k) + 1] = (float)Math.Sqrt(1 - (cosine * cosine));
            return v;
        }

        var images = new List<InspectedImage>
        {
            new("a.png", "x", false, [1], Unit(0, 1)),
            new("b.jpg", "x", false, [2], Unit(0, 0.93)),
            new("c.png", "y", false, [3], Unit(1, 1)),
            new("d.png", "y", false, [4], Unit(1, 0.93)),
            new("e.png", "z", true, [5], Unit(2, 1)),
            new("f.png", "z", true, [6], Unit(2, 1)),
            new("g.png", "w", false, [7], Unit(3, 1)),
            new("h.png", "w", false, [8], Unit(3, 0.97)),
        };
        AlignedThumbnail?[] thumbnails = [same, copy, same, different, same, same, null, different];

        var (duplicates, _) = DataInspector.FindDuplicatesAndOutliers(images, DataInspector.GridNearDuplicateThreshold, CancellationToken.None, i => thumbnails[i]);
        var (featuresAlone, _) = DataInspector.FindDuplicatesAndOutliers(images, DataInspector.GridNearDuplicateThreshold, CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(duplicates.Select(d => $"{d.Path}={d.OtherPath} {(d.AlignedSimilarity is null ? "features" : "pixels")}"), Is.EquivalentTo(new[] { "a.png=b.jpg pixels", "g.png=h.png features" }), "the re-encoded copy, not the different picture; g has no thumbnail, so 0.97 >= 0.96 decides");
            Assert.That(duplicates.Single(d => d.Path == "a.png").AlignedSimilarity, Is.GreaterThanOrEqualTo(DataInspector.AlignedThreshold));
            Assert.That(duplicates.Single(d => d.Path == "a.png").Similarity, Is.EqualTo(0.93).Within(1e-5));
            Assert.That(featuresAlone.Select(d => $"{d.Path}={d.OtherPath}"), Is.EqualTo(new[] { "g.png=h.png" }), "at 0.93 the features alone call nothing a copy");
        });
    }

    [TestCase(0.93, 0.996, true)]
    [TestCase(0.93, 0.994, false)]
    [TestCase(0.985, 0.96, true)]
    [TestCase(0.975, 0.96, false)]
    [TestCase(0.985, 0.94, false)]
    [TestCase(0.91, 1.0, false)]
    public void Rule_NeedsCandidateFeatures_AndPixelsThatLineUp(double features, double aligned, bool near) =>
        Assert.That(DataInspector.IsNearDuplicate(features, aligned), Is.EqualTo(near));
}
