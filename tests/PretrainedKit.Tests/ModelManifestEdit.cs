using System.IO.Compression;

namespace PretrainedKit.Tests;

/// <summary>Rewrites the manifest of a saved model file, for tests that feed <c>Load</c> altered or future files.</summary>
internal static class ModelManifestEdit
{
    /// <summary>Rewrites the manifest text of the model file at <paramref name="path"/> in place with <paramref name="edit"/>.</summary>
    public static void InPlace(string path, Func<string, string> edit)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Update);
        var entry = zip.GetEntry("manifest.json")!;
        string text;
        using (var reader = new StreamReader(entry.Open()))
        {
            text = reader.ReadToEnd();
        }

        entry.Delete();
        using var writer = new StreamWriter(zip.CreateEntry("manifest.json").Open());
        writer.Write(edit(text));
    }
}
