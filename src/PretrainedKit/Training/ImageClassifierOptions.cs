using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Imaging;

namespace PretrainedKit.Training;

/// <summary>How classes are weighted when the final layer is trained.</summary>
public enum ClassWeighting
{
    /// <summary>Each image weighs <c>n / (classes * n_class)</c>, so every class counts the same however many images it has.</summary>
    Balanced = 0,

    /// <summary>Every image weighs 1; large classes dominate.</summary>
    None = 1,
}

/// <summary>
/// Everything that decides how a classifier is trained. Each fluent method of <see cref="ImageClassifierBuilder"/> is a
/// shortcut for <c>options with { ... }</c>; a whole options object can be passed at once with
/// <see cref="ImageClassifierBuilder.WithOptions"/>.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record ImageClassifierOptions
{
    /// <summary>The default fraction of each class held out for validation.</summary>
    public const double DefaultValidationFraction = 0.2;

    /// <summary>Classes with fewer images than this get a warning in the report and the log.</summary>
    public const int FewImagesWarningThreshold = 5;

    /// <summary>With fewer validation images than this, no temperature is fitted (T stays 1) and the report says why.</summary>
    public const int MinimumCalibrationImages = 20;

    /// <summary>Gets the pretrained backbone.</summary>
    /// <value>The default is <see cref="KnownBackbones.ResNet18"/>.</value>
    public Backbone Backbone { get; init; } = KnownBackbones.ResNet18;

    /// <summary>Gets which backbone activations become features.</summary>
    /// <value>The default is <see cref="Backbones.FeatureLayout.Pooled"/> (the backbone's own 512 pooled values).</value>
    public FeatureLayout FeatureLayout { get; init; } = FeatureLayout.Pooled;

    /// <summary>Gets how images are decoded and normalised (the same at training and prediction time).</summary>
    /// <value>The default is <see cref="ImagePreprocessingOptions.Default"/>.</value>
    public ImagePreprocessingOptions Image { get; init; } = ImagePreprocessingOptions.Default;

    /// <summary>Gets the seed for the split and the trainer: the same seed and data give the same model.</summary>
    /// <value>The default is 1.</value>
    public int Seed { get; init; } = 1;

    /// <summary>Gets the fraction of each class held out for validation when no validation folder is given; 0 disables validation.</summary>
    /// <value>The default is 0.2.</value>
    public double ValidationFraction { get; init; } = DefaultValidationFraction;

    /// <summary>Gets a folder (one sub-folder per class) used for validation instead of a split, or <see langword="null"/>.</summary>
    /// <value>The default is <see langword="null"/>: split the training data.</value>
    public string? ValidationFolder { get; init; }

    /// <summary>Gets a value indicating whether any bad image fails training (naming every bad file at once) instead of being skipped.</summary>
    /// <value>The default is <see langword="false"/>: bad images are skipped, listed in the report and logged as warnings.</value>
    public bool Strict { get; init; }

    /// <summary>
    /// Gets the L2 regularisation weight of the final layer. The features are standardised first, and ML.NET adds the
    /// penalty to the sum (not the mean) of the example losses, so larger datasets are regularised relatively less.
    /// </summary>
    /// <value>The default is 10 (best log-loss on the bundled Fashion-MNIST subset among 0.01 to 100).</value>
    public float L2Regularization { get; init; } = 10f;

    /// <summary>Gets the L1 regularisation weight of the final layer.</summary>
    /// <value>The default is 0: ML.NET's default of 1 zeroes useful features and measurably costs accuracy here.</value>
    public float L1Regularization { get; init; }

    /// <summary>Gets the maximum number of L-BFGS iterations.</summary>
    /// <value>The default is 200.</value>
    public int MaximumIterations { get; init; } = 200;

    /// <summary>Gets the extra views of each training image that join the training set.</summary>
    /// <value>The default is <see cref="TrainingAugmentation.None"/>: each view costs one more backbone run per image.</value>
    public TrainingAugmentation Augmentation { get; init; } = TrainingAugmentation.None;

    /// <summary>Gets the views averaged at prediction time (saved with the model; also used on the validation images).</summary>
    /// <value>The default is <see cref="TestTimeAugmentation.None"/>: each view costs one more backbone run per prediction.</value>
    public TestTimeAugmentation TestTimeAugmentation { get; init; } = TestTimeAugmentation.None;

    /// <summary>Gets how feature vectors are scaled before the final layer (saved with the model).</summary>
    /// <value>The default is <see cref="FeatureNormalization.Standardize"/>.</value>
    public FeatureNormalization Normalization { get; init; } = FeatureNormalization.Standardize;

    /// <summary>
    /// Gets a value indicating whether <see cref="L2Regularization"/> is chosen by cross-validation on the training
    /// features (no extra backbone runs) instead of taken as given. See <see cref="RegularizationSearch"/> for how the
    /// choice stays stable with few images.
    /// </summary>
    /// <value>The default is <see langword="false"/>: <see cref="L2Regularization"/> is used as given.</value>
    public bool AutoRegularization { get; init; }

    /// <summary>
    /// Gets what is trained on the features: a final layer on them, or kernel ridge regression. The L1/L2 weights,
    /// <see cref="AutoRegularization"/> and the iteration limit belong to the linear head; the kernel head has a fixed
    /// ridge weight.
    /// </summary>
    /// <value>The default is <see cref="HeadKind.Linear"/>: a retrained final layer.</value>
    public HeadKind Head { get; init; } = HeadKind.Linear;

    /// <summary>Gets how classes are weighted.</summary>
    /// <value>The default is <see cref="ClassWeighting.Balanced"/>.</value>
    public ClassWeighting ClassWeighting { get; init; } = ClassWeighting.Balanced;

    /// <summary>Gets where computed features are cached on disk, so that retraining on the same images skips the backbone.</summary>
    /// <value>The default is <see cref="FeatureCacheOptions.Default"/>: enabled, per-user folder, 1 GiB.</value>
    public FeatureCacheOptions FeatureCache { get; init; } = FeatureCacheOptions.Default;

    /// <summary>
    /// Gets a value indicating whether the probabilities are calibrated: a temperature T is fitted on the validation
    /// images (softmax(logits / T), T from 0.05 to 20, minimising their log-loss), so that a prediction made with
    /// probability 0.8 is right about 80% of the time. T never changes which class is on top. It is skipped (T = 1, and
    /// <see cref="CalibrationReport.CalibrationSkippedReason"/> says why) without validation images or with fewer than
    /// <see cref="MinimumCalibrationImages"/>.
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool Calibrate { get; init; } = true;

    /// <summary>
    /// Gets the precision the model's confident answers must reach, from above 0 to 1, or <see langword="null"/>. When
    /// set, training chooses on the validation images (with calibrated probabilities) the lowest top-probability threshold
    /// at which the predictions at or above it are right at least this often; predictions below it are then
    /// <see cref="Prediction.Prediction.IsUnknown"/>. When no threshold reaches the target, the most precise one is taken
    /// and the report warns. Needs validation images: keep <see cref="ValidationFraction"/> above 0 or give a
    /// <see cref="ValidationFolder"/>. The threshold is only as good as the validation images are many; the report says how
    /// many decided it.
    /// </summary>
    /// <value>The default is <see langword="null"/>: never answer "unknown".</value>
    public double? UnknownPrecisionTarget { get; init; }

    /// <summary>Gets the default options.</summary>
    public static ImageClassifierOptions Default { get; } = new();

    /// <summary>Gets the message used when a precision target cannot be met for lack of validation images.</summary>
    internal static string NoValidationForTargetMessage =>
        "An unknown-answer precision target needs validation images to choose the threshold on: keep a validation split above 0 (WithValidationSplit, CLI --validation-split) or give a validation folder (WithValidationFolder), or remove the target.";

    /// <summary>Checks every value and throws on the first that is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    /// <exception cref="ArgumentNullException">A required value is missing.</exception>
    /// <exception cref="ArgumentException"><see cref="UnknownPrecisionTarget"/> is set but there are no validation images to choose the threshold on.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Backbone);
        ArgumentNullException.ThrowIfNull(Image);
        Image.Validate();
        ArgumentNullException.ThrowIfNull(FeatureCache);
        FeatureCache.Validate();
        if (double.IsNaN(ValidationFraction) || ValidationFraction < 0 || ValidationFraction >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "The validation fraction must be at least 0 and below 1.");
        }

        if (!(L2Regularization >= 0) || float.IsInfinity(L2Regularization))
        {
            throw new ArgumentOutOfRangeException(nameof(L2Regularization), L2Regularization, "L2 regularisation must be a finite value of at least 0.");
        }

        if (!(L1Regularization >= 0) || float.IsInfinity(L1Regularization))
        {
            throw new ArgumentOutOfRangeException(nameof(L1Regularization), L1Regularization, "L1 regularisation must be a finite value of at least 0.");
        }

        if (MaximumIterations < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaximumIterations), MaximumIterations, "At least one iteration is needed.");
        }

        if (!Enum.IsDefined(ClassWeighting))
        {
            throw new ArgumentOutOfRangeException(nameof(ClassWeighting), ClassWeighting, "Unknown class weighting.");
        }

        if ((Augmentation & ~(TrainingAugmentation.Mirror | TrainingAugmentation.Crops)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Augmentation), Augmentation, "Unknown training augmentation.");
        }

        if (!Enum.IsDefined(TestTimeAugmentation))
        {
            throw new ArgumentOutOfRangeException(nameof(TestTimeAugmentation), TestTimeAugmentation, "Unknown test-time augmentation.");
        }

        if (!Enum.IsDefined(Head))
        {
            throw new ArgumentOutOfRangeException(nameof(Head), Head, "Unknown head kind.");
        }

        if (Head == HeadKind.Kernel && AutoRegularization)
        {
            throw new ArgumentOutOfRangeException(nameof(AutoRegularization), AutoRegularization, "Automatic regularisation chooses the linear head's L2 weight; the kernel head has a fixed ridge weight. Turn automatic regularisation off, or use HeadKind.Linear.");
        }

        if (!Enum.IsDefined(Normalization))
        {
            throw new ArgumentOutOfRangeException(nameof(Normalization), Normalization, "Unknown feature normalisation.");
        }

        if (UnknownPrecisionTarget is { } target)
        {
            if (!(target > 0 && target <= 1))
            {
                throw new ArgumentOutOfRangeException(nameof(UnknownPrecisionTarget), target, "The unknown-answer precision target must be above 0 and at most 1, for example 0.95.");
            }

            if (ValidationFraction == 0 && ValidationFolder is null)
            {
                throw new ArgumentException(NoValidationForTargetMessage, nameof(UnknownPrecisionTarget));
            }
        }
    }
}
