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

    public static string PreprocessOnnx => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>This test run's own temp folder (per process, so concurrent runs on one machine never delete each other's files).</summary>
    public static string RunRoot { get; } = Path.Combine(Path.GetTempPath(), $"pretrainedkit-tests-{Environment.ProcessId}");

    /// <summary>A fresh empty folder under the test run's temp folder, removed by the caller's TearDown or left to the OS.</summary>
    public static string NewTempFolder(string name = "pk")
    {
        var path = Path.Combine(RunRoot, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }
}
