using System.Diagnostics;
using PretrainedKit.Serialization;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// Faults while saving: a process killed mid-write, before the rename and at random moments; a read-only file or folder;
/// a full disk. Each time the previous model file stays intact and loadable. Extends the simulated-failure test in
/// <c>Prediction/ModelTests.cs</c>.
/// </summary>
[Platform("Linux")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class SaveFaultTests
{
    /// <summary>Kills at random moments; <c>PRETRAINEDKIT_KILL_ROUNDS</c> raises it.</summary>
    public const int DefaultKillRounds = 8;

    private ImageClassifierModel _model = null!;
    private string _source = null!;
    private string[] _images = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        var data = SmallDataset.Create(4);
        _images = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        _model = await ImageClassifier.Create().FromFolder(data).WithSeed(6).TrainAsync();
        _source = Path.Combine(TestPaths.NewTempFolder(), "source.pkmodel");
        _model.Save(_source);
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    [Test]
    public void Save_ProcessKilledMidWrite_LeavesThePreviousFileIntactAndLoadable()
    {
        var (target, before) = SavedTarget();
        KillWhenReady(Child.StartInfo("save-midwrite", _source, target));

        var temp = TempFiles(target).Single();
        Assert.Multiple(() =>
        {
            Assert.That(File.ReadAllBytes(target), Is.EqualTo(before), "the previous file is byte for byte intact");
            Assert.That(new FileInfo(temp).Length, Is.GreaterThan(0).And.LessThan(before.Length), "the kill landed inside the write");
            Assert.That(() => ModelFile.Load(temp), Throws.TypeOf<ModelFormatException>(), "the half-written file is not a model");
        });
        AssertLoadsAndPredictsLikeTheModel(target);
    }

    [Test]
    public void Save_ProcessKilledBeforeTheRename_LeavesThePreviousFileIntact()
    {
        var (target, before) = SavedTarget();
        KillWhenReady(Child.StartInfo("save-before-rename", _source, target));

        Assert.That(File.ReadAllBytes(target), Is.EqualTo(before));
        Assert.That(() => ModelFile.Load(TempFiles(target).Single()), Throws.Nothing, "the kill landed after a complete write");
        AssertLoadsAndPredictsLikeTheModel(target);
    }

    [Test]
    public void Save_ProcessKilledAtRandomMoments_TargetIsAlwaysAWholeModel()
    {
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("PRETRAINEDKIT_KILL_ROUNDS"), out var r) && r > 0 ? r : DefaultKillRounds;
        var (target, _) = SavedTarget();
        var random = new Random(7);
        for (var round = 0; round < rounds; round++)
        {
            KillWhenReady(Child.StartInfo("save-loop", _source, target), TimeSpan.FromMilliseconds(random.Next(5, 400)));
            Assert.That(() => ModelFile.Load(target), Throws.Nothing, $"round {round}: the target is the old or the new model, never a mix");
        }

        TestContext.Progress.WriteLine($"[faults] {rounds} saving processes killed at random moments; target loadable every time; {TempFiles(target).Length} temporary files left behind");
        AssertLoadsAndPredictsLikeTheModel(target);
    }

    [Test]
    public void Save_ReadOnlyTargetFile_ThrowsNamingItAndKeepsTheOldFile()
    {
        var (target, before) = SavedTarget();
        File.SetAttributes(target, FileAttributes.ReadOnly);
        Assert.That(() => _model.Save(target), Throws.TypeOf<IOException>().With.Message.Contains(target).And.Message.Contains("read-only"));
        Assert.That(File.ReadAllBytes(target), Is.EqualTo(before));
        Assert.That(TempFiles(target), Is.Empty);
    }

    [Test]
    public void Save_ReadOnlyFolder_ThrowsNamingItAndKeepsTheOldFile()
    {
        Assume.That(!Child.IsRoot || Child.HasSetpriv, Is.True, "setpriv (util-linux) is needed to check permissions when running as root");
        var (target, before) = SavedTarget();
        var folder = Path.GetDirectoryName(target)!;
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        try
        {
            string outcome;
            if (Child.IsRoot)
            {
                // Root writes into read-only folders; the save runs as nobody instead.
                MakeTraversable(folder);
                File.SetUnixFileMode(_source, File.GetUnixFileMode(_source) | UnixFileMode.OtherRead);
                MakeTraversable(Path.GetDirectoryName(_source)!);
                outcome = Child.Run(Child.StartInfoAs("65534", "save", _source, target));
            }
            else
            {
                try
                {
                    _model.Save(target);
                    outcome = "OK";
                }
                catch (IOException ex)
                {
                    outcome = $"{ex.GetType().Name}\t{ex.Message}";
                }
            }

            Assert.That(outcome, Does.StartWith("IOException\t").And.Contain(target).And.Contain("unchanged"));
            Assert.That(File.ReadAllBytes(target), Is.EqualTo(before));
            Assert.That(TempFiles(target), Is.Empty);
        }
        finally
        {
            File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    [TestCase(0)]
    [TestCase(10)]
    [TestCase(90)]
    public void Save_DiskFullMidWrite_ThrowsAndKeepsTheOldFile(int percentBeforeFull)
    {
        var (target, before) = SavedTarget();
        var bytesBeforeFull = before.Length * percentBeforeFull / 100;
        var (manifest, head) = ModelFile.Load(_source);
        Assert.That(
            () => ModelFile.Save(target, manifest, head, wrapStream: s => new WriteFaultStream(s, (_, written, count) =>
            {
                // Fails every write with ENOSPC once the capacity is reached, as a full disk does.
                if (written + count > bytesBeforeFull)
                {
                    throw new IOException("No space left on device", 28);
                }
            })),
            Throws.TypeOf<IOException>().With.Message.Contains(target).And.Message.Contains("No space left on device").And.Message.Contains("unchanged"));
        Assert.That(File.ReadAllBytes(target), Is.EqualTo(before));
        Assert.That(TempFiles(target), Is.Empty, "the partial temporary file was removed");
    }

    private static string[] TempFiles(string target) =>
        Directory.GetFiles(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.*.tmp");

    private static void MakeTraversable(string folder)
    {
        for (var dir = new DirectoryInfo(folder); dir is not null && dir.FullName.Length > Path.GetTempPath().Length; dir = dir.Parent)
        {
            dir.UnixFileMode |= UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        }
    }

    /// <summary>Starts a child, waits for it to say it is at the point to kill (plus <paramref name="delay"/>), and kills it.</summary>
    private static void KillWhenReady(ProcessStartInfo info, TimeSpan delay = default)
    {
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            var line = process.StandardOutput.ReadLineAsync();
            Assert.That(line.Wait(TimeSpan.FromMinutes(2)), Is.True, "the child reached the kill point");
            Assert.That(line.Result, Is.EqualTo(ChildHost.ReadyMarker), () => "child said: " + line.Result + " " + (process.HasExited ? stderr.Result : string.Empty));
            Thread.Sleep(delay);
            Assert.That(process.HasExited, Is.False, () => "the child died by itself: " + stderr.Result);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true); // SIGKILL: no finally blocks, no cleanup
            }

            process.WaitForExit();
        }
    }

    private (string Target, byte[] Before) SavedTarget()
    {
        var target = Path.Combine(TestPaths.NewTempFolder("faults"), "model.pkmodel");
        _model.Save(target);
        return (target, File.ReadAllBytes(target));
    }

    private void AssertLoadsAndPredictsLikeTheModel(string target)
    {
        using var loaded = ImageClassifier.Load(target);
        Assert.That(loaded.Predict(_images[0]).Probabilities, Is.EqualTo(_model.Predict(_images[0]).Probabilities));
    }
}
