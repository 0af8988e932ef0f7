namespace PretrainedKit.Tests;

/// <summary>Points the feature cache at a temporary folder for the whole run, and removes the run's temporary folders at the end.</summary>
[SetUpFixture]
public sealed class TempCleanup
{
    [OneTimeSetUp]
    public void UseTemporaryFeatureCache() =>
        Environment.SetEnvironmentVariable(PretrainedKit.Caching.FeatureCacheOptions.DirectoryEnvironmentVariable, TestPaths.NewTempFolder("feature-cache"));

    [OneTimeTearDown]
    public void RemoveTempFolders()
    {
        var root = TestPaths.RunTempRoot;
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
