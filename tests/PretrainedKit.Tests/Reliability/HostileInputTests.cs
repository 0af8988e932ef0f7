using PretrainedKit.Data;
using PretrainedKit.Imaging;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// The hostile-input corpus through training (default and strict) and prediction. Extends the decoder tests in
/// <c>Imaging/ImageDecoderTests.cs</c> and the dataset tests in <c>Data/DatasetTests.cs</c>, which test each kind alone.
/// </summary>
[Platform("Linux")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class HostileInputTests
{
    private HostileCorpus _corpus = null!;
    private ImageClassifierModel _model = null!;

    [OneTimeSetUp]
    public async Task TrainOnTheCorpus()
    {
        _corpus = HostileCorpus.Create(includeUnreadable: !Child.IsRoot);
        // The plain levers: these tests are about decoding; position-sensitive grid features would turn the JPEG
        // re-encoding noise of a rotated file into larger probability changes than the EXIF comparison allows.
        _model = await ImageClassifier.Create().FromFolder(_corpus.Root).WithSeed(4).WithAutomaticLevers(false).TrainAsync();
        TestContext.Progress.WriteLine($"[hostile corpus] {_corpus.Bad.Count} bad files ({_corpus.BadKinds.Values.Distinct().Count()} kinds), {_corpus.Valid.Count} awkward valid files");
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    [Test]
    public void TrainAsync_HostileCorpus_SkipsEveryBadFileNamingItsReason()
    {
        var report = _model.TrainingReport!;
        Assert.That(report.Skipped.Select(s => s.Path), Is.EquivalentTo(_corpus.Bad.Keys));
        Assert.Multiple(() =>
        {
            foreach (var skipped in report.Skipped)
            {
                Assert.That(skipped.Reason, Is.EqualTo(_corpus.Bad[skipped.Path]), _corpus.BadKinds[skipped.Path]);
                Assert.That(skipped.Message, Does.Contain(skipped.Path), _corpus.BadKinds[skipped.Path]);
            }
        });
    }

    [Test]
    public void TrainAsync_HostileCorpus_UsesEveryAwkwardButValidImage()
    {
        // Every valid file is trained on or validated on, including the one inside the folder named album.jpg.
        Assert.That(_model.TrainingReport!.ImagesUsed, Is.EqualTo(_corpus.BaseImageCount + _corpus.Valid.Count));
    }

    [Test]
    public void TrainAsync_HostileCorpusStrict_FailsListingEveryBadFile()
    {
        var ex = Assert.ThrowsAsync<InvalidDatasetException>(() => ImageClassifier.Create().FromFolder(_corpus.Root).WithStrictMode().TrainAsync());
        var bad = ex!.Problems.Where(p => p.Kind == DatasetProblemKind.BadImage).ToList();
        Assert.That(bad.Select(p => p.Path), Is.EquivalentTo(_corpus.Bad.Keys), "every bad file, and only those");
        Assert.Multiple(() =>
        {
            foreach (var path in _corpus.Bad.Keys)
            {
                Assert.That(ex.Message, Does.Contain(path));
            }
        });
    }

    [Test]
    public void Predict_EachBadFile_ThrowsInvalidImageExceptionWithItsReason()
    {
        Assert.Multiple(() =>
        {
            foreach (var (path, reason) in _corpus.Bad)
            {
                Assert.That(
                    () => _model.Predict(path),
                    Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(reason).And.Property(nameof(InvalidImageException.Path)).EqualTo(path).And.Message.Contains(path),
                    _corpus.BadKinds[path]);
            }
        });
    }

    [Test]
    public void Predict_BadBytesWithoutAPath_ThrowsInvalidImageExceptionWithoutAPath()
    {
        Assert.Multiple(() =>
        {
            // Every bad file whose bytes can be read (not the link, pipe or unreadable file).
            foreach (var path in _corpus.Bad.Keys.Where(p => _corpus.Bad[p] != BadImageReason.Unreadable && new FileInfo(p).Length > 0))
            {
                var bytes = File.ReadAllBytes(path);
                Assert.That(() => _model.Predict(bytes), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(_corpus.Bad[path]).And.Property(nameof(InvalidImageException.Path)).Null, _corpus.BadKinds[path]);
                using var stream = new MemoryStream(bytes);
                Assert.That(() => _model.Predict(stream), Throws.TypeOf<InvalidImageException>(), _corpus.BadKinds[path]);
            }
        });
    }

    [Test]
    public void Predict_EachAwkwardValidFile_Succeeds()
    {
        Assert.Multiple(() =>
        {
            foreach (var (path, kind) in _corpus.Valid)
            {
                Assert.That(_model.Predict(path).Probabilities.Sum(), Is.EqualTo(1f).Within(1e-4f), kind);
            }
        });
    }

    [TestCase(6)]
    [TestCase(8)]
    public void Predict_ExifRotatedJpeg_EqualsTheUprightImage(int orientation)
    {
        using var upright = TestImages.Pattern(64, 48);
        // Quality 100, so that the only difference left between the two files is the orientation.
        var uprightJpeg = TestImages.Encode(upright, SkiaSharp.SKEncodedImageFormat.Jpeg, 100);
        using var stored = TestImages.Rotate90(upright, clockwise: orientation == 8);
        var storedJpeg = TestImages.Encode(stored, SkiaSharp.SKEncodedImageFormat.Jpeg, 100);
        var tagged = TestImages.WithExifOrientation(storedJpeg, (ushort)orientation);

        var expected = _model.Predict(uprightJpeg);
        var actual = _model.Predict(tagged);
        var uprightFeatures = _model.ExtractFeatures(uprightJpeg, null);
        Assert.Multiple(() =>
        {
            Assert.That(actual.Label, Is.EqualTo(expected.Label));
            Assert.That(actual.Probabilities, Is.EqualTo(expected.Probabilities).Within(0.01f), "same probabilities as the upright image, up to JPEG re-encoding");
            var taggedDistance = Distance(_model.ExtractFeatures(tagged, null), uprightFeatures);
            var untaggedDistance = Distance(_model.ExtractFeatures(storedJpeg, null), uprightFeatures);
            Assert.That(taggedDistance, Is.LessThan(untaggedDistance / 4), "the backbone sees the rotated pixels upright; ignoring the tag would not");
        });
    }

    [Test]
    public void Predict_HugeDeclaredSize_IsRefusedFromTheHeaderInBoundedMemory()
    {
        var path = _corpus.Bad.Single(b => b.Value == BadImageReason.TooLarge).Key;
        _ = Assert.Throws<InvalidImageException>(() => _model.Predict(path)); // warm up code paths
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        Assert.That(() => _model.Predict(path), Throws.TypeOf<InvalidImageException>().With.Message.Contains("60000x60000"));
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        TestContext.Progress.WriteLine($"[hostile corpus] 60000x60000 PNG refused in {stopwatch.Elapsed.TotalMilliseconds:F1} ms, {allocated:N0} bytes allocated");
        Assert.That(allocated, Is.LessThan(1_000_000), "the 14.4 GB of pixels were never allocated");
    }

    [Test]
    public void Predict_LongAndNonAsciiPaths_EqualTheSameImageUnderAShortPath()
    {
        var copy = Path.Combine(TestPaths.NewTempFolder(), "a.png");
        var unusual = _corpus.Valid.Keys.Where(p => p.Length > 1000 || p.Any(c => c > 127)).ToList();
        Assert.That(unusual, Has.Count.GreaterThanOrEqualTo(2));
        foreach (var path in unusual)
        {
            File.Copy(path, copy, overwrite: true);
            var p = _model.Predict(path);
            Assert.That(p.Path, Is.EqualTo(path));
            Assert.That(p.Probabilities, Is.EqualTo(_model.Predict(copy).Probabilities), path);
        }
    }

    [Test]
    public void Predict_PathLongerThanTheFileSystemAllows_ThrowsUnreadable()
    {
        Assert.That(() => _model.Predict(_corpus.TooLongPath), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.Unreadable));
    }

    [Test]
    public async Task FolderNamedLikeAnImage_IsAFolderToScanNotAFileToDecode()
    {
        Assert.Multiple(() =>
        {
            Assert.That(() => _model.Predict(_corpus.FolderNamedLikeImage), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.Unreadable).And.Message.Contains("folder"));
            Assert.That(_model.TrainingReport!.Skipped.Select(s => s.Path), Does.Not.Contain(_corpus.FolderNamedLikeImage));
        });

        // Given explicitly as an image, the folder is skipped and named.
        var images = SmallDataset.Classes.SelectMany(c => Directory.GetFiles(Path.Combine(_corpus.Root, c), $"{c}-*.png").Select(p => new LabeledImage(p, c))).ToList();
        images.Add(new LabeledImage(_corpus.FolderNamedLikeImage, "red"));
        using var model = await ImageClassifier.Create().FromImages(images).WithSeed(1).TrainAsync();
        Assert.That(model.TrainingReport!.Skipped.Single().Path, Is.EqualTo(_corpus.FolderNamedLikeImage));
    }

    [Test]
    public void UnreadableFile_WhenRunAsRoot_IsCheckedAsAnUnprivilegedUser()
    {
        // As root, file permissions do not stop reads; the corpus then checks permission in a child process running as
        // nobody (65534) through setpriv: its decode path, and training in default and strict mode.
        Assume.That(Child.IsRoot, Is.True, "not root: the unreadable file is part of the in-process corpus above");
        Assume.That(Child.HasSetpriv, Is.True, "setpriv (util-linux) is needed to check permissions when running as root");
        var root = SmallDataset.Create(3);
        var unreadable = Path.Combine(root, "red", "no-read-permission.png");
        File.Copy(Directory.GetFiles(Path.Combine(root, "red"))[0], unreadable);
        File.SetUnixFileMode(unreadable, UnixFileMode.None);
        MakeReadableByAll(root);
        File.SetUnixFileMode(unreadable, UnixFileMode.None);

        var probe = Child.Run(Child.StartInfoAs("65534", "probe", unreadable));
        var train = Child.Run(Child.StartInfoAs("65534", "train", root));
        var strict = Child.Run(Child.StartInfoAs("65534", "train", root, "strict"));
        Assert.Multiple(() =>
        {
            Assert.That(probe, Does.StartWith($"{BadImageReason.Unreadable}\t{unreadable}: ").And.Contain("permission denied"));
            Assert.That(train, Does.Contain($"SKIPPED\t{BadImageReason.Unreadable}\t{unreadable}\t").And.Contain("USED\t9"));
            Assert.That(strict, Does.Contain($"PROBLEM\t{DatasetProblemKind.BadImage}\t{unreadable}\t"));
        });
    }

    private static void MakeReadableByAll(string root)
    {
        // Temp folders are made by root; let nobody read them.
        for (var dir = new DirectoryInfo(root); dir is not null && dir.FullName != Path.GetTempPath().TrimEnd('/'); dir = dir.Parent)
        {
            dir.UnixFileMode |= UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            File.SetUnixFileMode(entry, File.GetUnixFileMode(entry) | UnixFileMode.OtherRead | (Directory.Exists(entry) ? UnixFileMode.OtherExecute : UnixFileMode.None));
        }
    }

    private static double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum());
}
