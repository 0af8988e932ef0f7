using SkiaSharp;

namespace PretrainedKit.Tests;

/// <summary>A tiny generated dataset: three colour classes of 8 images each (fast to featurise).</summary>
internal static class SmallDataset
{
    public static readonly string[] Classes = ["blue", "green", "red"];

    public static string Create(int perClass = 8)
    {
        var root = TestPaths.NewTempFolder("data");
        TestImages.WriteClass(root, "red", perClass, new SKColor(200, 30, 30), 1);
        TestImages.WriteClass(root, "green", perClass, new SKColor(30, 180, 40), 2);
        TestImages.WriteClass(root, "blue", perClass, new SKColor(30, 40, 200), 3);
        return root;
    }
}
