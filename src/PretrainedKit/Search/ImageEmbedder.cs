using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;
using PretrainedKit.Internal;
using PretrainedKit.Models;
using PretrainedKit.Training;

namespace PretrainedKit.Search;

/// <summary>
/// Turns images into embeddings: the feature vector a classifier's head reads, divided by its Euclidean length, so that
/// the dot product of two embeddings is their cosine similarity. Made from a trained model (<c>ImageClassifierModel.Embedder</c>:
/// the backbone features of the model's layout, scaled as the model's head scales them) or from a backbone alone
/// (<see cref="Open"/>: its pooled features, unscaled). Only the original view of an image is embedded, also for a model
/// that averages a mirrored view at prediction: a search should tell a picture from its mirror image, and it costs one
/// backbone run per image.
/// </summary>
/// <threadsafety>
/// Every member is safe to call from many threads at once. <see cref="Dispose"/> waits for calls in flight; later calls
/// throw <see cref="ObjectDisposedException"/>. An embedder taken from a model belongs to the model: disposing it does
/// nothing, and it stops working when the model is disposed.
/// </threadsafety>
public sealed class ImageEmbedder : IDisposable
{
    private static readonly ImageView[] OriginalOnly = [ImageView.Original];
    private readonly FeatureExtractor _extractor;
    private readonly UsageGuard _guard;
    private readonly bool _ownsExtractor;

    /// <summary>Initializes a new instance of the <see cref="ImageEmbedder"/> class.</summary>
    /// <param name="extractor">The featurisation layer.</param>
    /// <param name="scaling">The head's stored scaling, or <see langword="null"/> for raw features.</param>
    /// <param name="weightsSha256">The SHA-256 of the backbone weights.</param>
    /// <param name="guard">The owner's guard (a model's), or <see langword="null"/> for an embedder that owns its extractor.</param>
    internal ImageEmbedder(FeatureExtractor extractor, FeatureScaling? scaling, string weightsSha256, UsageGuard? guard)
    {
        _extractor = extractor;
        Scaling = scaling;
        WeightsSha256 = weightsSha256;
        _ownsExtractor = guard is null;
        _guard = guard ?? new UsageGuard();
        Space = new EmbeddingSpace(extractor.Runtime.Backbone.Id, weightsSha256, extractor.Runtime.Layout, extractor.Image, scaling, extractor.Runtime.Int8?.Digest);
    }

    /// <summary>Gets the backbone.</summary>
    public Backbone Backbone => _extractor.Runtime.Backbone;

    /// <summary>Gets which backbone activations are embedded (<see cref="FeatureLayout.Pooled"/> for <see cref="Open"/>).</summary>
    public FeatureLayout FeatureLayout => _extractor.Runtime.Layout;

    /// <summary>Gets how images are decoded and normalised before the backbone.</summary>
    public ImagePreprocessingOptions ImageOptions => _extractor.Image;

    /// <summary>Gets the length of each embedding: the backbone's feature size for the layout (512 for ResNet18 pooled).</summary>
    public int Dimension => _extractor.FeatureSize;

    /// <summary>
    /// Gets an identifier of the embedding space: the backbone id, the SHA-256 of its weights, the feature layout, the image
    /// options and (for a model's embedder) the head's scaling. Two embeddings can be compared only when their ids agree.
    /// </summary>
    public string Id => Space.Id;

    /// <summary>Gets the feature cache that <see cref="EmbedBatchAsync"/> reads and writes.</summary>
    public FeatureCacheOptions FeatureCache => _extractor.Cache?.Options ?? FeatureCacheOptions.Disabled;

    /// <summary>Gets the SHA-256 of the backbone weights.</summary>
    internal string WeightsSha256 { get; }

    /// <summary>Gets the embedding space (what an index records).</summary>
    internal EmbeddingSpace Space { get; }

    /// <summary>Gets the head's scaling applied before the length is normalised, or <see langword="null"/> for raw features.</summary>
    internal FeatureScaling? Scaling { get; }

