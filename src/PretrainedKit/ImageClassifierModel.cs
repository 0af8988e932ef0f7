using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using System.Diagnostics;
using PretrainedKit.ActiveLearning;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;
using PretrainedKit.Internal;
using PretrainedKit.Models;
using PretrainedKit.Search;
using PretrainedKit.Serialization;
using PretrainedKit.Training;

namespace PretrainedKit;

/// <summary>
/// A trained image classifier: the pretrained backbone plus the retrained final layer. Immutable once built; keeps no
/// reference to the builder that made it. Save it with <see cref="Save"/> and read it back with <see cref="Load"/>.
/// </summary>
/// <threadsafety>
/// Every member is safe to call from many threads at once: the backbone session is thread-safe and each call uses its own
/// buffers. <see cref="Dispose"/> waits for calls in flight; calls that start after it throw <see cref="ObjectDisposedException"/>.
/// </threadsafety>
public sealed class ImageClassifierModel : IDisposable
{
    /// <summary>The default number of classes returned by <c>Predict</c>.</summary>
    public const int DefaultTopK = 5;

    private readonly FeatureExtractor _extractor;
    private readonly UsageGuard _guard = new();
    private readonly ILogger _logger;

    internal ImageClassifierModel(ModelDefinition definition, FeatureExtractor extractor, TrainingReport? report, ILogger? logger)
    {
        definition.Validate();
        Definition = definition;
        _extractor = extractor;
        TrainingReport = report;
        _logger = logger ?? NullLogger.Instance;
        Embedder = new ImageEmbedder(extractor, definition.Head.Scaling, definition.WeightsSha256, _guard);
    }

    /// <summary>
    /// Gets the model's embedder, for a similar-image index (<see cref="ImageIndex.BuildAsync(ImageEmbedder, string, IProgress{TrainingProgress}, CancellationToken)"/>)
    /// or anything else that needs embeddings: see <see cref="Embed(string)"/> for what an embedding is. It belongs to the
    /// model (disposing it does nothing) and stops working when the model is disposed.
    /// </summary>
    public ImageEmbedder Embedder { get; }

    /// <summary>Gets the length of an embedding: the feature size of the model's layout (512 for ResNet18 pooled features).</summary>
    public int EmbeddingDimension => Definition.FeatureSize;

    /// <summary>Gets the class names, in the order of <see cref="Prediction.Probabilities"/>.</summary>
    public IReadOnlyList<string> Classes => Definition.Classes;

    /// <summary>
    /// Gets the feature cache that <see cref="EvaluateAsync(string, IProgress{TrainingProgress}, CancellationToken)"/> and <see cref="PredictBatchAsync(IEnumerable{string}, int, CancellationToken)"/> read and write: the training
    /// run's cache for a model just trained, the one given to <see cref="Load"/> (by default <see cref="FeatureCacheOptions.Default"/>)
    /// for a model read from a file. <see cref="FeatureCacheOptions.Disabled"/> when there is none.
    /// </summary>
    public FeatureCacheOptions FeatureCache => _extractor.Cache?.Options ?? FeatureCacheOptions.Disabled;

    /// <summary>Gets the featurisation layer (and through it the backbone runtime) of this model.</summary>
    internal FeatureExtractor Extractor => _extractor;

    /// <summary>Gets the backbone the model was trained with.</summary>
    public Backbone Backbone => Definition.Backbone;

    /// <summary>Gets the SHA-256 of the backbone weights the model was trained with.</summary>
    public string BackboneWeightsSha256 => Definition.WeightsSha256;

    /// <summary>Gets which backbone activations the model uses as features.</summary>
    public FeatureLayout FeatureLayout => Definition.FeatureLayout;

    /// <summary>Gets the arithmetic the backbone runs in (saved with the model).</summary>
    public Precision Precision => Definition.Precision;

    /// <summary>Gets the views whose logits each prediction averages (saved with the model).</summary>
    public TestTimeAugmentation TestTimeAugmentation => Definition.TestTimeAugmentation;

    /// <summary>Gets what was trained on the features: a final layer, or kernel ridge regression (saved with the model).</summary>
    public HeadKind HeadKind => Definition.Head.Kind;

    /// <summary>Gets how feature vectors are scaled before the final layer (saved with the model).</summary>
    public FeatureNormalization Normalization => Definition.Head.Scaling.Kind;

    /// <summary>Gets how images are normalised before the backbone (saved with the model).</summary>
    public ImagePreprocessingOptions ImageOptions => Definition.Image;

    /// <summary>
    /// Gets the calibration temperature T: the probabilities are softmax(logits / T), in <c>Predict</c>, <c>PredictBatch</c>,
    /// <c>Evaluate</c> and the ONNX export alike. It is 1 for an uncalibrated model (and for files written before calibration
    /// existed); see <see cref="ImageClassifierOptions.Calibrate"/>.
    /// </summary>
    public double Temperature => Definition.Temperature;

