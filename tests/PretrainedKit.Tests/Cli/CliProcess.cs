using System.Diagnostics;

namespace PretrainedKit.Tests.Cli;

/// <summary>Runs the real CLI as a separate process, the way a user does; shared by every CLI test.</summary>
internal static class CliProcess
{
    /// <summary>Gets the built CLI: tests/PretrainedKit.Tests/bin/&lt;Configuration&gt;/net10.0/ maps to src/PretrainedKit.Cli/bin/&lt;Configuration&gt;/net10.0/.</summary>
    public static string CliDll
    {
        get
        {
            var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
            return Path.Combine(TestPaths.RepositoryRoot, "src", "PretrainedKit.Cli", "bin", configuration, "net10.0", "PretrainedKit.Cli.dll");
        }
    }

    public static (int ExitCode, string Out, string Err) Run(IDictionary<string, string>? environment, params string[] args) =>
        RunUnder([], environment, args);

    /// <summary>Runs the CLI through a launcher, for example <c>["prlimit", "--nofile=64"]</c>; an empty launcher runs it directly.</summary>
    public static (int ExitCode, string Out, string Err) RunUnder(IReadOnlyList<string> launcher, IDictionary<string, string>? environment, params string[] args)
    {
        var info = new ProcessStartInfo(launcher.Count > 0 ? launcher[0] : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        foreach (var part in launcher.Skip(1).Concat(launcher.Count > 0 ? ["dotnet"] : []))
        {
            info.ArgumentList.Add(part);
        }

        info.ArgumentList.Add(CliDll);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.That(process.WaitForExit(TimeSpan.FromMinutes(3)), Is.True, "the CLI finished");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
