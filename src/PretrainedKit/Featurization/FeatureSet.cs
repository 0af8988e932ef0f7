using PretrainedKit.Data;
using PretrainedKit.Imaging;

namespace PretrainedKit.Featurization;

/// <summary>
/// The features of a list of images: per image, one vector per requested view (in the order asked), or
/// <see langword="null"/> where the image could not be used (its error is in <see cref="Errors"/>).
/// </summary>
/// <param name="Views">Per image, its views' feature vectors, or <see langword="null"/> for a bad image.</param>
/// <param name="Errors">Why each bad image could not be used, sorted by path.</param>
/// <param name="CacheHits">How many view vectors came from the feature cache.</param>
internal sealed record FeatureSet(float[][]?[] Views, IReadOnlyList<InvalidImageException> Errors, int CacheHits)
{
    /// <summary>Gets the bad images as report entries (path, reason, message), sorted by path.</summary>
    public IReadOnlyList<SkippedImage> Skipped { get; } = Errors.Select(e => new SkippedImage(e.Path ?? string.Empty, e.Reason, e.Message)).ToList();

    /// <summary>Gets, per image in input order, why it could not be used, or <see langword="null"/> where it could.</summary>
    public IReadOnlyList<InvalidImageException?> ErrorsByImage { get; init; } = [];

    /// <summary>Gets, per image in input order, the SHA-256 of its bytes, or <see langword="null"/> where it could not be read or was not hashed (no cache and no hash asked for).</summary>
    public IReadOnlyList<byte[]?> ContentHashes { get; init; } = [];

    /// <summary>Gets the first view's features per image (the original image unless other views were asked for).</summary>
    public float[]?[] Features { get; } = Views.Select(v => v?[0]).ToArray();
}
