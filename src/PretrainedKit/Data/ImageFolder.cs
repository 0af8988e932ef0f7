using PretrainedKit.Imaging;

namespace PretrainedKit.Data;

/// <summary>The images of an unlabelled folder (for an index or for labelling suggestions): every file with an image extension below it.</summary>
internal static class ImageFolder
{
    /// <summary>Lists the image files below a folder, sub-folders included, in ordinal order of their absolute paths.</summary>
    /// <param name="folder">The folder.</param>
    /// <returns>The image files, and how many other files were not listed.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist; the message names its absolute path.</exception>
    public static (List<string> Images, int Ignored) List(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var full = Path.GetFullPath(folder);
        if (!Directory.Exists(full))
        {
            throw new DirectoryNotFoundException($"The image folder '{full}' does not exist.");
        }

        var images = new List<string>();
        var ignored = 0;
        foreach (var file in Directory.EnumerateFiles(full, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.Hidden, IgnoreInaccessible = true }))
        {
            if (ImageFormatSniffer.HasImageExtension(file))
            {
                images.Add(file);
            }
            else
            {
                ignored++;
            }
        }

        images.Sort(StringComparer.Ordinal);
        return (images, ignored);
    }
}
