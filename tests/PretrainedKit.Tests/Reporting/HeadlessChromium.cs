using System.Diagnostics;

namespace PretrainedKit.Tests.Reporting;

/// <summary>Runs Debian's <c>chromium</c> headless (as CI's root user) with a fresh profile, no network features and a time limit.</summary>
internal static class HeadlessChromium
{
    /// <summary>Why the browser tests are skipped when no browser is found.</summary>
    public const string MissingReason =
        "Chromium is not installed, so the real-browser report tests cannot run. Install Debian's package (apt-get install -y chromium; .ci/run does this), " +
        "or set PRETRAINEDKIT_CHROMIUM to a Chromium or Chrome executable.";

    private static readonly Lazy<string?> Executable = new(Find);

    /// <summary>Gets the browser's path, or <see langword="null"/> when none is installed.</summary>
    public static string? Path => Executable.Value;

    /// <summary>Loads <paramref name="file"/> and returns the DOM after the load event (scripts in the page have run).</summary>
    public static string DumpDom(string file, int width, int height, params string[] extraArguments) =>
        Run([.. extraArguments, $"--window-size={width},{height}", "--dump-dom", new Uri(file).AbsoluteUri]);

    /// <summary>Loads <paramref name="file"/> in a <paramref name="width"/> x <paramref name="height"/> window and saves a PNG of it.</summary>
    public static void Screenshot(string file, string png, int width, int height)
    {
        Run(["--hide-scrollbars", $"--window-size={width},{height}", $"--screenshot={png}", new Uri(file).AbsoluteUri]);
        Assert.That(File.Exists(png), Is.True, $"chromium wrote the screenshot {png}");
    }

    private static string Run(string[] arguments)
    {
        var profile = TestPaths.NewTempFolder("chromium-profile");
        var info = new ProcessStartInfo(Path ?? throw new InvalidOperationException(MissingReason)) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var flag in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio", $"--user-data-dir={profile}",
                 })
        {
            info.ArgumentList.Add(flag);
        }

        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"chromium did not finish within 90 s: {string.Join(' ', arguments)}");
        }

        Assert.That(process.ExitCode, Is.EqualTo(0), () => $"chromium failed: {stderr.Result}");
        try
        {
            Directory.Delete(profile, recursive: true);
        }
        catch (IOException)
        {
            // A browser helper may still hold a file for a moment; TempCleanup removes the folder at the end of the run.
        }

        return stdout.Result;
    }

    private static string? Find()
    {
        if (Environment.GetEnvironmentVariable("PRETRAINEDKIT_CHROMIUM") is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : throw new InvalidOperationException($"PRETRAINEDKIT_CHROMIUM is '{configured}', which does not exist.");
        }

        var folders = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return new[] { "chromium", "chromium-browser", "google-chrome", "google-chrome-stable" }
            .SelectMany(name => folders.Select(folder => System.IO.Path.Combine(folder, name)))
            .FirstOrDefault(File.Exists);
    }
}