    /// <summary>
    /// Gets the threshold on the top probability below which predictions are <see cref="Prediction.IsUnknown"/>, chosen at
    /// training for <see cref="ImageClassifierOptions.UnknownPrecisionTarget"/> and saved with the model; <see langword="null"/>
    /// (never unknown) when no target was set. Every prediction carries it in <see cref="Prediction.UnknownThreshold"/>;
    /// apply another threshold to a prediction with <c>prediction with { UnknownThreshold = 0.9f }</c>.
    /// </summary>
    public float? UnknownThreshold => Definition.UnknownThreshold;

    /// <summary>Gets the report of the training run, or <see langword="null"/> for a model read with <see cref="Load"/>.</summary>
    public TrainingReport? TrainingReport { get; }

    /// <summary>Gets what the model is: the definition the model file and the ONNX export serialise.</summary>
    internal ModelDefinition Definition { get; }

    /// <summary>Reads a model file written by <see cref="Save"/>, checking its format version, backbone, weights hash and classes.</summary>
    /// <param name="path">The model file.</param>
    /// <param name="backbone">The backbone to use, for example with another model folder; by default the known backbone named in the file, or the custom backbone it records (see <see cref="Backbone.FromOnnx"/>).</param>
    /// <param name="logger">Where to log; by default nowhere.</param>
    /// <param name="featureCache">
    /// The feature cache that many-image calls (<see cref="EvaluateAsync(string, IProgress{TrainingProgress}, CancellationToken)"/>, <see cref="PredictBatchAsync(IEnumerable{string}, int, CancellationToken)"/>) read and write, so
    /// that evaluating an unchanged folder again costs file reads, not backbone runs; by default
    /// <see cref="FeatureCacheOptions.Default"/>, the cache training uses; <see cref="FeatureCacheOptions.Disabled"/> turns it off.
    /// Single-image <c>Predict</c> never uses it.
    /// </param>
    /// <param name="warmUp">
    /// Whether to predict a small synthetic JPEG (and decode a small PNG), made in memory, before returning, so that the first real <c>Predict</c> is as
    /// fast as later ones: the backbone session is always opened by <c>Load</c>, but its first run (memory arenas, kernel
    /// selection), the first image decode and the first pass through the managed code cost extra time once. It makes
    /// <c>Load</c> slower by about that time; worth it in a server that loads at start-up. The default is <see langword="false"/>.
    /// </param>
    /// <returns>The model.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist, or the ONNX file of the custom backbone it records is neither at its recorded path nor next to the model file.</exception>
    /// <exception cref="ModelFormatException">The file is corrupt, truncated, from a newer format version, or made with another backbone, other weights or other preprocessing.</exception>
    /// <exception cref="BackboneNotFoundException">The backbone's files are not installed.</exception>
    /// <exception cref="ArgumentException">A custom backbone's ONNX file does not match its definition (names, shapes).</exception>
    public static ImageClassifierModel Load(string path, Backbone? backbone = null, ILogger? logger = null, FeatureCacheOptions? featureCache = null, bool warmUp = false)
    {
        featureCache ??= FeatureCacheOptions.Default;
        var stored = ModelFile.Load(path);
        var full = Path.GetFullPath(path);
        var definition = ModelFile.Define(full, stored, ModelBackbone.Resolve(full, stored.Manifest.Backbone, backbone));
        var runtime = BackboneRuntime.Open(definition.Backbone, definition.FeatureLayout, logger);
        ModelBackbone.CheckInstalled(full, stored.Manifest.Backbone, runtime);
        if (definition.Int8 is { } int8)
        {
            runtime = runtime.WithInt8(int8); // The same graph as at training: the calibration and the checked weights decide it.
        }

        var extractor = new FeatureExtractor(runtime, definition.Image, featureCache.Enabled ? new FeatureCache(featureCache) : null);
        try
        {
            extractor.Warm(SessionProfile.Latency);
        }
        catch
        {
            extractor.Dispose();
            throw;
        }

        var model = new ImageClassifierModel(definition, extractor, null, logger);
        if (warmUp)
        {
            try
            {
                model.WarmUp();
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }

        return model;
    }

    /// <summary>
    /// Predicts a small synthetic JPEG (every step of the single-image path, the backbone's first run included) and decodes
    /// a small PNG (the other common decoder), so that first-use costs are paid now (see <see cref="Load"/>).
    /// </summary>
    internal void WarmUp()
    {
        using var lease = _guard.Enter(nameof(ImageClassifierModel));
        var (jpeg, png) = ImageInput.WarmUpImages();
        _ = PredictCore(jpeg, 1);
        _extractor.Render(png);
    }

    /// <summary>Classifies an image file.</summary>
    /// <param name="path">The image (JPEG, PNG, BMP, GIF or WebP, recognised by content).</param>
    /// <param name="topK">How many classes to return, most probable first; capped at the number of classes.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="InvalidImageException">The file cannot be read or is not a usable image; the message names it.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public Prediction Predict(string path, int topK = DefaultTopK)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        using var lease = _guard.Enter(nameof(ImageClassifierModel));
        return PredictCore(ImageInput.FromFile(full), topK);
    }

