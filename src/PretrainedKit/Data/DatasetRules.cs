using PretrainedKit.Imaging;

namespace PretrainedKit.Data;

/// <summary>
/// The rules a dataset must meet, with their messages, shared by training and evaluation. The scan rules need no image
/// read; the usable-image rules are checked once the featurisation pass has said which images are bad.
/// </summary>
internal static class DatasetRules
{
    /// <summary>Problems visible in the scans alone: fewer than two classes, a class folder without image files, validation classes unknown to the training data.</summary>
    /// <param name="scan">The training data.</param>
    /// <param name="validation">The validation folder's scan, or <see langword="null"/>.</param>
    /// <returns>Every problem, in order.</returns>
    public static List<DatasetProblem> CheckTraining(FolderScan scan, FolderScan? validation)
    {
        var problems = new List<DatasetProblem>();
        var classes = scan.Classes;
        if (classes.Count < 2)
        {
            var where = scan.Root.Length > 0 ? $"'{scan.Root}' has" : "The image list has";
            problems.Add(new DatasetProblem(
                scan.Root,
                DatasetProblemKind.TooFewClasses,
                $"{where} {classes.Count} class{(classes.Count == 1 ? $" ('{classes[0]}')" : "es")}; at least 2 are needed. Put each class's images in its own sub-folder, for example data/cats and data/dogs."));
        }

        foreach (var label in classes.Where(label => !scan.Images.Any(i => i.Label == label)))
        {
            var folder = ClassFolder(scan, label);
            problems.Add(new DatasetProblem(folder, DatasetProblemKind.EmptyClass, $"The class '{label}' ('{folder}') has no image file. Add images (JPEG, PNG, BMP, GIF or WebP) or remove the folder."));
        }

        if (validation is not null)
        {
            foreach (var label in validation.Classes.Where(c => !classes.Contains(c, StringComparer.Ordinal)))
            {
                if (IsList(validation))
                {
                    problems.Add(UnknownLabel(validation, label, $"of the validation images is not a class of the training data ({string.Join(", ", classes)})"));
                    continue;
                }

                var folder = Path.Combine(validation.Root, label);
                problems.Add(new DatasetProblem(folder, DatasetProblemKind.UnknownClass, $"The validation class folder '{folder}' has no counterpart in the training data. Rename or remove it."));
            }
        }

        return problems;
    }

    /// <summary>Problems once the bad images are known: bad images in strict mode, and classes left without a usable image.</summary>
    /// <param name="scan">The training data.</param>
    /// <param name="bad">The bad images of the training data and of the validation folder.</param>
    /// <param name="strict">Whether every bad image is a problem.</param>
    /// <returns>Every problem: the bad images (strict mode) first, sorted by path, then the empty classes.</returns>
    public static List<DatasetProblem> CheckUsable(FolderScan scan, IReadOnlyDictionary<string, InvalidImageException> bad, bool strict)
    {
        var problems = new List<DatasetProblem>();
        if (strict)
        {
            problems.AddRange(bad.Values.OrderBy(b => b.Path, StringComparer.Ordinal).Select(b => new DatasetProblem(b.Path!, DatasetProblemKind.BadImage, b.Message)));
        }

        foreach (var label in scan.Classes)
        {
            var all = scan.Images.Count(i => i.Label == label);
            var usable = scan.Images.Count(i => i.Label == label && !bad.ContainsKey(i.Path));
            if (all > 0 && usable == 0)
            {
                var folder = ClassFolder(scan, label);
                problems.Add(new DatasetProblem(
                    folder,
                    DatasetProblemKind.EmptyClass,
                    $"The class '{label}' ('{folder}') has no usable image: all {all} were bad (see the other problems or the log). Replace them or remove the folder."));
            }
        }

        return problems;
    }

    /// <summary>Problems of a folder or list to evaluate a model on: classes (folders or labels) the model does not know, or no image at all.</summary>
    /// <param name="scan">The folder, or the list (empty <see cref="FolderScan.Root"/>).</param>
    /// <param name="classes">The model's classes.</param>
    /// <returns>Every problem.</returns>
    public static List<DatasetProblem> CheckEvaluation(FolderScan scan, IReadOnlyList<string> classes)
    {
        var known = string.Join(", ", classes);
        var problems = scan.Classes.Where(c => !classes.Contains(c, StringComparer.Ordinal)).Select(c => IsList(scan)
            ? UnknownLabel(scan, c, $"is not one of the model's classes ({known})")
            : new DatasetProblem(
                Path.Combine(scan.Root, c),
                DatasetProblemKind.UnknownClass,
                $"The class folder '{Path.Combine(scan.Root, c)}' is not one of the model's classes ({known}). Rename or remove it.")).ToList();
        if (scan.Images.Count == 0)
        {
            problems.Add(IsList(scan)
                ? new DatasetProblem(string.Empty, DatasetProblemKind.EmptyClass, "The image list is empty. Give at least one labelled image.")
                : new DatasetProblem(scan.Root, DatasetProblemKind.EmptyClass, $"'{scan.Root}' holds no image in any class folder."));
        }

        return problems;
    }

    /// <summary>The problem when no image of a folder or list could be used at all.</summary>
    /// <param name="scan">The folder or list.</param>
    /// <returns>The problem.</returns>
    public static DatasetProblem NothingUsable(FolderScan scan) => IsList(scan)
        ? new(string.Empty, DatasetProblemKind.EmptyClass, $"None of the {scan.Images.Count} images of the list could be used; see the skipped files.")
        : new(scan.Root, DatasetProblemKind.EmptyClass, $"No image in '{scan.Root}' could be used; see the skipped files.");

    /// <summary>Warnings for classes with few usable images.</summary>
    /// <param name="scan">The training data.</param>
    /// <param name="bad">The bad images.</param>
    /// <param name="threshold">Fewer usable images than this get a warning.</param>
    /// <returns>One warning per small class.</returns>
    public static IEnumerable<string> FewImageWarnings(FolderScan scan, IReadOnlyDictionary<string, InvalidImageException> bad, int threshold)
    {
        foreach (var label in scan.Classes)
        {
            var usable = scan.Images.Count(i => i.Label == label && !bad.ContainsKey(i.Path));
            if (usable < threshold)
            {
                yield return $"The class '{label}' has only {usable} usable image{(usable == 1 ? string.Empty : "s")}; {threshold} or more give more reliable results.";
            }
        }
    }

    /// <summary>Whether the scan is an explicit list rather than a folder.</summary>
    private static bool IsList(FolderScan scan) => scan.Root.Length == 0;

    /// <summary>An unknown label of a list, naming how many images carry it and the first of them.</summary>
    private static DatasetProblem UnknownLabel(FolderScan scan, string label, string what)
    {
        var carriers = scan.Images.Where(i => string.Equals(i.Label, label, StringComparison.Ordinal)).ToList();
        var first = carriers.Count > 0 ? carriers[0].Path : string.Empty;
        var which = carriers.Count == 1 ? $"(the image '{first}')" : $"({carriers.Count} images, the first '{first}')";
        return new DatasetProblem(first, DatasetProblemKind.UnknownClass, $"The label '{label}' {which} {what}. Fix the label or remove those images.");
    }

    private static string ClassFolder(FolderScan scan, string label) => scan.Root.Length > 0 ? Path.Combine(scan.Root, label) : label;
}
