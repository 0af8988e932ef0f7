namespace PretrainedKit.Tests;

/// <summary>Removes the run's temporary folders when every test is done.</summary>
[SetUpFixture]
public sealed class TempCleanup
{
    [OneTimeTearDown]
    public void RemoveTempFolders()
    {
        var root = TestPaths.RunRoot;
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
