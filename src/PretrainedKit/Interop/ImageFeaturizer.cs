using Microsoft.ML;
using Microsoft.ML.Data;
using PretrainedKit.Backbones;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;
using PretrainedKit.Internal;

namespace PretrainedKit.Interop;

/// <summary>
/// The pretrained backbone on its own, for people who build their own ML.NET pipelines: it turns an image file into the
/// same feature vector that PretrainedKit's classifier is trained on (same decoder, same normalisation, same weights).
/// Use <see cref="CreateEstimator"/> (or <c>mlContext.Transforms.FeaturizeImages(featurizer)</c>) to put it into a
/// pipeline: an <see cref="IDataView"/> with an image column (paths, encoded bytes or <c>MLImage</c>) in, a vector column
/// of <see cref="FeatureSize"/> floats out.
/// </summary>
/// <example>
/// <code>
/// using var featurizer = ImageFeaturizer.Open();
/// var pipeline = mlContext.Transforms.FeaturizeImages(featurizer, outputColumnName: "Features", inputColumnName: "ImagePath")
///     .Append(mlContext.Transforms.Conversion.MapValueToKey("Label"))
///     .Append(mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy());
/// var model = pipeline.Fit(trainingData);
/// </code>
/// </example>
/// <threadsafety>
/// Every member is safe to call from many threads at once (ML.NET may run the mapping on several threads).
/// <see cref="Dispose"/> waits for calls in flight; later calls throw <see cref="ObjectDisposedException"/>, including those
/// made by transformers created from this featurizer, so keep it alive as long as they are used.
/// </threadsafety>
public sealed class ImageFeaturizer : IDisposable
{
    private static readonly ImageView[] OriginalOnly = [ImageView.Original];
    private readonly FeatureExtractor _extractor;
    private readonly UsageGuard _guard = new();

    private ImageFeaturizer(FeatureExtractor extractor)
    {
        _extractor = extractor;
    }

    /// <summary>Gets the backbone.</summary>
    public Backbone Backbone => _extractor.Runtime.Backbone;

    /// <summary>Gets how images are decoded and resized before the backbone.</summary>
    public ImagePreprocessingOptions ImageOptions => _extractor.Image;

    /// <summary>Gets the length of each feature vector (512 for ResNet18).</summary>
    public int FeatureSize => _extractor.FeatureSize;

    /// <summary>Opens the backbone's ONNX Runtime session.</summary>
    /// <param name="backbone">The backbone; by default <see cref="KnownBackbones.ResNet18"/>.</param>
    /// <param name="imageOptions">How images are normalised; by default <see cref="ImagePreprocessingOptions.Default"/>.</param>
    /// <returns>The featurizer; dispose it when the pipelines that use it are no longer needed.</returns>
    /// <exception cref="BackboneNotFoundException">The backbone's files are not installed.</exception>
    public static ImageFeaturizer Open(Backbone? backbone = null, ImagePreprocessingOptions? imageOptions = null)
    {
        var image = imageOptions ?? ImagePreprocessingOptions.Default;
        image.Validate();
        var extractor = new FeatureExtractor(BackboneRuntime.Open(backbone ?? KnownBackbones.ResNet18, FeatureLayout.Pooled, null), image);
        try
        {
            extractor.Warm(SessionProfile.Latency);
        }
        catch
        {
            extractor.Dispose();
            throw;
        }

        return new ImageFeaturizer(extractor);
    }

    /// <summary>Computes the features of one image file.</summary>
    /// <param name="path">The image (recognised by content).</param>
    /// <returns>A new array of <see cref="FeatureSize"/> floats.</returns>
    /// <exception cref="InvalidImageException">The file cannot be read or is not a usable image; the message names it.</exception>
    /// <exception cref="ObjectDisposedException">The featurizer was disposed.</exception>
    public float[] GetFeatures(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        using var lease = _guard.Enter(nameof(ImageFeaturizer));
        return GetFeaturesCore(ImageInput.FromFile(full));
    }

