using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Imaging;
using PretrainedKit.Models;

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
    private AutoLevers _explicit;
    private FeatureLayout _featureLayout = FeatureLayout.Pooled;
    private TrainingAugmentation _augmentation = TrainingAugmentation.None;
    private TestTimeAugmentation _testTimeAugmentation = TestTimeAugmentation.None;
    private FeatureNormalization _normalization = FeatureNormalization.Standardize;
    private HeadOptions _head = LinearHeadOptions.Default;

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
    /// <value>The default is <see cref="Backbones.FeatureLayout.Pooled"/> (the backbone's own 512 pooled values). Setting it (even to this value) keeps it fixed when <see cref="Auto"/> chooses the other levers; left unset, automatic lever choice picks it.</value>
    public FeatureLayout FeatureLayout
    {
        get => _featureLayout;
        init
        {
            _featureLayout = value;
            _explicit |= AutoLevers.FeatureLayout;
        }
    }

    /// <summary>Gets the arithmetic the backbone runs in, saved with the model (and part of its feature-cache key).</summary>
    /// <value>The default is <see cref="Backbones.Precision.Float32"/>. <see cref="Backbones.Precision.Int8"/> calibrates an
    /// integer backbone on up to 300 of the training images before featurising; it is an option, never chosen by
    /// <see cref="Auto"/>: whether it is faster depends on the CPU (see the README's measurements).</value>
    public Precision Precision { get; init; } = Precision.Float32;

    /// <summary>Gets how images are decoded and normalised (the same at training and prediction time).</summary>
    /// <value>The default is <see cref="ImagePreprocessingOptions.Default"/>.</value>
    public ImagePreprocessingOptions Image { get; init; } = ImagePreprocessingOptions.Default;

    /// <summary>Gets the seed for the split and the trainer: the same seed and data give the same model.</summary>
    /// <value>The default is 1.</value>
    public int Seed { get; init; } = 1;

    /// <summary>Gets the fraction of each class held out for validation when no validation folder or list is given; 0 disables validation.</summary>
    /// <value>The default is 0.2.</value>
    public double ValidationFraction { get; init; } = DefaultValidationFraction;

    /// <summary>Gets a folder (one sub-folder per class) used for validation instead of a split, or <see langword="null"/>.</summary>
    /// <value>The default is <see langword="null"/>: split the training data.</value>
    public string? ValidationFolder { get; init; }

    /// <summary>
    /// Gets a list of labelled images used for validation instead of a split or a folder, or <see langword="null"/>. Set
    /// at most one of <see cref="ValidationFolder"/> and this; either one replaces the split (<see cref="ValidationFraction"/>
    /// is then not used). The builder's <see cref="ImageClassifierBuilder.WithValidationImages"/> copies the list.
    /// </summary>
    /// <value>The default is <see langword="null"/>: split the training data.</value>
    public IReadOnlyList<LabeledImage>? ValidationImages { get; init; }

    /// <summary>Gets a value indicating whether any bad image fails training (naming every bad file at once) instead of being skipped.</summary>
    /// <value>The default is <see langword="false"/>: bad images are skipped, listed in the report and logged as warnings.</value>
    public bool Strict { get; init; }

    /// <summary>Gets the extra views of each training image that join the training set.</summary>
    /// <value>The default is <see cref="TrainingAugmentation.None"/>: each view costs one more backbone run per image. Setting it (even to this value) keeps it fixed when <see cref="Auto"/> chooses the other levers; left unset, automatic lever choice picks it.</value>
    public TrainingAugmentation Augmentation
    {
        get => _augmentation;
        init
        {
            _augmentation = value;
            _explicit |= AutoLevers.Augmentation;
        }
    }

    /// <summary>Gets the views averaged at prediction time (saved with the model; also used on the validation images).</summary>
    /// <value>The default is <see cref="TestTimeAugmentation.None"/>: each view costs one more backbone run per prediction. Setting it (even to this value) keeps it fixed when <see cref="Auto"/> chooses the other levers; left unset, automatic lever choice picks it.</value>
    public TestTimeAugmentation TestTimeAugmentation
    {
        get => _testTimeAugmentation;
        init
        {
            _testTimeAugmentation = value;
            _explicit |= AutoLevers.TestTimeAugmentation;
        }
    }

    /// <summary>Gets how feature vectors are scaled before the final layer (saved with the model).</summary>
    /// <value>The default is <see cref="FeatureNormalization.Standardize"/>. Setting it (even to this value) keeps it fixed when <see cref="Auto"/> chooses the other levers; left unset, automatic lever choice picks it.</value>
    public FeatureNormalization Normalization
    {
        get => _normalization;
        init
        {
            _normalization = value;
            _explicit |= AutoLevers.Normalization;
        }
    }

    /// <summary>
    /// Gets what is trained on the features and its settings: <see cref="LinearHeadOptions"/> (a final layer) or
    /// <see cref="KernelHeadOptions"/> (kernel ridge regression). Each record holds only the settings of its kind.
    /// </summary>
    /// <value>The default is <see cref="LinearHeadOptions.Default"/>: a retrained final layer, L2 = 10, L1 = 0, 200 iterations. Setting it (even to this value) keeps it fixed when <see cref="Auto"/> chooses the other levers; left unset, automatic lever choice picks it.</value>
    public HeadOptions Head
    {
        get => _head;
        init
        {
            _head = value;
            _explicit |= AutoLevers.Head;
        }
    }

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
    /// <see cref="PretrainedKit.Prediction.IsUnknown"/>. When no threshold reaches the target, the most precise one is taken
    /// and the report warns. Needs validation images: keep <see cref="ValidationFraction"/> above 0 or give a
    /// <see cref="ValidationFolder"/>. The threshold is only as good as the validation images are many; the report says how
    /// many decided it.
    /// </summary>
    /// <value>The default is <see langword="null"/>: never answer "unknown".</value>
    public double? UnknownPrecisionTarget { get; init; }

    /// <summary>
    /// Gets a value indicating whether the accuracy levers that were not set explicitly (<see cref="FeatureLayout"/>,
    /// <see cref="Normalization"/>, <see cref="Augmentation"/>, <see cref="TestTimeAugmentation"/>, <see cref="Head"/>) are
    /// chosen on the training images by cross-validation (<see cref="LeverSearch"/>); the report's
    /// <see cref="TrainingReport.LeverSearch"/> lists every candidate, its score and why the chosen one won. Validation
    /// images never decide. Off: the values of those properties are used as they are (the plain "retrain the final
    /// layer" defaults unless set).
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool Auto { get; init; } = true;

    /// <summary>
    /// Gets a value indicating whether automatic lever choice may not pick test-time augmentation, so that every
    /// prediction costs one backbone run (for latency-bound services). An explicit <see cref="TestTimeAugmentation"/> is
    /// still used as given.
    /// </summary>
    /// <value>The default is <see langword="false"/>: mirror test-time augmentation (two backbone runs per prediction) is a candidate.</value>
    public bool SingleViewPrediction { get; init; }

    /// <summary>
    /// Gets a value indicating whether training also inspects the data (likely label errors, duplicates and leakage
    /// between the training and validation images, outliers) from the features it computed anyway; the findings are in
    /// <see cref="TrainingReport.Inspection"/>. It costs head fits and a similarity search, no backbone runs.
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool InspectData { get; init; } = true;

    /// <summary>Gets the levers set explicitly on these options (through an initialiser or a <c>with</c> expression), which automatic lever choice keeps as given.</summary>
    public AutoLevers ExplicitLevers => _explicit;

    /// <summary>Gets the default options.</summary>
    public static ImageClassifierOptions Default { get; } = new();

    /// <summary>Gets the message used when a precision target cannot be met for lack of validation images.</summary>
    internal static string NoValidationForTargetMessage =>
        "An unknown-answer precision target needs validation images to choose the threshold on: keep a validation split above 0 (WithValidationSplit, CLI --validation-split) or give a validation folder (WithValidationFolder) or list (WithValidationImages), or remove the target.";

    /// <summary>
    /// Checks every value and reports every problem at once: a single problem is thrown as itself, several as one
    /// <see cref="InvalidOptionsException"/> that lists them all.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">One value is out of range.</exception>
    /// <exception cref="ArgumentNullException">One required value is missing.</exception>
    /// <exception cref="ArgumentException"><see cref="UnknownPrecisionTarget"/> is set but there are no validation images to choose the threshold on.</exception>
    /// <exception cref="InvalidOptionsException">Several values are invalid; <see cref="InvalidOptionsException.Problems"/> lists each.</exception>
    public void Validate()
    {
        var problems = Problems();
        if (problems.Count == 1)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(problems[0]);
        }

        if (problems.Count > 1)
        {
            throw new InvalidOptionsException(problems);
        }
    }

    private List<ArgumentException> Problems()
    {
        var problems = new List<ArgumentException>();
        void Check(Action validate)
        {
            try
            {
                validate();
            }
            catch (ArgumentException ex)
            {
                problems.Add(ex);
            }
        }

        if (Backbone is null)
        {
            problems.Add(new ArgumentNullException(nameof(Backbone)));
        }

        if (Image is null)
        {
            problems.Add(new ArgumentNullException(nameof(Image)));
        }
        else
        {
            Check(Image.Validate);
        }

        if (FeatureCache is null)
        {
            problems.Add(new ArgumentNullException(nameof(FeatureCache)));
        }
        else
        {
            Check(FeatureCache.Validate);
        }

        if (Head is null)
        {
            problems.Add(new ArgumentNullException(nameof(Head), "Choose a head: LinearHeadOptions or KernelHeadOptions."));
        }
        else
        {
            problems.AddRange(Head.Problems());
        }

        if (double.IsNaN(ValidationFraction) || ValidationFraction < 0 || ValidationFraction >= 1)
        {
            problems.Add(new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "The validation fraction must be at least 0 and below 1."));
        }

        if (ValidationFolder is not null && ValidationImages is not null)
        {
            problems.Add(new ArgumentException(
                $"Both a validation folder ('{ValidationFolder}') and a list of {ValidationImages.Count} validation images are set; give one. WithValidationFolder and WithValidationImages each clear the other.",
                nameof(ValidationImages)));
        }

        if (ValidationImages is { Count: 0 })
        {
            problems.Add(new ArgumentException("The list of validation images is empty. Give at least one image per class, or leave ValidationImages null to split the training data.", nameof(ValidationImages)));
        }

        if (!Enum.IsDefined(ClassWeighting))
        {
            problems.Add(new ArgumentOutOfRangeException(nameof(ClassWeighting), ClassWeighting, "Unknown class weighting."));
        }

        if ((Augmentation & ~(TrainingAugmentation.Mirror | TrainingAugmentation.Crops)) != 0)
        {
            problems.Add(new ArgumentOutOfRangeException(nameof(Augmentation), Augmentation, "Unknown training augmentation."));
        }

        if (!Enum.IsDefined(TestTimeAugmentation))
        {
            problems.Add(new ArgumentOutOfRangeException(nameof(TestTimeAugmentation), TestTimeAugmentation, "Unknown test-time augmentation."));
        }

        if (!Enum.IsDefined(Normalization))
        {
            problems.Add(new ArgumentOutOfRangeException(nameof(Normalization), Normalization, "Unknown feature normalisation."));
        }

        if (!Enum.IsDefined(Precision))
        {
            problems.Add(new ArgumentOutOfRangeException(nameof(Precision), Precision, "Unknown precision."));
        }

        if (!Enum.IsDefined(FeatureLayout))
        {
            problems.Add(new ArgumentOutOfRangeException(nameof(FeatureLayout), FeatureLayout, "Unknown feature layout."));
        }

        if (UnknownPrecisionTarget is { } target)
        {
            if (!(target > 0 && target <= 1))
            {
                problems.Add(new ArgumentOutOfRangeException(nameof(UnknownPrecisionTarget), target, "The unknown-answer precision target must be above 0 and at most 1, for example 0.95."));
            }
            else if (ValidationFraction == 0 && ValidationFolder is null && ValidationImages is null)
            {
                problems.Add(new ArgumentException(NoValidationForTargetMessage, nameof(UnknownPrecisionTarget)));
            }
        }

        return problems;
    }
}
