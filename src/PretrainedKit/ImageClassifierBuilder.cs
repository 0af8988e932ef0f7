using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Imaging;
using PretrainedKit.Inspection;
using PretrainedKit.Models;
using PretrainedKit.Training;

namespace PretrainedKit;

/// <summary>
/// Configures and trains an <see cref="ImageClassifierModel"/>. Each <c>With*</c> method is a shortcut for
/// <c>Options with { ... }</c>; <c>From*</c> chooses the data.
/// </summary>
/// <remarks>
/// The builder is reusable: every <see cref="TrainAsync"/> call takes a snapshot of the options and data source, and the
/// model it returns keeps no reference to the builder. Changing the builder afterwards does not change trained models.
/// </remarks>
/// <threadsafety>Configure it from one thread. Concurrent <see cref="TrainAsync"/> calls on an unchanging builder are safe; each run has its own MLContext.</threadsafety>
public sealed class ImageClassifierBuilder
{
    private Func<FolderScan>? _source;
    private ILoggerFactory _loggerFactory = NullLoggerFactory.Instance;

    internal ImageClassifierBuilder()
    {
    }

    /// <summary>Gets the options the next <see cref="TrainAsync"/> call will use.</summary>
    public ImageClassifierOptions Options { get; private set; } = ImageClassifierOptions.Default;

