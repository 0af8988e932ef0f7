using PretrainedKit.Data;

namespace PretrainedKit.ActiveLearning;

/// <summary>One image suggested for labelling.</summary>
/// <param name="Rank">1 for the first suggestion.</param>
/// <param name="Path">The image.</param>
/// <param name="BestGuess">The model's most probable class.</param>
/// <param name="BestGuessProbability">Its calibrated probability.</param>
/// <param name="RunnerUp">The second most probable class.</param>
/// <param name="RunnerUpProbability">Its calibrated probability.</param>
/// <param name="Uncertainty">The uncertainty (0 to 1, see <see cref="UncertaintyMeasure"/>).</param>
/// <param name="Distance">The cosine distance (1 - similarity) of its embedding to the nearest image labelled or suggested before it; <see langword="null"/> when there was none.</param>
/// <param name="Reason">Why it was chosen, in words.</param>
public sealed record LabelingSuggestion(int Rank, string Path, string BestGuess, float BestGuessProbability, string RunnerUp, float RunnerUpProbability, double Uncertainty, double? Distance, string Reason);

/// <summary>An unlabelled image far from every labelled image: perhaps a class the model does not know, or not a picture of the task at all.</summary>
/// <param name="Path">The image.</param>
/// <param name="BestGuess">The model's most probable class (likely wrong).</param>
/// <param name="BestGuessProbability">Its calibrated probability.</param>
/// <param name="NearestSimilarity">The cosine similarity of its embedding to the nearest labelled image (or kernel centre).</param>
/// <param name="Score">The robust z-score of its distance to the nearest labelled image among the unlabelled images.</param>
/// <param name="Reason">Why it is listed, in words.</param>
public sealed record LikelyUnknownImage(string Path, string BestGuess, float BestGuessProbability, double NearestSimilarity, double Score, string Reason);

/// <summary>Which unlabelled images to label next, and which look like none of the classes.</summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record LabelingSuggestionReport
{
    /// <summary>Gets the images to label next, best first; never the same image twice.</summary>
    public required IReadOnlyList<LabelingSuggestion> Suggestions { get; init; }

    /// <summary>Gets the images far from every labelled image, farthest first; they are not among <see cref="Suggestions"/>.</summary>
    public required IReadOnlyList<LikelyUnknownImage> LikelyUnknown { get; init; }

    /// <summary>Gets the unlabelled images that could be read and ranked.</summary>
    public int ImageCount { get; init; }

    /// <summary>Gets the bad images, each with the reason; they were not ranked.</summary>
    public IReadOnlyList<SkippedImage> Skipped { get; init; } = [];

    /// <summary>Gets how many files of the folder were not read (no image extension), or paths given twice.</summary>
    public int IgnoredFileCount { get; init; }

    /// <summary>Gets how many labelled images (and kernel centres) the distances were measured against.</summary>
    public int ReferenceCount { get; init; }

    /// <summary>Gets the typical cosine distance between neighbouring candidates, the scale of the diversity rule; <see langword="null"/> without it.</summary>
    public double? TypicalDistance { get; init; }

    /// <summary>Gets what the reader should know about the ranking (for example that unknowns were not looked for).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Gets how long the ranking took, featurisation included.</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>
    /// Copies the suggested images into a folder for labelling (the originals are never moved, changed or deleted), named
    /// by rank (<c>001-name.jpg</c>). A file already there is never overwritten: the copy gets another name.
    /// </summary>
    /// <param name="folder">The folder; created when missing.</param>
    /// <returns>The copies' paths, in rank order.</returns>
    /// <exception cref="IOException">A file cannot be copied; those copied before stay.</exception>
    public IReadOnlyList<string> CopySuggestionsTo(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var full = Path.GetFullPath(folder);
        Directory.CreateDirectory(full);
        var copies = new List<string>();
        foreach (var s in Suggestions)
        {
            var name = $"{s.Rank:D3}-{Path.GetFileName(s.Path)}";
            var target = Path.Combine(full, name);
            for (var n = 2; File.Exists(target) || Directory.Exists(target); n++)
            {
                target = Path.Combine(full, $"{Path.GetFileNameWithoutExtension(name)}-{n}{Path.GetExtension(name)}");
            }

            try
            {
                File.Copy(s.Path, target, overwrite: false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Could not copy '{s.Path}' to '{target}': {ex.Message} The original is unchanged; {copies.Count} image(s) were copied before.", ex);
            }

            copies.Add(target);
        }

        return copies;
    }

    /// <summary>Gets a one-line summary.</summary>
    public string Summary => $"{Suggestions.Count} suggested, {LikelyUnknown.Count} likely unknown, {Skipped.Count} skipped, of {ImageCount + Skipped.Count} images";
}