    /// <summary>Computes the features of an image held in memory.</summary>
    /// <param name="bytes">The encoded image.</param>
    /// <returns>A new array of <see cref="FeatureSize"/> floats.</returns>
    /// <exception cref="InvalidImageException">The bytes are not a usable image.</exception>
    /// <exception cref="ObjectDisposedException">The featurizer was disposed.</exception>
    public float[] GetFeatures(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var lease = _guard.Enter(nameof(ImageFeaturizer));
        return GetFeaturesCore(ImageInput.FromBytes(bytes));
    }

    /// <summary>
    /// Creates an ML.NET estimator that adds a features column computed from an image column: file paths (text), encoded
    /// image bytes (a byte vector, as <c>LoadRawImageBytes</c> or a <c>byte[]</c> member gives) or images
    /// (<c>MLImage</c>, as <c>LoadImages</c> or an <c>MLImage</c> member gives). The transformer it fits is lazy (images
    /// are read when rows are read), keeps every input column and works in <c>Transform</c>, after <c>Append</c> and in a
    /// <c>PredictionEngine</c>.
    /// </summary>
    /// <remarks>
    /// <para>
    /// An <c>MLImage</c>'s pixels are encoded as a lossless PNG in memory and take the same path as encoded bytes, so the
    /// features are those of the bytes of a PNG with the same pixels (alpha composited onto
    /// <see cref="ImagePreprocessingOptions.Background"/>). They are not always those of the file the image was loaded
    /// from: <c>LoadImages</c> decodes without EXIF orientation and at full size, and premultiplies alpha, so a rotated
    /// or large JPEG or a translucent PNG can give slightly different features than its path or its bytes. Give the path or
    /// bytes column when you have it; it is also faster (no PNG round trip).
    /// </para>
    /// <para>
    /// The fitted transformer cannot be saved with <c>mlContext.Model.Save</c> (it runs a native ONNX Runtime session): its
    /// <c>Save</c> throws <see cref="NotSupportedException"/>. Save the part of the pipeline after it (fitted on the
    /// features), and at load time open a featurizer again and put <c>FeaturizeImages</c> in front.
    /// </para>
    /// </remarks>
    /// <param name="mlContext">Your ML.NET context.</param>
    /// <param name="outputColumnName">The new column: a vector of <see cref="FeatureSize"/> <see cref="float"/>s.</param>
    /// <param name="inputColumnName">The column that holds image file paths (text), image bytes or images (MLImage).</param>
    /// <returns>The estimator.</returns>
    /// <exception cref="ObjectDisposedException">The featurizer was disposed.</exception>
    public IEstimator<ITransformer> CreateEstimator(MLContext mlContext, string outputColumnName = "Features", string inputColumnName = "ImagePath")
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return CreateEstimatorCore(outputColumnName, inputColumnName);
    }

    internal IEstimator<ITransformer> CreateEstimatorCore(string outputColumnName, string inputColumnName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(outputColumnName);
        ArgumentException.ThrowIfNullOrWhiteSpace(inputColumnName);
        using var lease = _guard.Enter(nameof(ImageFeaturizer));
        return new ImageColumnEstimator<float[]>(new ImageColumnMapping<float[]>(
            inputColumnName,
            [ImageOutputColumn<float[]>.Floats(outputColumnName, FeatureSize, features => features)],
            GetFeatures,
            GetFeatures,
            ImageOptions.MaxPixels,
            "Save the part of your pipeline after FeaturizeImages instead, and at load time open an ImageFeaturizer again and put FeaturizeImages in front of it."));
    }

    /// <summary>Frees the backbone session after waiting for calls in flight.</summary>
    public void Dispose()
    {
        if (_guard.Close())
        {
            _extractor.Dispose();
        }
    }

    private float[] GetFeaturesCore(ImageInput input) => _extractor.Extract(input, OriginalOnly)[0];
}
