using PretrainedKit.Imaging;

namespace PretrainedKit.Data;

/// <summary>What a folder scan found: images with labels, and every file that was not an image candidate.</summary>
/// <param name="Root">The dataset folder.</param>
/// <param name="Classes">The class names, ordinal order.</param>
/// <param name="Images">The image candidates with their labels.</param>
/// <param name="IgnoredFiles">
/// Files that are no image candidates (by path), and folders or links that were not followed, each as
/// <c>path: reason</c> (a loop of links, a second way into a folder already scanned, an unreadable folder, a path too long).
/// </param>
internal sealed record FolderScan(string Root, IReadOnlyList<string> Classes, IReadOnlyList<LabeledImage> Images, IReadOnlyList<string> IgnoredFiles);

/// <summary>Lists a folder with one sub-folder per class; images may sit in nested folders below a class folder.</summary>
internal static class DatasetScanner
{
    public static FolderScan ScanFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException(
                File.Exists(root)
                    ? $"'{root}' is a file, not a folder. Give a folder with one sub-folder per class{(Path.GetExtension(root).Equals(".csv", StringComparison.OrdinalIgnoreCase) ? ", or read this CSV list with FromCsv (training) or LabeledImage.ReadCsv (evaluation)" : string.Empty)}."
                    : $"The folder '{root}' does not exist. Give a folder with one sub-folder per class, for example data/cats and data/dogs.");
        }

        var ignored = new List<string>();
        var images = new List<LabeledImage>();
        var walker = new FolderWalker(root, ignored);

        foreach (var file in Directory.EnumerateFiles(root, "*", new EnumerationOptions { AttributesToSkip = 0 }))
        {
            ignored.Add(file); // Files directly in the root belong to no class.
        }

        var classes = new List<string>();
        foreach (var classDir in Directory.EnumerateDirectories(root, "*", new EnumerationOptions { AttributesToSkip = 0 })
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal))
        {
            if (!walker.Admit(classDir))
            {
                continue;
            }

            var label = Path.GetFileName(classDir);
            classes.Add(label);
            foreach (var file in walker.Files(classDir).OrderBy(f => f, StringComparer.Ordinal))
            {
                if (ImageFormatSniffer.HasImageExtension(file))
                {
                    images.Add(new LabeledImage(file, label));
                }
                else
                {
                    ignored.Add(file);
                }
            }
        }

        return new FolderScan(root, classes, images, ignored);
    }

    /// <summary>Normalises an explicit list: absolute paths, labels checked, order kept.</summary>
    public static FolderScan FromList(IEnumerable<LabeledImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var list = new List<LabeledImage>();
        var problems = new List<DatasetProblem>();
        foreach (var image in images)
        {
            if (image is null || string.IsNullOrWhiteSpace(image.Path))
            {
                throw new ArgumentException("The image list contains a null entry or an empty path.", nameof(images));
            }

            var path = Path.GetFullPath(image.Path);
            if (string.IsNullOrWhiteSpace(image.Label))
            {
                problems.Add(new DatasetProblem(path, DatasetProblemKind.InvalidLabel, $"'{path}' has an empty label. Give every image a class name."));
                continue;
            }

            list.Add(new LabeledImage(path, image.Label));
        }

        if (problems.Count > 0)
        {
            throw new InvalidDatasetException(problems);
        }

        var classes = list.Select(i => i.Label).Distinct(StringComparer.Ordinal).OrderBy(l => l, StringComparer.Ordinal).ToList();
        return new FolderScan(string.Empty, classes, list, []);
    }
}