    /// <summary>Opens a backbone on its own as an embedder of its pooled features (no head, no scaling).</summary>
    /// <param name="backbone">The backbone; by default <see cref="KnownBackbones.ResNet18"/>.</param>
    /// <param name="featureCache">The cache that <see cref="EmbedBatchAsync"/> reads and writes; by default <see cref="FeatureCacheOptions.Default"/>, the cache training uses.</param>
    /// <param name="imageOptions">How images are normalised; by default <see cref="ImagePreprocessingOptions.Default"/>.</param>
    /// <returns>The embedder; dispose it when done.</returns>
    /// <exception cref="BackboneNotFoundException">The backbone's files are not installed.</exception>
    public static ImageEmbedder Open(Backbone? backbone = null, FeatureCacheOptions? featureCache = null, ImagePreprocessingOptions? imageOptions = null) =>
        OpenSpace(backbone ?? KnownBackbones.ResNet18, FeatureLayout.Pooled, imageOptions ?? ImagePreprocessingOptions.Default, null, null, featureCache ?? FeatureCacheOptions.Default);

    /// <summary>Opens an embedder for a given space (the one an index records).</summary>
    internal static ImageEmbedder OpenSpace(Backbone backbone, FeatureLayout layout, ImagePreprocessingOptions image, FeatureScaling? scaling, string? expectedWeightsSha256, FeatureCacheOptions featureCache)
    {
        image.Validate();
        var runtime = BackboneRuntime.Open(backbone, layout, null);
        if (expectedWeightsSha256 is not null && !string.Equals(runtime.WeightsSha256, expectedWeightsSha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"The installed weights of the backbone '{backbone.Id}' (SHA-256 {runtime.WeightsSha256}) are not those the index was built with ({expectedWeightsSha256}); rebuild the index or install the same weights.");
        }

        if (scaling is not null && scaling.FeatureSize != runtime.FeatureSize)
        {
            throw new ArgumentException($"The scaling has {scaling.FeatureSize} values, but the backbone gives {runtime.FeatureSize} features.");
        }

        var extractor = new FeatureExtractor(runtime, image, featureCache.Enabled ? new FeatureCache(featureCache) : null);
        try
        {
            extractor.Warm(SessionProfile.Latency);
        }
        catch
        {
            extractor.Dispose();
            throw;
        }

        return new ImageEmbedder(extractor, scaling, runtime.WeightsSha256, null);
    }

    /// <summary>Embeds an image file (the latency path: every core on one image; the feature cache is not used).</summary>
    /// <param name="path">The image (JPEG, PNG, BMP, GIF or WebP, recognised by content).</param>
    /// <returns>A new vector of <see cref="Dimension"/> floats of length 1 (all zeros only if the features are all zero).</returns>
    /// <exception cref="InvalidImageException">The file cannot be read or is not a usable image; the message names it.</exception>
    /// <exception cref="ObjectDisposedException">The embedder (or its model) was disposed.</exception>
    public float[] Embed(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var lease = _guard.Enter(nameof(ImageEmbedder));
        return EmbedRaw(_extractor.Extract(ImageInput.FromFile(Path.GetFullPath(path)), OriginalOnly)[0]);
    }

    /// <summary>Embeds an image held in memory.</summary>
    /// <param name="bytes">The encoded image.</param>
    /// <returns>A new vector of <see cref="Dimension"/> floats of length 1.</returns>
    /// <exception cref="InvalidImageException">The bytes are not a usable image.</exception>
    /// <exception cref="ObjectDisposedException">The embedder (or its model) was disposed.</exception>
    public float[] Embed(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var lease = _guard.Enter(nameof(ImageEmbedder));
        return EmbedRaw(_extractor.Extract(ImageInput.FromBytes(bytes), OriginalOnly)[0]);
    }

    /// <summary>Embeds an image read from a stream (read to its end, at most <see cref="ImageLimits.MaxFileBytes"/>; not closed).</summary>
    /// <param name="stream">The image bytes.</param>
    /// <returns>A new vector of <see cref="Dimension"/> floats of length 1.</returns>
    /// <exception cref="InvalidImageException">The bytes are not a usable image, or there are too many.</exception>
    /// <exception cref="ObjectDisposedException">The embedder (or its model) was disposed.</exception>
    public float[] Embed(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var lease = _guard.Enter(nameof(ImageEmbedder));
        return EmbedRaw(_extractor.Extract(ImageInput.FromBytes(ImageDecoder.ReadStream(stream)), OriginalOnly)[0]);
    }