    /// <summary>Classifies an image read from a stream (read to its end; not closed).</summary>
    /// <param name="stream">The image bytes.</param>
    /// <param name="topK">How many classes to return.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="InvalidImageException">The bytes are not a usable image, or there are more than <see cref="ImageLimits.MaxFileBytes"/> (reading stops there).</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public Prediction Predict(Stream stream, int topK = DefaultTopK)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var lease = _guard.Enter(nameof(ImageClassifierModel));
        return PredictCore(ImageInput.FromBytes(ImageDecoder.ReadStream(stream)), topK);
    }

    /// <summary>
    /// Classifies an image read asynchronously from a stream (read to its end; not closed): the form to use on streams
    /// that forbid synchronous reads, such as ASP.NET Core's request body or an uploaded file's stream.
    /// </summary>
    /// <param name="stream">The image bytes.</param>
    /// <param name="topK">How many classes to return, most probable first; capped at the number of classes.</param>
    /// <param name="cancellationToken">Stops the read (for example when the client goes away).</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="InvalidImageException">The bytes are not a usable image, or there are more than <see cref="ImageLimits.MaxFileBytes"/> (reading stops there; <see cref="InvalidImageException.Reason"/> is <see cref="BadImageReason.TooLarge"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="IOException">The stream itself failed (it is not wrapped: the transport, not the image, is at fault).</exception>
    public async Task<Prediction> PredictAsync(Stream stream, int topK = DefaultTopK, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        using (_guard.Enter(nameof(ImageClassifierModel)))
        {
            // Fails fast on a disposed model; the lease is not held while a slow client sends, so Dispose never waits on one.
        }

        var bytes = await ImageDecoder.ReadStreamAsync(stream, cancellationToken).ConfigureAwait(false);
        using var lease = _guard.Enter(nameof(ImageClassifierModel));
        return PredictCore(ImageInput.FromBytes(bytes), topK);
    }

    /// <summary>Classifies an image held in memory.</summary>
    /// <param name="bytes">The encoded image.</param>
    /// <param name="topK">How many classes to return.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="InvalidImageException">The bytes are not a usable image.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public Prediction Predict(byte[] bytes, int topK = DefaultTopK)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var lease = _guard.Enter(nameof(ImageClassifierModel));
        return PredictCore(ImageInput.FromBytes(bytes), topK);
    }

    /// <summary>
    /// Embeds an image file: the feature vector the model's head reads, divided by its Euclidean length, so that the dot
    /// product of two embeddings is their cosine similarity. Precisely: the backbone features of the model's
    /// <see cref="FeatureLayout"/> (<see cref="EmbeddingDimension"/> values, backbone <see cref="Backbone"/>) of the
    /// original view, scaled as the head scales them before its final layer (<see cref="Normalization"/>: optional L2
    /// normalisation, then the stored means and factors), then L2-normalised. With test-time mirroring the head also reads
    /// the mirrored view; the embedding does not (a search should tell a picture from its mirror image, and it costs one
    /// backbone run). Single image: the latency path, no feature cache.
    /// </summary>
    /// <param name="path">The image.</param>
    /// <returns>A new vector of <see cref="EmbeddingDimension"/> floats of length 1.</returns>
    /// <exception cref="InvalidImageException">The file cannot be read or is not a usable image; the message names it.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public float[] Embed(string path) => Embedder.Embed(path);

    /// <summary>Embeds an image held in memory; see <see cref="Embed(string)"/>.</summary>
    /// <param name="bytes">The encoded image.</param>
    /// <returns>A new vector of <see cref="EmbeddingDimension"/> floats of length 1.</returns>
    /// <exception cref="InvalidImageException">The bytes are not a usable image.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public float[] Embed(byte[] bytes) => Embedder.Embed(bytes);

    /// <summary>Embeds an image read from a stream (read to its end; not closed); see <see cref="Embed(string)"/>.</summary>
    /// <param name="stream">The image bytes.</param>
    /// <returns>A new vector of <see cref="EmbeddingDimension"/> floats of length 1.</returns>
    /// <exception cref="InvalidImageException">The bytes are not a usable image, or there are more than <see cref="ImageLimits.MaxFileBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public float[] Embed(Stream stream) => Embedder.Embed(stream);

    /// <summary>
    /// Embeds many image files in one featurisation pass that reads and writes the model's <see cref="FeatureCache"/> (as
    /// <see cref="PredictBatchAsync(IEnumerable{string}, int, CancellationToken)"/> does); a bad image does not stop the batch.
    /// See <see cref="Embed(string)"/> for what an embedding is.
    /// </summary>
    /// <param name="paths">The image files.</param>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the pass within the images in flight.</param>
    /// <returns>One result per path, in order: the embedding, or the error that names the file.</returns>
    /// <exception cref="ArgumentException">A path is <see langword="null"/> or empty.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<IReadOnlyList<ImageEmbedding>> EmbedBatchAsync(IEnumerable<string> paths, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Embedder.EmbedBatchAsync(paths, progress, cancellationToken);

    /// <summary>
    /// Ranks the images below an unlabelled folder by how much labelling them is expected to help the model: the most
    /// uncertain predictions (calibrated probabilities, <see cref="LabelingSuggestionOptions.Uncertainty"/>), kept apart
    /// from each other and from the labelled images so that near-copies are not suggested twice
    /// (<see cref="LabelingSuggestionOptions.Diversity"/>). Images far from every labelled image are listed apart as likely
    /// unknown. One featurisation pass through the model's feature cache; nothing is moved or deleted.
    /// </summary>
    /// <param name="folder">The unlabelled images (sub-folders included).</param>
    /// <param name="options">How to rank; by default <see cref="LabelingSuggestionOptions.Default"/>.</param>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the pass within the images in flight.</param>
    /// <returns>The suggestions (never an image twice, at most <see cref="LabelingSuggestionOptions.Top"/>), the likely unknowns and the skipped images.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<LabelingSuggestionReport> SuggestLabelsAsync(string folder, LabelingSuggestionOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var (images, ignored) = ImageFolder.List(folder);
        return SuggestCoreAsync(images, ignored, options, progress, cancellationToken);
    }

    /// <summary>Ranks a list of unlabelled image files; see <see cref="SuggestLabelsAsync(string, LabelingSuggestionOptions, IProgress{TrainingProgress}, CancellationToken)"/>.</summary>
    /// <param name="paths">The unlabelled images; a path given twice is ranked once.</param>
    /// <param name="options">How to rank.</param>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the pass within the images in flight.</param>
    /// <returns>The suggestions, the likely unknowns and the skipped images.</returns>
    /// <exception cref="ArgumentException">A path is <see langword="null"/> or empty, or an option is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<LabelingSuggestionReport> SuggestLabelsAsync(IEnumerable<string> paths, LabelingSuggestionOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var images = paths.Select(p =>
        {
            ArgumentException.ThrowIfNullOrEmpty(p, nameof(paths));
            return Path.GetFullPath(p);
        }).ToList();
        return SuggestCoreAsync(images, 0, options, progress, cancellationToken);
    }

    /// <summary>Classifies many image files; decoding overlaps with the backbone, and a bad image does not stop the batch.</summary>
    /// <param name="paths">The image files.</param>
    /// <param name="topK">How many classes to return per image.</param>
    /// <param name="cancellationToken">Stops the batch within the images in flight.</param>
    /// <returns>One result per path, in order: its <see cref="BatchPrediction.Prediction"/>, or the <see cref="BatchPrediction.Error"/> that names the file.</returns>
    /// <exception cref="ArgumentException">A path is <see langword="null"/> or empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<IReadOnlyList<BatchPrediction>> PredictBatchAsync(IEnumerable<string> paths, int topK = DefaultTopK, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        var inputs = paths.Select(p =>
        {
            ArgumentException.ThrowIfNullOrEmpty(p, nameof(paths));
            return ImageInput.FromFile(Path.GetFullPath(p));
        }).ToList();
        return PredictInputsAsync(inputs, new InvalidImageException?[inputs.Count], topK, cancellationToken);
    }

    /// <summary>Classifies many images held in memory; a bad image does not stop the batch.</summary>
    /// <param name="images">The encoded images.</param>
    /// <param name="topK">How many classes to return per image.</param>
    /// <param name="cancellationToken">Stops the batch within the images in flight.</param>
    /// <returns>One result per image, in order: its <see cref="BatchPrediction.Prediction"/>, or the <see cref="BatchPrediction.Error"/> (whose message gives the input's index).</returns>
    /// <exception cref="ArgumentException">An image is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<IReadOnlyList<BatchPrediction>> PredictBatchAsync(IEnumerable<byte[]> images, int topK = DefaultTopK, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        var inputs = images.Select(b => ImageInput.FromBytes(b ?? throw new ArgumentException("The image list contains a null entry.", nameof(images)))).ToList();
        return PredictInputsAsync(inputs, new InvalidImageException?[inputs.Count], topK, cancellationToken);
    }

    /// <summary>
    /// Classifies many images read asynchronously from streams (each read to its end, one after another, and not closed);
    /// a bad image or a failing stream does not stop the batch. Each stream is bounded by <see cref="ImageLimits.MaxFileBytes"/>,
    /// and every image is held in memory until the batch is done.
    /// </summary>
    /// <param name="streams">The streams.</param>
    /// <param name="topK">How many classes to return per image.</param>
    /// <param name="cancellationToken">Stops the reads and the batch.</param>
    /// <returns>
    /// One result per stream, in order: its <see cref="BatchPrediction.Prediction"/>, or the <see cref="BatchPrediction.Error"/>:
    /// not an image, more than <see cref="ImageLimits.MaxFileBytes"/>, or a read that failed (<see cref="BadImageReason.Unreadable"/>,
    /// the stream's exception as the inner exception).
    /// </returns>
    /// <exception cref="ArgumentException">A stream is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public async Task<IReadOnlyList<BatchPrediction>> PredictBatchAsync(IEnumerable<Stream> streams, int topK = DefaultTopK, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(streams);
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        var list = streams.Select(s => s ?? throw new ArgumentException("The stream list contains a null entry.", nameof(streams))).ToList();
        using (_guard.Enter(nameof(ImageClassifierModel)))
        {
            // Fails fast on a disposed model before any stream is read.
        }

        var inputs = new List<ImageInput>(list.Count);
        var failed = new InvalidImageException?[list.Count];
        for (var i = 0; i < list.Count; i++)
        {
            try
            {
                inputs.Add(ImageInput.FromBytes(await ImageDecoder.ReadStreamAsync(list[i], cancellationToken).ConfigureAwait(false)));
            }
            catch (InvalidImageException ex)
            {
                failed[i] = ex;
                inputs.Add(ImageInput.FromBytes([]));
            }
            catch (Exception ex) when (ex is IOException or NotSupportedException or ObjectDisposedException or UnauthorizedAccessException)
            {
                failed[i] = new InvalidImageException(null, BadImageReason.Unreadable, $"stream {i} of the batch could not be read: {ex.Message} Check where the stream comes from, and that it is open and readable.", ex);
                inputs.Add(ImageInput.FromBytes([]));
            }
        }

        return await PredictInputsAsync(inputs, failed, topK, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Classifies many image files; see <see cref="PredictBatchAsync(IEnumerable{string}, int, CancellationToken)"/>.</summary>
    /// <param name="paths">The image files.</param>
    /// <param name="topK">How many classes to return per image.</param>
    /// <param name="cancellationToken">Stops the batch within the images in flight.</param>
    /// <returns>One result per path, in order.</returns>
    /// <exception cref="ArgumentException">A path is <see langword="null"/> or empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public IReadOnlyList<BatchPrediction> PredictBatch(IEnumerable<string> paths, int topK = DefaultTopK, CancellationToken cancellationToken = default) =>
        PredictBatchAsync(paths, topK, cancellationToken).GetAwaiter().GetResult();

    /// <summary>Classifies many images held in memory; see <see cref="PredictBatchAsync(IEnumerable{byte[]}, int, CancellationToken)"/>.</summary>
    /// <param name="images">The encoded images.</param>
    /// <param name="topK">How many classes to return per image.</param>
    /// <param name="cancellationToken">Stops the batch within the images in flight.</param>
    /// <returns>One result per image, in order.</returns>
    /// <exception cref="ArgumentException">An image is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public IReadOnlyList<BatchPrediction> PredictBatch(IEnumerable<byte[]> images, int topK = DefaultTopK, CancellationToken cancellationToken = default) =>
        PredictBatchAsync(images, topK, cancellationToken).GetAwaiter().GetResult();

    /// <summary>Classifies many images read from streams; see <see cref="PredictBatchAsync(IEnumerable{Stream}, int, CancellationToken)"/> (prefer it for streams that forbid synchronous waits).</summary>
    /// <param name="streams">The streams, each read to its end and not closed.</param>
    /// <param name="topK">How many classes to return per image.</param>
    /// <param name="cancellationToken">Stops the reads and the batch.</param>
    /// <returns>One result per stream, in order.</returns>
    /// <exception cref="ArgumentException">A stream is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public IReadOnlyList<BatchPrediction> PredictBatch(IEnumerable<Stream> streams, int topK = DefaultTopK, CancellationToken cancellationToken = default) =>
        PredictBatchAsync(streams, topK, cancellationToken).GetAwaiter().GetResult();

    /// <summary>Evaluates the model on a labelled folder (one sub-folder per class, names as in <see cref="Classes"/>).</summary>
    /// <param name="folder">The folder.</param>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the evaluation within one image.</param>
    /// <returns>The metrics and the files that were skipped or ignored.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDatasetException">A class folder names a class the model does not know, or no image is usable.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public async Task<EvaluationReport> EvaluateAsync(string folder, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        await EvaluateScanAsync(DatasetScanner.ScanFolder(folder), progress, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Evaluates the model on a list of labelled image files, with the rules of the folder form: every label must be one of
    /// <see cref="Classes"/>, bad images are skipped and listed. For a CSV file, pass <see cref="LabeledImage.ReadCsv"/>.
    /// </summary>
    /// <param name="images">The images and their labels; the list is read once, now.</param>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the evaluation within one image.</param>
    /// <returns>The metrics and the files that were skipped.</returns>
    /// <exception cref="ArgumentException">The list holds a <see langword="null"/> entry or an empty path.</exception>
    /// <exception cref="InvalidDatasetException">A label is empty or not one of the model's classes (each such label is named), the list is empty, or no image is usable; every problem is listed.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public async Task<EvaluationReport> EvaluateAsync(IEnumerable<LabeledImage> images, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        await EvaluateScanAsync(DatasetScanner.FromList(images), progress, cancellationToken).ConfigureAwait(false);

    /// <summary>Evaluates the model on a labelled folder; see <see cref="EvaluateAsync(string, IProgress{TrainingProgress}, CancellationToken)"/>.</summary>
    /// <param name="folder">The folder.</param>
    /// <returns>The metrics and the files that were skipped or ignored.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDatasetException">A class folder names an unknown class, or no image is usable.</exception>
    public EvaluationReport Evaluate(string folder) => EvaluateAsync(folder).GetAwaiter().GetResult();

    /// <summary>Evaluates the model on a list of labelled image files; see <see cref="EvaluateAsync(IEnumerable{LabeledImage}, IProgress{TrainingProgress}, CancellationToken)"/>.</summary>
    /// <param name="images">The images and their labels.</param>
    /// <returns>The metrics and the files that were skipped.</returns>
    /// <exception cref="ArgumentException">The list holds a <see langword="null"/> entry or an empty path.</exception>
    /// <exception cref="InvalidDatasetException">A label is empty or unknown, the list is empty, or no image is usable; every problem is listed.</exception>
    public EvaluationReport Evaluate(IEnumerable<LabeledImage> images) => EvaluateAsync(images).GetAwaiter().GetResult();

    /// <summary>
    /// Writes the model to one file, atomically: the file is written next to the target under a temporary name and then
    /// renamed over it, so a failed save leaves any previous file intact.
    /// </summary>
    /// <param name="path">The model file to write (by convention <c>*.pkmodel</c>).</param>
    /// <exception cref="IOException">The file cannot be written (read-only file or folder, full disk, a folder in the way); the old file is unchanged.</exception>
    /// <exception cref="DirectoryNotFoundException">The target's folder does not exist.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public void Save(string path) => SaveCore(path, null);

    internal void SaveCore(string path, Action<string>? beforeCommit)
    {
        using var lease = _guard.Enter(nameof(ImageClassifierModel));
        ModelFile.Save(path, Definition, beforeCommit);
    }

    /// <summary>
    /// Writes the whole model as ONE ONNX file (atomically): channel reorder and mean subtraction, the backbone, the
    /// features (the backbone's pooled output, or for <see cref="FeatureLayout.MultiStage"/> and
    /// <see cref="FeatureLayout.MultiStageGrid"/> the same multi-stage pooling as <see cref="Predict(string, int)"/>,
    /// computed inside the graph), the retrained head (linear or kernel, with its normalisation) and a softmax, with a
    /// dynamic batch dimension. With <see cref="TestTimeAugmentation.Mirror"/> the file flips each image left to right
    /// itself, runs both views through the backbone and averages their logits before the softmax, as <c>Predict</c>
    /// does. Input <c>image</c>: float32 [N,3,224,224], planar RGB, values 0-255 (decode and resize the image yourself,
    /// as <see cref="ImageOptions"/> says). Output <c>probabilities</c>: float32 [N, classes], calibrated as
    /// <see cref="Temperature"/> says. The class names, preprocessing facts, temperature and
    /// <see cref="UnknownThreshold"/> (when set) are in <c>metadata_props</c> under keys that start with
    /// <c>pretrainedkit.</c> (<c>pretrainedkit.temperature</c>, <c>pretrainedkit.unknown_threshold</c>, and for
    /// multi-stage features or test-time mirroring <c>pretrainedkit.features</c> and
    /// <c>pretrainedkit.test_time_augmentation</c>).
    /// </summary>
    /// <param name="path">The ONNX file to write.</param>
    /// <exception cref="IOException">The file cannot be written; the previous file, if any, is unchanged.</exception>
    /// <exception cref="DirectoryNotFoundException">The target's folder does not exist.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="NotSupportedException">The model uses a custom backbone without a mean image; only mean-image backbones such as ResNet18 are exported so far.</exception>
    public void ExportOnnx(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var lease = _guard.Enter(nameof(ImageClassifierModel));
        if (_extractor.Runtime.NegativeMean.IsEmpty)
        {
            throw new NotSupportedException(
                $"ONNX export supports backbones that subtract a mean image, such as ResNet18; this model uses {Backbone}, which normalises per channel.");
        }

        OnnxExport.Write(path, Definition, _extractor.Runtime);
    }

    /// <summary>Frees the backbone session after waiting for calls in flight. Later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (_guard.Close())
        {
            _extractor.Dispose();
        }
    }

    /// <summary>The evaluation shared by the folder and the list: the dataset rules, one featurisation pass, the metrics.</summary>
    private async Task<EvaluationReport> EvaluateScanAsync(FolderScan scan, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var reporter = new ProgressReporter(progress, _logger);
        var problems = DatasetRules.CheckEvaluation(scan, Classes);
        if (problems.Count > 0)
        {
            throw new InvalidDatasetException(problems);
        }

        using var lease = _guard.Enter(nameof(ImageClassifierModel));
        var views = Definition.TestViews;
        var features = await _extractor.ExtractAsync(
            scan.Images.Select(i => ImageInput.FromFile(i.Path)).ToList(),
            _ => views,
            (done, total, eta) => reporter.Report(TrainingPhase.Featurizing, done, total, eta),
            cancellationToken,
            hashContent: TrainingReport?.TrainingImageHashes.Count > 0).ConfigureAwait(false);

        foreach (var skipped in features.Skipped)
        {
            Log.Skipped(_logger, skipped.Path, skipped.Message);
        }

        reporter.Report(TrainingPhase.Evaluating, 0, 1, null);
        var actual = new List<int>();
        var probabilities = new List<IReadOnlyList<float>>();
        var images = new List<EvaluatedImage>();
        for (var i = 0; i < scan.Images.Count; i++)
        {
            if (features.Views[i] is { } f)
            {
                actual.Add(IndexOf(scan.Images[i].Label));
                probabilities.Add(Definition.Probabilities(f));
                images.Add(EvaluatedImage.Create(scan.Images[i].Path, Classes, actual[^1], probabilities[^1]));
            }
        }

        if (actual.Count == 0)
        {
            throw new InvalidDatasetException([DatasetRules.NothingUsable(scan)]);
        }

        var metrics = ClassificationMetrics.Compute(Classes, actual, probabilities);
        reporter.Complete();
        var trained = TrainingReport?.TrainingImageHashes ?? new Dictionary<string, string>();
        var leaked = Enumerable.Range(0, scan.Images.Count)
            .Where(i => features.Views[i] is not null && i < features.ContentHashes.Count && features.ContentHashes[i] is not null)
            .Select(i => (Path: scan.Images[i].Path, Training: trained.GetValueOrDefault(Convert.ToHexString(features.ContentHashes[i]!))))
            .Where(x => x.Training is not null)
            .Select(x => new LeakedImage(x.Path, x.Training!))
            .ToList();
        var report = new EvaluationReport { Metrics = metrics, Skipped = features.Skipped, IgnoredFileCount = scan.IgnoredFiles.Count, Elapsed = reporter.Elapsed, Images = images, FeatureCacheHits = features.CacheHits, LeakedImages = leaked };
        if (UnknownThreshold is not { } threshold)
        {
            return report;
        }

        var accepted = images.Where(i => i.PredictedProbability >= threshold).ToList();
        return report with
        {
            UnknownThreshold = threshold,
            Coverage = (double)accepted.Count / images.Count,
            AcceptedPrecision = accepted.Count == 0 ? null : (double)accepted.Count(i => i.IsCorrect) / accepted.Count,
        };
    }

    /// <summary>The suggestion shared by the folder and the list: one featurisation pass (unlabelled images with the test views, labelled ones with the original view), then <see cref="LabelingRanker.Rank"/>.</summary>
    private async Task<LabelingSuggestionReport> SuggestCoreAsync(List<string> images, int ignored, LabelingSuggestionOptions? options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        options ??= LabelingSuggestionOptions.Default;
        options.Validate();
        var watch = Stopwatch.StartNew();
        var reporter = new ProgressReporter(progress, _logger);
        var labelled = options.LabelledImages.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToList();
        var labelledSet = labelled.ToHashSet(StringComparer.Ordinal);
        var pool = images.Distinct(StringComparer.Ordinal).Where(p => !labelledSet.Contains(p)).ToList();
        ignored += images.Count - pool.Count;

        using var lease = _guard.Enter(nameof(ImageClassifierModel));
        var views = Definition.TestViews;
        IReadOnlyList<ImageView> original = [ImageView.Original];
        var set = await _extractor.ExtractAsync(
            pool.Concat(labelled).Select(ImageInput.FromFile).ToList(),
            i => i < pool.Count ? views : original,
            (done, total, eta) => reporter.Report(TrainingPhase.Featurizing, done, total, eta),
            cancellationToken).ConfigureAwait(false);
        foreach (var skipped in set.Skipped)
        {
            Log.Skipped(_logger, skipped.Path, skipped.Message);
        }

        var usable = Enumerable.Range(0, pool.Count).Where(i => set.Views[i] is not null).ToList();
        var references = Enumerable.Range(pool.Count, labelled.Count).Where(i => set.Views[i] is not null).Select(i => Embedder.EmbedRaw(set.Views[i]![0])).ToList();
        if (Definition.Head is KernelHeadDefinition kernel)
        {
            references.AddRange(kernel.Centres.Select(c => FeatureScaling.L2Normalized(c)));
        }

        var notes = new List<string>();
        if (references.Count == 0)
        {
            notes.Add("No labelled images were given and the model's head keeps no training images: likely unknowns were not looked for, and distances are measured between suggestions only. Give the labelled images (LabelingSuggestionOptions.LabelledImages, or suggest --labelled DIR).");
        }

        else if (usable.Count < LabelingRanker.MinImagesForUnknowns)
        {
            notes.Add($"Fewer than {LabelingRanker.MinImagesForUnknowns} unlabelled images: too few to tell an unusually distant one, so likely unknowns were not looked for.");
        }

        if (options.Diversity && options.Top > LabelingRanker.MaxCandidates)
        {
            notes.Add($"More than {LabelingRanker.MaxCandidates} suggestions were asked for: they are ranked by uncertainty alone.");
        }

        var (suggestions, unknown, typical) = usable.Count == 0
            ? ([], [], null)
            : LabelingRanker.Rank(
                usable.Select(i => pool[i]).ToList(),
                usable.Select(i => Definition.Probabilities(set.Views[i]!)).ToList(),
                usable.Select(i => Embedder.EmbedRaw(set.Views[i]![0])).ToList(),
                references,
                Classes,
                options);
        reporter.Complete();
        return new LabelingSuggestionReport
        {
            Suggestions = suggestions,
            LikelyUnknown = unknown,
            ImageCount = usable.Count,
            Skipped = set.Skipped,
            IgnoredFileCount = ignored,
            ReferenceCount = references.Count,
            TypicalDistance = typical,
            Notes = notes,
            Elapsed = watch.Elapsed,
        };
    }

    /// <summary>One featurisation pass over the inputs, then one result per input; inputs already known bad (<paramref name="failed"/>) keep their error.</summary>
    private async Task<IReadOnlyList<BatchPrediction>> PredictInputsAsync(List<ImageInput> inputs, InvalidImageException?[] failed, int topK, CancellationToken cancellationToken)
    {
        using var lease = _guard.Enter(nameof(ImageClassifierModel));
        var readable = Enumerable.Range(0, inputs.Count).Where(i => failed[i] is null).ToList();
        var views = Definition.TestViews;
        var result = await _extractor.ExtractAsync(readable.Select(i => inputs[i]).ToList(), _ => views, null, cancellationToken).ConfigureAwait(false);
        var features = new float[][]?[inputs.Count];
        for (var r = 0; r < readable.Count; r++)
        {
            features[readable[r]] = result.Views[r];
            failed[readable[r]] = result.ErrorsByImage[r] is { } error && inputs[readable[r]].Path is null ? WithIndex(error, readable[r]) : result.ErrorsByImage[r];
        }

        return inputs.Select((input, i) => new BatchPrediction
        {
            Index = i,
            Path = input.Path,
            Prediction = features[i] is { } f ? MakePrediction(input.Path, Definition.Probabilities(f), topK) : null,
            Error = features[i] is null ? failed[i] : null,
        }).ToList();
    }

    /// <summary>The error of an input without a path, its message saying which input of the batch it is.</summary>
    private static InvalidImageException WithIndex(InvalidImageException error, int index) =>
        new(null, error.Reason, $"input {index} of the batch: {error.Detail}", error);

    /// <summary>The features of the original view of one image, through the model's featurisation session (for tests).</summary>
    internal float[] ExtractFeatures(byte[] bytes, string? path) => _extractor.Extract(new ImageInput(path, bytes), [ImageView.Original])[0];

    private Prediction PredictCore(ImageInput input, int topK) =>
        MakePrediction(input.Path, Definition.Probabilities(_extractor.Extract(input, Definition.TestViews)), topK);

    private Prediction MakePrediction(string? path, float[] probabilities, int topK)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        var top = Enumerable.Range(0, probabilities.Length)
            .OrderByDescending(c => probabilities[c])
            .ThenBy(c => c)
            .Take(Math.Min(topK, probabilities.Length))
            .Select(c => new LabelProbability(Classes[c], probabilities[c]))
            .ToArray();
        return new Prediction { Path = path, TopK = top, Probabilities = probabilities, UnknownThreshold = UnknownThreshold };
    }

    private int IndexOf(string label)
    {
        for (var i = 0; i < Classes.Count; i++)
        {
            if (string.Equals(Classes[i], label, StringComparison.Ordinal))
            {
                return i;
            }
        }

        throw new InvalidOperationException($"Unknown class '{label}'.");
    }
}