    /// <summary>Trains on a folder with one sub-folder per class (images may sit in nested folders below a class folder).</summary>
    /// <param name="folder">The dataset folder.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder FromFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        _source = () => DatasetScanner.ScanFolder(folder);
        return this;
    }

    /// <summary>Trains on an explicit list of image files and labels.</summary>
    /// <param name="images">The images; the list is copied now.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder FromImages(IEnumerable<LabeledImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var copy = images.ToList();
        _source = () => DatasetScanner.FromList(copy);
        return this;
    }

    /// <summary>
    /// Trains on the images listed in a CSV file: the header <c>path,label</c> (any case), then one row per image; relative
    /// paths are resolved against the CSV file's folder. The file is read when training starts; see
    /// <see cref="LabeledImage.ReadCsv"/> for the format.
    /// </summary>
    /// <param name="path">The CSV file.</param>
    /// <returns>This builder.</returns>
    /// <remarks>
    /// <see cref="TrainAsync"/> then throws <see cref="FileNotFoundException"/> when the file does not exist, and
    /// <see cref="InvalidDatasetException"/> listing every bad row with its line number (a missing column, an empty label,
    /// a missing image, a path listed twice, a quote out of place).
    /// </remarks>
    public ImageClassifierBuilder FromCsv(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        _source = () => DatasetScanner.FromList(LabeledImage.ReadCsv(full));
        return this;
    }

    /// <summary>Replaces all options at once.</summary>
    /// <param name="options">The options.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithOptions(ImageClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        return this;
    }

    /// <summary>Sets <see cref="ImageClassifierOptions.Backbone"/>.</summary>
    /// <param name="backbone">The backbone, usually from <see cref="KnownBackbones"/>.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithBackbone(Backbone backbone)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        return WithOptions(Options with { Backbone = backbone });
    }

    /// <summary>Sets <see cref="ImageClassifierOptions.FeatureLayout"/>.</summary>
    /// <param name="layout">Which activations become features.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithFeatureLayout(FeatureLayout layout) => WithOptions(Options with { FeatureLayout = layout });

    /// <summary>Sets <see cref="ImageClassifierOptions.Precision"/>.</summary>
    /// <param name="precision">The arithmetic the backbone runs in.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithPrecision(Precision precision) => WithOptions(Options with { Precision = precision });

    /// <summary>Sets <see cref="ImageClassifierOptions.Image"/>.</summary>
    /// <param name="image">How images are normalised.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithImageOptions(ImagePreprocessingOptions image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return WithOptions(Options with { Image = image });
    }

    /// <summary>Sets the colour that transparent pixels are composited onto (<see cref="ImagePreprocessingOptions.Background"/>).</summary>
    /// <param name="background">The colour.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithBackground(RgbColor background) => WithImageOptions(Options.Image with { Background = background });

    /// <summary>Sets how non-square images are fitted (<see cref="ImagePreprocessingOptions.ResizeMode"/>).</summary>
    /// <param name="mode">The mode.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithResizeMode(ResizeMode mode) => WithImageOptions(Options.Image with { ResizeMode = mode });

    /// <summary>Sets the largest image accepted, in pixels (<see cref="ImagePreprocessingOptions.MaxPixels"/>).</summary>
    /// <param name="maxPixels">The limit.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithMaxPixels(long maxPixels) => WithImageOptions(Options.Image with { MaxPixels = maxPixels });

    /// <summary>Sets <see cref="ImageClassifierOptions.Seed"/>.</summary>
    /// <param name="seed">The seed.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithSeed(int seed) => WithOptions(Options with { Seed = seed });

    /// <summary>Sets <see cref="ImageClassifierOptions.ValidationFraction"/> (and clears any validation folder or list).</summary>
    /// <param name="fraction">The fraction of each class to hold out, from 0 (none) to below 1.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithValidationSplit(double fraction) => WithOptions(Options with { ValidationFraction = fraction, ValidationFolder = null, ValidationImages = null });

    /// <summary>Validates on a separate folder (one sub-folder per class) instead of splitting the training data (clears any validation split or list).</summary>
    /// <param name="folder">The validation folder.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithValidationFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        return WithOptions(Options with { ValidationFolder = folder, ValidationFraction = 0, ValidationImages = null });
    }

    /// <summary>
    /// Validates on a list of labelled images instead of splitting the training data (clears any validation split or
    /// folder); sets <see cref="ImageClassifierOptions.ValidationImages"/>. Every label must be a class of the training
    /// data. For a CSV file, pass <see cref="LabeledImage.ReadCsv"/>.
    /// </summary>
    /// <param name="images">The validation images; the list is copied now.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentException">The list holds a <see langword="null"/> entry.</exception>
    public ImageClassifierBuilder WithValidationImages(IEnumerable<LabeledImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var copy = images.ToList();
        if (copy.Contains(null!))
        {
            throw new ArgumentException("The validation image list contains a null entry.", nameof(images));
        }

        return WithOptions(Options with { ValidationImages = copy.AsReadOnly(), ValidationFraction = 0, ValidationFolder = null });
    }

    /// <summary>Sets <see cref="ImageClassifierOptions.Strict"/>: fail on any bad image, naming all of them.</summary>
    /// <param name="strict">Whether bad images fail training.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithStrictMode(bool strict = true) => WithOptions(Options with { Strict = strict });

    /// <summary>Sets <see cref="LinearHeadOptions.L2Regularization"/> of the linear head.</summary>
    /// <param name="l2">The L2 weight.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="InvalidOperationException">The head is not linear: the kernel head has a fixed ridge weight.</exception>
    public ImageClassifierBuilder WithL2Regularization(float l2) => WithLinearHead(nameof(WithL2Regularization), h => h with { L2Regularization = l2 });

    /// <summary>Sets <see cref="LinearHeadOptions.AutoRegularization"/> of the linear head: choose the L2 weight by cross-validation on the training features.</summary>
    /// <param name="enabled">Whether to search.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="InvalidOperationException">The head is not linear: the kernel head has a fixed ridge weight.</exception>
    public ImageClassifierBuilder WithAutoRegularization(bool enabled = true) => WithLinearHead(nameof(WithAutoRegularization), h => h with { AutoRegularization = enabled });

    /// <summary>Sets <see cref="ImageClassifierOptions.Normalization"/>.</summary>
    /// <param name="normalization">How feature vectors are scaled before the final layer.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithNormalization(FeatureNormalization normalization) => WithOptions(Options with { Normalization = normalization });

    /// <summary>Sets <see cref="ImageClassifierOptions.Augmentation"/>.</summary>
    /// <param name="augmentation">The extra views of each training image, for example <c>TrainingAugmentation.Mirror</c>.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithAugmentation(TrainingAugmentation augmentation) => WithOptions(Options with { Augmentation = augmentation });

    /// <summary>Sets <see cref="ImageClassifierOptions.TestTimeAugmentation"/>.</summary>
    /// <param name="augmentation">The views averaged per prediction.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithTestTimeAugmentation(TestTimeAugmentation augmentation) => WithOptions(Options with { TestTimeAugmentation = augmentation });

    /// <summary>Sets <see cref="LinearHeadOptions.MaximumIterations"/> of the linear head.</summary>
    /// <param name="iterations">The iteration limit.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="InvalidOperationException">The head is not linear.</exception>
    public ImageClassifierBuilder WithMaximumIterations(int iterations) => WithLinearHead(nameof(WithMaximumIterations), h => h with { MaximumIterations = iterations });

    /// <summary>Sets <see cref="ImageClassifierOptions.Head"/> to the default settings of a kind of head (replacing any head settings given before).</summary>
    /// <param name="head">The head kind.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The kind is not known.</exception>
    public ImageClassifierBuilder WithHead(HeadKind head) => WithHead(HeadOptions.For(head));

    /// <summary>Sets <see cref="ImageClassifierOptions.Head"/>: the kind of head and its settings.</summary>
    /// <param name="head">For example <c>new LinearHeadOptions { L2Regularization = 3 }</c> or <see cref="KernelHeadOptions.Default"/>.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithHead(HeadOptions head)
    {
        ArgumentNullException.ThrowIfNull(head);
        return WithOptions(Options with { Head = head });
    }

    /// <summary>Sets <see cref="ImageClassifierOptions.Auto"/>: whether the levers not set explicitly are chosen by cross-validation on the training images.</summary>
    /// <param name="enabled"><see langword="false"/> for the plain defaults (pooled features, linear head, no augmentation) on every lever not set.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithAutomaticLevers(bool enabled) => WithOptions(Options with { Auto = enabled });

    /// <summary>Sets <see cref="ImageClassifierOptions.SingleViewPrediction"/>: automatic choice keeps every prediction to one backbone run.</summary>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithSingleViewPrediction() => WithOptions(Options with { SingleViewPrediction = true });

    /// <summary>Sets <see cref="ImageClassifierOptions.ClassWeighting"/>.</summary>
    /// <param name="weighting">The weighting.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithClassWeighting(ClassWeighting weighting) => WithOptions(Options with { ClassWeighting = weighting });

    /// <summary>Sets <see cref="ImageClassifierOptions.Calibrate"/>: whether a temperature is fitted on the validation images.</summary>
    /// <param name="calibrate">Whether to calibrate the probabilities.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithCalibration(bool calibrate = true) => WithOptions(Options with { Calibrate = calibrate });

    /// <summary>Sets <see cref="ImageClassifierOptions.UnknownPrecisionTarget"/>: answer "unknown" below a threshold chosen for this precision.</summary>
    /// <param name="target">The precision of the accepted predictions, above 0 and at most 1 (for example 0.95), or <see langword="null"/> to never answer "unknown".</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithUnknownPrecisionTarget(double? target) => WithOptions(Options with { UnknownPrecisionTarget = target });

    /// <summary>Sets <see cref="ImageClassifierOptions.FeatureCache"/>.</summary>
    /// <param name="cache">The cache options; <see cref="FeatureCacheOptions.Disabled"/> turns the cache off.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithFeatureCache(FeatureCacheOptions cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        return WithOptions(Options with { FeatureCache = cache });
    }

    /// <summary>Caches features in <paramref name="directory"/> instead of the default per-user folder.</summary>
    /// <param name="directory">The cache folder (created when needed).</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithFeatureCacheDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        return WithFeatureCache(Options.FeatureCache with { Enabled = true, Directory = directory });
    }

    /// <summary>Logs warnings (skipped images, small classes) and phase timings through <paramref name="loggerFactory"/>.</summary>
    /// <param name="loggerFactory">The logger factory; by default nothing is logged.</param>
    /// <returns>This builder.</returns>
    public ImageClassifierBuilder WithLogger(ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _loggerFactory = loggerFactory;
        return this;
    }

    private ImageClassifierBuilder WithLinearHead(string method, Func<LinearHeadOptions, LinearHeadOptions> change) =>
        Options.Head is LinearHeadOptions linear
            ? WithOptions(Options with { Head = change(linear) })
            : throw new InvalidOperationException($"{method} sets the linear head's L2 weight, its search or its iterations, but the head is {Options.Head.Kind}, which has a fixed ridge weight. Use HeadKind.Linear (WithHead(HeadKind.Linear)) first, or leave the setting out.");

    /// <summary>Validates the data, computes the backbone's features and trains the final layer.</summary>
    /// <param name="progress">Receives progress (phase, images done of total, elapsed, ETA); may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels within one image.</param>
    /// <returns>The trained model, with its <see cref="ImageClassifierModel.TrainingReport"/>.</returns>
    /// <exception cref="InvalidOperationException">No data source was chosen (call <see cref="FromFolder"/>, <see cref="FromImages"/> or <see cref="FromCsv"/>).</exception>
    /// <exception cref="FileNotFoundException">The CSV file given to <see cref="FromCsv"/> does not exist.</exception>
    /// <exception cref="ArgumentException">An option is out of range, both a validation folder and a validation list are set, or <see cref="ImageClassifierOptions.UnknownPrecisionTarget"/> is set without a validation split, folder or list.</exception>
    /// <exception cref="DirectoryNotFoundException">The dataset or validation folder does not exist; the message names its absolute path.</exception>
    /// <exception cref="InvalidDatasetException">The data is unusable (fewer than two classes, a class without usable images, bad images in strict mode, or no usable validation image when a precision target is set); every problem is listed.</exception>
    /// <exception cref="BackboneNotFoundException">The backbone's files are not installed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<ImageClassifierModel> TrainAsync(IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var source = _source ?? throw new InvalidOperationException("Choose the data first: call FromFolder(path), FromImages(list) or FromCsv(path).");
        var options = Options;
        options.Validate(); // Thrown here, before any work, not inside the task.
        return TrainCoreAsync(source, options, _loggerFactory.CreateLogger("PretrainedKit.Training"), progress, cancellationToken);
    }

    private static async Task<ImageClassifierModel> TrainCoreAsync(Func<FolderScan> source, ImageClassifierOptions options, ILogger logger, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var result = await TrainingRun.RunAsync(source, options, logger, progress, cancellationToken).ConfigureAwait(false);
        return new ImageClassifierModel(result.Definition, result.Extractor, result.Report, logger);
    }

    /// <summary>
    /// Computes into the feature cache the features that <see cref="TrainAsync"/> with these options will need, for one
    /// shard of the images, without training: run it with shards 0 to <paramref name="shardCount"/> - 1 in as many processes
    /// or machines sharing one cache folder (for example a Kubernetes Indexed Job or a Slurm job array; see
    /// docs/distributed-featurization.md), then train with the same options on 100 % cache hits.
    /// </summary>
    /// <remarks>
    /// An image's shard comes from its content (SHA-256), so every process agrees whatever the path it sees; each process
    /// reads every image once to place it, and the images of its shard a second time to featurise them. Training images
    /// get every view training may ask of them (its augmentation views and, since any of them may fall in the validation
    /// split, the test-time views); the validation folder's images get the test-time views. Files that cannot be read are
    /// reported by shard 0; images that cannot be decoded by their own shard.
    /// </remarks>
    /// <param name="shardIndex">This process's shard, from 0.</param>
    /// <param name="shardCount">How many shards (processes) share the work; at least 1.</param>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops within the images in flight; what was written stays in the cache.</param>
    /// <returns>What this shard computed.</returns>
    /// <exception cref="InvalidOperationException">No data source was chosen, or the feature cache is disabled.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="shardCount"/> is below 1, or <paramref name="shardIndex"/> is not within 0 to <paramref name="shardCount"/> - 1.</exception>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <exception cref="DirectoryNotFoundException">The dataset or validation folder does not exist.</exception>
    /// <exception cref="BackboneNotFoundException">The backbone's files are not installed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<FeatureShardReport> CacheFeaturesAsync(int shardIndex = 0, int shardCount = 1, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var source = _source ?? throw new InvalidOperationException("Choose the data first: call FromFolder(path) or FromImages(list).");
        ArgumentOutOfRangeException.ThrowIfLessThan(shardCount, 1);
        if (shardIndex < 0 || shardIndex >= shardCount)
        {
            throw new ArgumentOutOfRangeException(nameof(shardIndex), shardIndex, $"The shard index must be from 0 to {shardCount - 1} for {shardCount} shards.");
        }

        var options = Options;
        options.Validate();
        if (!options.FeatureCache.Enabled)
        {
            throw new InvalidOperationException("CacheFeaturesAsync writes to the feature cache, which is disabled: enable it (WithFeatureCacheDirectory(dir) or WithFeatureCache(FeatureCacheOptions.Default)).");
        }

        return FeatureShard.RunAsync(source, options, shardIndex, shardCount, _loggerFactory.CreateLogger("PretrainedKit.Training"), progress, cancellationToken);
    }

    /// <summary>
    /// Tells what is wrong with the data before anyone trusts a number: likely label errors (confident learning on
    /// out-of-fold probabilities from the head training would fit), exact and near duplicates, the same image under two
    /// labels, outliers, and, when a validation folder or list is set (<see cref="WithValidationFolder"/>,
    /// <see cref="WithValidationImages"/>), its images that are also training images (leakage). Uses the feature cache;
    /// moves and deletes nothing. Every labelled image is inspected (no validation split is made).
    /// </summary>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops within the images in flight.</param>
    /// <returns>The findings, each kind most certain first; images that could not be read are in <see cref="DataInspectionReport.Skipped"/>.</returns>
    /// <exception cref="InvalidOperationException">No data source was chosen.</exception>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <exception cref="DirectoryNotFoundException">The dataset or validation folder does not exist.</exception>
    /// <exception cref="InvalidDatasetException">Fewer than two classes, or an empty class folder.</exception>
    /// <exception cref="BackboneNotFoundException">The backbone's files are not installed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<DataInspectionReport> InspectAsync(IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var source = _source ?? throw new InvalidOperationException("Choose the data first: call FromFolder(path), FromImages(list) or FromCsv(path).");
        var options = Options;
        options.Validate();
        var test = options.ValidationFolder is { } folder ? DatasetScanner.ScanFolder(folder)
            : options.ValidationImages is { } list ? DatasetScanner.FromList(list)
            : null;
        return TrainingRun.InspectAsync(source, test, options, _loggerFactory.CreateLogger("PretrainedKit.Inspection"), progress, cancellationToken);
    }

    /// <summary>Trains synchronously; see <see cref="TrainAsync"/>.</summary>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels within one image.</param>
    /// <returns>The trained model.</returns>
    /// <exception cref="InvalidOperationException">No data source was chosen.</exception>
    /// <exception cref="DirectoryNotFoundException">The dataset or validation folder does not exist.</exception>
    /// <exception cref="InvalidDatasetException">The data is unusable; every problem is listed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public ImageClassifierModel Train(IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        TrainAsync(progress, cancellationToken).GetAwaiter().GetResult();
}