    /// <summary>
    /// Embeds many image files in one featurisation pass (the throughput path, reading and writing the feature cache, so
    /// that embedding an unchanged folder again costs file reads); a bad image does not stop the batch.
    /// </summary>
    /// <param name="paths">The image files.</param>
    /// <param name="progress">Receives progress (<see cref="TrainingPhase.Featurizing"/>); may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the pass within the images in flight.</param>
    /// <returns>One result per path, in order: its <see cref="ImageEmbedding.Vector"/>, or the <see cref="ImageEmbedding.Error"/> that names the file.</returns>
    /// <exception cref="ArgumentException">A path is <see langword="null"/> or empty.</exception>
    /// <exception cref="ObjectDisposedException">The embedder (or its model) was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public async Task<IReadOnlyList<ImageEmbedding>> EmbedBatchAsync(IEnumerable<string> paths, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var list = paths.Select(p =>
        {
            ArgumentException.ThrowIfNullOrEmpty(p, nameof(paths));
            return Path.GetFullPath(p);
        }).ToList();
        var (vectors, errors, _) = await EmbedFilesAsync(list, progress, cancellationToken).ConfigureAwait(false);
        return list.Select((p, i) => new ImageEmbedding(i, p, vectors[i], errors[i])).ToList();
    }

    /// <summary>Does nothing for a model's embedder; otherwise frees the backbone session after waiting for calls in flight.</summary>
    public void Dispose()
    {
        if (_ownsExtractor && _guard.Close())
        {
            _extractor.Dispose();
        }
    }

    /// <summary>The embedding of one raw feature vector: the head's scaling (when there is one), then divided by the length.</summary>
    /// <param name="raw">The backbone features of the original view.</param>
    /// <returns>A new vector.</returns>
    internal float[] EmbedRaw(float[] raw) => Embedding(raw, Scaling);

    /// <summary>The embedding of one raw feature vector under a scaling (the one formula; the experiments call it too).</summary>
    /// <param name="raw">The backbone features.</param>
    /// <param name="scaling">The head's scaling, or <see langword="null"/>.</param>
    /// <returns>A new vector of length 1 (or all zeros).</returns>
    internal static float[] Embedding(float[] raw, FeatureScaling? scaling) => FeatureScaling.L2Normalized(scaling is null ? raw : scaling.Apply(raw));

    /// <summary>One cached featurisation pass over files: embeddings, errors by image and the bad images as report entries.</summary>
    internal async Task<(float[]?[] Vectors, InvalidImageException?[] Errors, IReadOnlyList<Data.SkippedImage> Skipped)> EmbedFilesAsync(IReadOnlyList<string> fullPaths, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        using var lease = _guard.Enter(nameof(ImageEmbedder));
        var reporter = new ProgressReporter(progress, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var set = await _extractor.ExtractAsync(
            fullPaths.Select(ImageInput.FromFile).ToList(),
            null,
            (done, total, eta) => reporter.Report(TrainingPhase.Featurizing, done, total, eta),
            cancellationToken).ConfigureAwait(false);
        var vectors = set.Features.Select(f => f is null ? null : EmbedRaw(f)).ToArray();
        var errors = Enumerable.Range(0, fullPaths.Count).Select(i => i < set.ErrorsByImage.Count ? set.ErrorsByImage[i] : null).ToArray();
        reporter.Complete();
        return (vectors, errors, set.Skipped);
    }
}

/// <summary>The embedding of one image of a batch, or why it has none.</summary>
/// <param name="Index">The position of the image in the batch.</param>
/// <param name="Path">The image file.</param>
/// <param name="Vector">The embedding (length 1), or <see langword="null"/> for a bad image.</param>
/// <param name="Error">Why the image could not be embedded (the message names the file), or <see langword="null"/>.</param>
public sealed record ImageEmbedding(int Index, string Path, float[]? Vector, InvalidImageException? Error);
