namespace PretrainedKit.Tests;

/// <summary>Every fixture path, in one place.</summary>
internal static class TestPaths
{
    private static readonly Lazy<string> Root = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PretrainedKit.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (PretrainedKit.sln) above " + AppContext.BaseDirectory);
    });

    public static string RepositoryRoot => Root.Value;

    public static string FashionTrain => Path.Combine(RepositoryRoot, "assets", "fashion-mnist", "train");

    public static string FashionTest => Path.Combine(RepositoryRoot, "assets", "fashion-mnist", "test");

    /// <summary>This test run's temp folder; one per process, so that test runs on the same machine never remove each other's files.</summary>
    public static string TempRoot { get; } = Path.Combine(Path.GetTempPath(), "pretrainedkit-test-runs", $"run-{Environment.ProcessId}");

    public static string PreprocessOnnx => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>A fresh empty folder under the test run's temp folder, removed by the caller's TearDown or left to the OS.</summary>
    public static string NewTempFolder(string name = "pk")
    {
        var path = Path.Combine(TempRoot, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }
}
