using System.Diagnostics;
using PretrainedKit.Imaging;
using PretrainedKit.Serialization;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// The test assembly's entry point, used only when a test starts this assembly as a child process (to kill it mid-save,
/// or to run as an unprivileged user). NUnit never calls it.
/// </summary>
public static class ChildHost
{
    /// <summary>Printed by the child once it is paused at the point where the parent should kill it.</summary>
    public const string ReadyMarker = "READY";

    public static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: PretrainedKit.Tests save|save-midwrite|save-before-rename|save-loop SOURCE TARGET | probe IMAGE | train DIR [strict]");
            return 2;
        }

        switch (args[0])
        {
            case "save-midwrite":
            {
                // Pauses inside the write of the temporary file, after half of the archive has gone to disk.
                var (manifest, head) = ModelFile.Load(args[1]);
                var size = new FileInfo(args[1]).Length;
                ModelFile.Save(args[2], manifest with { CreatedUtc = DateTimeOffset.UtcNow }, head, wrapStream: s => new WriteFaultStream(s, (inner, written, _) =>
                {
                    // Half the file is on disk: flush it and wait to be killed.
                    if (written >= size / 2)
                    {
                        inner.Flush();
                        (inner as FileStream)?.Flush(flushToDisk: true);
                        PauseForever();
                    }
                }));
                return 1; // Never reached: the parent kills the process.
            }

            case "save-before-rename":
            {
                var (manifest, head) = ModelFile.Load(args[1]);
                ModelFile.Save(args[2], manifest with { CreatedUtc = DateTimeOffset.UtcNow }, head, beforeCommit: _ => PauseForever());
                return 1;
            }

            case "save-loop":
            {
                var (manifest, head) = ModelFile.Load(args[1]);
                Console.Out.WriteLine(ReadyMarker);
                Console.Out.Flush();
                while (true)
                {
                    ModelFile.Save(args[2], manifest with { CreatedUtc = DateTimeOffset.UtcNow }, head);
                }
            }

            case "save":
                try
                {
                    var (manifest, head) = ModelFile.Load(args[1]);
                    ModelFile.Save(args[2], manifest with { CreatedUtc = DateTimeOffset.UtcNow }, head);
                    Console.Out.WriteLine("OK");
                }
                catch (IOException ex)
                {
                    Console.Out.WriteLine($"{ex.GetType().Name}\t{ex.Message}");
                }

                return 0;

            case "probe":
                try
                {
                    var bytes = ImageDecoder.ReadFile(args[1]);
                    var rgb = new byte[224 * 224 * 3];
                    ImageDecoder.DecodeNormalized(bytes, args[1], ImagePreprocessingOptions.Default, 224, 224, rgb);
                    Console.Out.WriteLine("OK");
                }
                catch (InvalidImageException ex)
                {
                    Console.Out.WriteLine($"{ex.Reason}\t{ex.Message}");
                }

                return 0;

            case "train":
            {
                var builder = ImageClassifier.Create().FromFolder(args[1]).WithSeed(1);
                if (args.Length > 2 && args[2] == "strict")
                {
                    builder = builder.WithStrictMode();
                }

                try
                {
                    using var model = builder.TrainAsync().GetAwaiter().GetResult();
                    foreach (var s in model.TrainingReport!.Skipped)
                    {
                        Console.Out.WriteLine($"SKIPPED\t{s.Reason}\t{s.Path}\t{s.Message}");
                    }

                    Console.Out.WriteLine($"USED\t{model.TrainingReport.ImagesUsed}");
                }
                catch (PretrainedKit.Data.InvalidDatasetException ex)
                {
                    foreach (var p in ex.Problems)
                    {
                        Console.Out.WriteLine($"PROBLEM\t{p.Kind}\t{p.Path}\t{p.Message}");
                    }
                }

                return 0;
            }

            case "scan":
            {
                // Prints what a folder scan found, for a scan run as another user (an unreadable sub-folder).
                var scan = PretrainedKit.Data.DatasetScanner.ScanFolder(args[1]);
                Console.Out.WriteLine($"IMAGES\t{scan.Images.Count}");
                foreach (var ignored in scan.IgnoredFiles)
                {
                    Console.Out.WriteLine($"IGNORED\t{ignored}");
                }

                return 0;
            }

            case "predict-rss":
                return DecodeBudgetChild.Run(args);

            default:
                Console.Error.WriteLine($"unknown command '{args[0]}'");
                return 2;
        }
    }

    private static void PauseForever()
    {
        Console.Out.WriteLine(ReadyMarker);
        Console.Out.Flush();
        Thread.Sleep(Timeout.Infinite);
    }
}

/// <summary>Starts <see cref="ChildHost"/> in a child process.</summary>
internal static class Child
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "PretrainedKit.Tests.dll");

    public static ProcessStartInfo StartInfo(params string[] args) => StartInfoAs(null, args);

    /// <summary>With <paramref name="unprivileged"/> set, runs as user <c>nobody</c> through <c>setpriv</c> (the caller must be root).</summary>
    public static ProcessStartInfo StartInfoAs(string? unprivileged, params string[] args)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var info = unprivileged is null ? new ProcessStartInfo(dotnet) : new ProcessStartInfo("setpriv");
        if (unprivileged is not null)
        {
            foreach (var a in new[] { $"--reuid={unprivileged}", $"--regid={unprivileged}", "--clear-groups", "--", dotnet })
            {
                info.ArgumentList.Add(a);
            }

            info.Environment["HOME"] = Path.GetTempPath();
            info.Environment["DOTNET_CLI_HOME"] = Path.GetTempPath();
        }

        info.ArgumentList.Add(Dll);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        return info;
    }

    /// <summary>Runs a child to completion and returns its standard output.</summary>
    public static string Run(ProcessStartInfo info)
    {
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("the child process did not finish within 3 minutes");
        }

        Assert.That(process.ExitCode, Is.EqualTo(0), () => "child failed: " + stderr.Result);
        return stdout.Result;
    }

    /// <summary>Whether the tests run as root (then file permissions do not stop reads, and checks run as <c>nobody</c>).</summary>
    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>Whether <c>setpriv</c> (util-linux) is installed, to run a child as another user.</summary>
    public static bool HasSetpriv => IsOnPath("setpriv");

    /// <summary>Whether a program is on the PATH.</summary>
    public static bool IsOnPath(string program) => (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Any(d => File.Exists(Path.Combine(d, program)));
}
