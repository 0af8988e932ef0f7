using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json.Nodes;
using PretrainedKit.Backbones;
using PretrainedKit.Data;
using PretrainedKit.Imaging;
using PretrainedKit.Serialization;
using PretrainedKit.Tests.Backbones;
using PretrainedKit.Tests.Cli;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// Hostile file systems (issue #19): links to pipes and devices, link loops in a dataset, a sparse 2 GB file, endless
/// streams, unreadable and over-long folders, names that are not UTF-8, a zero-width PNG, model and backbone files that
/// are pipes or devices, and a low open-file limit. Every case must end quickly with an error that names the path.
/// </summary>
[Platform("Linux")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class HostileFilesystemTests
{
    /// <summary>Generous: every refusal here takes milliseconds; a regression that blocks fails instead of hanging the run.</summary>
    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(30);

    private string _folder = null!;
    private string _png = null!;
    private string _fifo = null!;

    private static string FixtureModel => Path.Combine(TestPaths.RepositoryRoot, "tests", "PretrainedKit.Tests", "Fixtures", "format-v2-fashion3.pkmodel");

    [OneTimeSetUp]
    public void CreateFiles()
    {
        _folder = TestPaths.NewTempFolder("hostile-fs");
        using var pattern = TestImages.Pattern(32, 32);
        _png = Path.Combine(_folder, "real.png");
        File.WriteAllBytes(_png, TestImages.Png(pattern));
        _fifo = Path.Combine(_folder, "pipe.png");
        Shell($"mkfifo '{_fifo}'");
    }

    [Test]
    public void ReadFile_LinkToRegularFile_ReadsIt()
    {
        var link = Link("link-to-real.png", _png);
        Assert.That(ImageDecoder.ReadFile(link), Is.EqualTo(File.ReadAllBytes(_png)));
    }

    [Test]
    public void ReadFile_LinkToNamedPipe_IsRefusedWithoutOpeningIt()
    {
        var link = Link("link-to-pipe.png", _fifo);
        var ex = ThrownWithin(() => ImageDecoder.ReadFile(link));
        Assert.That(ex, Is.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.Unreadable)
            .And.Message.Contains(link).And.Message.Contains(_fifo).And.Message.Contains("named pipe"));
    }

    [Test]
    public void ReadFile_NamedPipe_IsRefusedWithoutOpeningIt()
    {
        var ex = ThrownWithin(() => ImageDecoder.ReadFile(_fifo));
        Assert.That(ex, Is.TypeOf<InvalidImageException>().With.Message.Contains(_fifo).And.Message.Contains("named pipe"));
    }

    [TestCase("/dev/zero")]
    [TestCase("/dev/urandom")]
    public void ReadFile_LinkToDevice_IsRefusedWithoutReadingIt(string device)
    {
        var link = Link($"link-to-{Path.GetFileName(device)}.png", device);
        var ex = ThrownWithin(() => ImageDecoder.ReadFile(link));
        Assert.That(ex, Is.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.Unreadable)
            .And.Message.Contains(device).And.Message.Contains("device"));
    }

    [Test]
    public void ReadFile_LinkLoop_IsRefused()
    {
        var a = Path.Combine(_folder, "loop-a.png");
        var b = Path.Combine(_folder, "loop-b.png");
        File.CreateSymbolicLink(a, b);
        File.CreateSymbolicLink(b, a);
        var ex = ThrownWithin(() => ImageDecoder.ReadFile(a));
        Assert.That(ex, Is.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.Unreadable).And.Message.Contains("loop"));
    }

    [Test]
    public void ReadFile_SparseTwoGigabyteFile_IsRefusedFromItsLengthWithoutReadingIt()
    {
        // A valid 1x1 PNG padded with a 2,000,000,000-byte hole: nothing is on disk, but reading it costs 2 GB.
        var path = Path.Combine(_folder, "sparse-2gb.png");
        using (var one = TestImages.Pattern(1, 1))
        using (var file = File.Create(path))
        {
            file.Write(TestImages.Png(one));
            file.SetLength(2_000_000_000);
        }

        var before = GC.GetTotalAllocatedBytes(precise: true);
        var ex = ThrownWithin(() => ImageDecoder.ReadFile(path));
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Multiple(() =>
        {
            Assert.That(ex, Is.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.TooLarge)
                .And.Message.Contains(path).And.Message.Contains("2,000,000,000 bytes").And.Message.Contains("ImageLimits.MaxFileBytes"));
            Assert.That(allocated, Is.LessThan(10_000_000), "the file is judged by its length, not read");
        });
    }

    [Test]
    public void ReadStream_EndlessStream_StopsReadingAtTheLimit()
    {
        using var endless = new EndlessStream();
        var ex = ThrownWithin(() => ImageDecoder.ReadStream(endless, maxBytes: 1_000_000));
        Assert.Multiple(() =>
        {
            Assert.That(ex, Is.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.TooLarge).And.Message.Contains("stream"));
            Assert.That(endless.BytesRead, Is.LessThanOrEqualTo(1_000_001));
        });
    }

    [Test]
    public void ReadStream_WithinTheLimit_ReadsEveryByte()
    {
        var bytes = File.ReadAllBytes(_png);
        using var stream = new MemoryStream(bytes);
        Assert.That(ImageDecoder.ReadStream(stream), Is.EqualTo(bytes));
    }

    [Test]
    public void ScanFolder_LinkLoopsAndLinksIntoTheDataset_AreIgnoredAndNamed()
    {
        var root = SmallDataset.Create(4);
        var real = DatasetScanner.ScanFolder(root);
        var up1 = Path.Combine(root, "red", "l1");
        var up2 = Path.Combine(root, "red", "l2");
        var sibling = Path.Combine(root, "red", "greens");
        var self = Path.Combine(root, "blue", "nested", "self");
        Directory.CreateSymbolicLink(up1, "..");
        Directory.CreateSymbolicLink(up2, "..");
        Directory.CreateSymbolicLink(sibling, Path.Combine(root, "green"));
        Directory.CreateDirectory(Path.GetDirectoryName(self)!);
        Directory.CreateSymbolicLink(self, Path.Combine(root, "blue"));

        // Two links to one folder outside the dataset: followed once.
        var outside = TestPaths.NewTempFolder("shared-outside");
        File.Copy(_png, Path.Combine(outside, "shared.png"));
        Directory.CreateSymbolicLink(Path.Combine(root, "blue", "shared"), outside);
        var second = Path.Combine(root, "red", "shared-again");
        Directory.CreateSymbolicLink(second, outside);

        var scan = Within(() => DatasetScanner.ScanFolder(root));
        Assert.Multiple(() =>
        {
            Assert.That(scan.Images.Where(i => Path.GetFileName(i.Path) != "shared.png"), Is.EquivalentTo(real.Images), "each real image once, under its own class");
            Assert.That(scan.Images.Where(i => Path.GetFileName(i.Path) == "shared.png").Select(i => i.Label), Is.EqualTo(new[] { "blue" }), "a folder reached by two links is scanned once");
            Assert.That(scan.IgnoredFiles, Has.One.Matches<string>(i => i.StartsWith(second + ": ", StringComparison.Ordinal) && i.Contains("already scanned", StringComparison.Ordinal)));
            Assert.That(scan.IgnoredFiles, Has.One.Matches<string>(i => i.StartsWith(up1 + ": ", StringComparison.Ordinal) && i.Contains("loop", StringComparison.Ordinal)));
            Assert.That(scan.IgnoredFiles, Has.One.Matches<string>(i => i.StartsWith(up2 + ": ", StringComparison.Ordinal) && i.Contains("loop", StringComparison.Ordinal)));
            Assert.That(scan.IgnoredFiles, Has.One.Matches<string>(i => i.StartsWith(sibling + ": ", StringComparison.Ordinal) && i.Contains("inside the dataset folder", StringComparison.Ordinal)));
            Assert.That(scan.IgnoredFiles, Has.One.Matches<string>(i => i.StartsWith(self + ": ", StringComparison.Ordinal) && i.Contains("inside the dataset folder", StringComparison.Ordinal)));
        });
    }

    [Test]
    public void ScanFolder_LinkToAFolderOutsideTheDataset_IsFollowed()
    {
        var root = SmallDataset.Create(2);
        var outside = TestPaths.NewTempFolder("outside");
        File.Copy(_png, Path.Combine(outside, "extra.png"));
        Directory.CreateSymbolicLink(Path.Combine(root, "red", "more"), outside);
        var scan = DatasetScanner.ScanFolder(root);
        Assert.That(scan.Images.Where(i => i.Label == "red").Select(i => Path.GetFileName(i.Path)), Does.Contain("extra.png"));
    }

    [Test]
    public void ScanFolder_NestedPathOver4096Characters_IsSkippedAndNamedShortly()
    {
        var root = SmallDataset.Create(2);
        var red = Path.Combine(root, "red");

        // 22 levels of 200-character names (about 4,400 characters): too long for any path call, so built in two relative
        // steps, as a user's tool could.
        var name = new string('d', 199);
        var first = string.Join('/', Enumerable.Repeat(name, 15));
        var rest = string.Join('/', Enumerable.Repeat(name, 7));
        Shell($"set -e; cd '{red}'; mkdir -p {first}; cd {first}; mkdir -p {rest}; cp '{_png}' {rest}/deep.png");
        try
        {
            var scan = Within(() => DatasetScanner.ScanFolder(root));
            var entry = scan.IgnoredFiles.SingleOrDefault(i => i.Contains("characters long", StringComparison.Ordinal));
            Assert.Multiple(() =>
            {
                Assert.That(entry, Is.Not.Null, "the over-long folder is named among the ignored");
                Assert.That(entry!.Length, Is.LessThan(600), "the message cuts the path in the middle");
                Assert.That(scan.Images.Count(i => i.Label == "red"), Is.EqualTo(2), "the rest of the class is still scanned");
            });
        }
        finally
        {
            Shell($"rm -rf '{Path.Combine(red, name)}'");
        }
    }

    [Test]
    public void ScanFolder_UnreadableSubfolder_IsSkippedAndNamed()
    {
        Assume.That(!Child.IsRoot || Child.HasSetpriv, Is.True, "setpriv (util-linux) is needed to scan as an unprivileged user when the tests run as root (root reads any folder)");
        var root = SmallDataset.Create(2);
        var locked = Path.Combine(root, "green", "locked");
        Directory.CreateDirectory(locked);
        File.Copy(_png, Path.Combine(locked, "hidden.png"));
        OpenToOthers(root);
        File.SetUnixFileMode(locked, UnixFileMode.None);
        try
        {
            var output = Child.Run(Child.StartInfoAs(Child.IsRoot ? "65534" : null, "scan", root));
            Assert.Multiple(() =>
            {
                Assert.That(output, Does.Contain($"IGNORED\t{locked}: the folder cannot be read: permission denied"));
                Assert.That(output, Does.Contain("IMAGES\t6"), "the other images are still scanned");
            });
        }
        finally
        {
            File.SetUnixFileMode(locked, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    [Test]
    public void ReadFile_NameThatIsNotUtf8_SaysSoInsteadOfMissing()
    {
        var folder = Path.Combine(_folder, "non-utf8");
        Directory.CreateDirectory(folder);
        Shell($"cd '{folder}' && touch \"$(printf 'caf\\351.png')\""); // Latin-1 "café": byte 0xE9 alone is not UTF-8.
        try
        {
            var path = Directory.EnumerateFiles(folder).Single();
            Assert.That(path, Does.Contain("\uFFFD"), ".NET shows the undecodable byte as U+FFFD");
            var ex = ThrownWithin(() => ImageDecoder.ReadFile(path));
            Assert.That(ex, Is.TypeOf<InvalidImageException>().With.Message.Contains("not valid UTF-8").And.Message.Not.Contains("does not exist"));
        }
        finally
        {
            Shell($"rm -rf '{folder}'"); // Directory.Delete cannot name the file either.
        }
    }

    [TestCase(0, 16)]
    [TestCase(16, 0)]
    public void DecodeNormalized_PngDeclaringZeroSize_IsReportedAsAnInvalidSize(int width, int height)
    {
        var png = TestImages.RawPng(width, height, 8, 2, new byte[Math.Max(1, height) * (1 + (width * 3))]);
        var rgb = new byte[224 * 224 * 3];
        Assert.That(
            () => ImageDecoder.DecodeNormalized(png, "zero.png", ImagePreprocessingOptions.Default, 224, 224, rgb),
            Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).EqualTo(BadImageReason.Undecodable).And.Message.Contains($"invalid size, {width}x{height}"));
    }

    [TestCase("/dev/zero")]
    [TestCase("pipe")]
    public void Load_ModelFileThatIsADeviceOrPipe_IsRefusedWithoutReadingIt(string target)
    {
        var link = Link($"model-{Path.GetFileName(target)}.pkmodel", target == "pipe" ? _fifo : target);
        var ex = ThrownWithin(() => ImageClassifier.Load(link));
        Assert.That(ex, Is.TypeOf<ModelFormatException>().With.Message.Contains(link).And.Message.Contains("not a regular file"));
    }

    [TestCase("/dev/zero")]
    [TestCase("pipe")]
    public void Load_ModelWhoseCustomBackboneIsADeviceOrPipe_IsRefusedWithoutReadingIt(string target)
    {
        // What ImageClassifier.Load does with a manifest that records a custom backbone at this path.
        var onnx = target == "pipe" ? _fifo : target;
        var definition = CustomBackboneTests.Definition;
        var recorded = new BackboneManifest("tiny-cnn", "0", TinyOnnx.FeatureSize, TinyOnnx.Size, TinyOnnx.Size, new CustomBackboneManifest(onnx, definition));
        var ex = ThrownWithin(() => ModelBackbone.Resolve(Path.Combine(_folder, "m.pkmodel"), recorded, null));
        Assert.That(ex, Is.TypeOf<ArgumentException>().With.Message.Contains(onnx).And.Message.Contains("not a regular file"));
    }

    [Test]
    public void Load_ModelFileWithMaxPixelsAboveTheCap_IsAnInvalidModelFile()
    {
        var path = Path.Combine(_folder, "max-pixels-9e18.pkmodel");
        File.Copy(FixtureModel, path, overwrite: true);
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
        {
            var entry = zip.GetEntry(ModelFile.ManifestEntry)!;
            JsonNode manifest;
            using (var read = entry.Open())
            {
                manifest = JsonNode.Parse(read)!;
            }

            manifest["image"]!["maxPixels"] = 9_000_000_000_000_000_000;
            entry.Delete();
            using var write = zip.CreateEntry(ModelFile.ManifestEntry).Open();
            using var writer = new System.Text.Json.Utf8JsonWriter(write);
            manifest.WriteTo(writer);
        }

        Assert.That(() => ImageClassifier.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains(path).And.Message.Contains("MaxPixelsCap"));
    }

    [TestCase("predict")]
    [TestCase("train")]
    [Category("Slow")]
    public void Cli_With64OpenFilesAllowed_ExitsCleanlyWithOneLine(string command)
    {
        Assume.That(Child.IsOnPath("prlimit"), Is.True, "prlimit (util-linux) is needed to lower the open-file limit");
        Assume.That(File.Exists(CliProcess.CliDll), Is.True, "the CLI is built");
        string[] args = command == "predict"
            ? ["predict", FixtureModel, _png]
            : ["train", SmallDataset.Create(3), "--model", Path.Combine(_folder, "fd.pkmodel"), "--quiet"];
        var (exitCode, _, stderrText) = CliProcess.RunUnder(["prlimit", "--nofile=64"], null, args);
        var errorLines = stderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error:", StringComparison.Ordinal) || l.Contains("exception", StringComparison.OrdinalIgnoreCase)).ToList();
        TestContext.Progress.WriteLine($"[nofile=64] {command}: exit {exitCode}; {stderrText.Trim()}");
        Assert.Multiple(() =>
        {
            Assert.That(exitCode, Is.EqualTo(0).Or.EqualTo(2), "works, or fails as a user error; never an abort (134)");
            Assert.That(stderrText, Does.Not.Contain("Unhandled exception").And.Not.Contain("   at "));
            Assert.That(errorLines, Has.Count.LessThanOrEqualTo(1));
        });
    }

    private static TResult Within<TResult>(Func<TResult> action)
    {
        var task = Task.Run(action);
        Assert.That(task.Wait(NoHang), Is.True, "finished without hanging");
        return task.Result;
    }

    private static Exception? ThrownWithin(Action action)
    {
        var task = Task.Run(() =>
        {
            try
            {
                action();
                return null;
            }
            catch (Exception ex)
            {
                return ex;
            }
        });
        Assert.That(task.Wait(NoHang), Is.True, "finished without hanging");
        return task.Result;
    }

    private static void Shell(string script)
    {
        using var process = Process.Start(new ProcessStartInfo("/bin/sh") { ArgumentList = { "-c", script }, RedirectStandardError = true })!;
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(NoHang))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"sh -c {script} did not finish");
        }

        var error = stderr.Result;
        Assert.That(process.ExitCode, Is.Zero, () => $"sh -c {script}: {error}");
    }

    /// <summary>Lets user nobody read the dataset (temporary folders are made by the test user).</summary>
    private static void OpenToOthers(string root)
    {
        for (var dir = new DirectoryInfo(root); dir is not null && dir.FullName != Path.GetTempPath().TrimEnd('/'); dir = dir.Parent)
        {
            dir.UnixFileMode |= UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            File.SetUnixFileMode(entry, File.GetUnixFileMode(entry) | UnixFileMode.OtherRead | (Directory.Exists(entry) ? UnixFileMode.OtherExecute : UnixFileMode.None));
        }
    }

    private string Link(string name, string target)
    {
        var link = Path.Combine(_folder, name);
        if (File.Exists(link) || new FileInfo(link).LinkTarget is not null)
        {
            File.Delete(link);
        }

        File.CreateSymbolicLink(link, target);
        return link;
    }

    /// <summary>A stream of zeros that never ends, counting what is read from it.</summary>
    private sealed class EndlessStream : Stream
    {
        public long BytesRead { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            Array.Clear(buffer, offset, count);
            BytesRead += count;
            return count;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
