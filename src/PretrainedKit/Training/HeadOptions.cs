using PretrainedKit.Models;

namespace PretrainedKit.Training;

/// <summary>
/// The settings of the head trained on the features: one record per kind of head, so that a setting that belongs to
/// one kind cannot be given to another. Use <see cref="LinearHeadOptions"/>, <see cref="RidgeHeadOptions"/> or <see cref="KernelHeadOptions"/>.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public abstract record HeadOptions
{
    private protected HeadOptions()
    {
    }

    /// <summary>Gets which kind of head these settings train.</summary>
    public abstract HeadKind Kind { get; }

    /// <summary>Gets the default settings of a kind of head.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns><see cref="LinearHeadOptions.Default"/> or <see cref="KernelHeadOptions.Default"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The kind is not known.</exception>
    public static HeadOptions For(HeadKind kind) => kind switch
    {
        HeadKind.Linear => LinearHeadOptions.Default,
        HeadKind.Kernel => KernelHeadOptions.Default,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown head kind."),
    };

    /// <summary>Lists every out-of-range setting.</summary>
    /// <returns>The problems.</returns>
    internal abstract IEnumerable<ArgumentException> Problems();

    /// <summary>The checks shared by the closed-form heads: a finite ridge weight above 0 and at least two centres.</summary>
    private protected static IEnumerable<ArgumentException> RidgeProblems(double ridge, string ridgeName, int maxCentres, string maxCentresName, string head)
    {
        if (!(ridge > 0) || double.IsInfinity(ridge))
        {
            yield return new ArgumentOutOfRangeException(ridgeName, ridge, $"The {head} head's ridge weight must be a finite value above 0.");
        }

        if (maxCentres < 2)
        {
            yield return new ArgumentOutOfRangeException(maxCentresName, maxCentres, $"The {head} head needs at least 2 centres.");
        }
    }
}

/// <summary>
/// A retrained final layer: softmax regression (ML.NET L-BFGS maximum entropy) on the scaled features. The default head.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record LinearHeadOptions : HeadOptions
{
    /// <summary>Gets the default settings.</summary>
    public static LinearHeadOptions Default { get; } = new();

    /// <inheritdoc/>
    public override HeadKind Kind => HeadKind.Linear;

    /// <summary>
    /// Gets the L2 regularisation weight. The features are standardised first, and ML.NET adds the penalty to the sum
    /// (not the mean) of the example losses, so larger datasets are regularised relatively less.
    /// </summary>
    /// <value>The default is 10 (best log-loss on the bundled Fashion-MNIST subset among 0.01 to 100).</value>
    public float L2Regularization { get; init; } = 10f;

    /// <summary>Gets the L1 regularisation weight.</summary>
    /// <value>The default is 0: ML.NET's default of 1 zeroes useful features and measurably costs accuracy here.</value>
    public float L1Regularization { get; init; }

    /// <summary>Gets the maximum number of L-BFGS iterations.</summary>
    /// <value>The default is 200.</value>
    public int MaximumIterations { get; init; } = 200;

    /// <summary>
    /// Gets a value indicating whether <see cref="L2Regularization"/> is chosen by cross-validation on the training
    /// features (no extra backbone runs) instead of taken as given; see <see cref="RegularizationSearch"/>.
    /// </summary>
    /// <value>The default is <see langword="false"/>: <see cref="L2Regularization"/> is used as given.</value>
    public bool AutoRegularization { get; init; }

    /// <inheritdoc/>
    internal override IEnumerable<ArgumentException> Problems()
    {
        if (!(L2Regularization >= 0) || float.IsInfinity(L2Regularization))
        {
            yield return new ArgumentOutOfRangeException(nameof(L2Regularization), L2Regularization, "L2 regularisation must be a finite value of at least 0.");
        }

        if (!(L1Regularization >= 0) || float.IsInfinity(L1Regularization))
        {
            yield return new ArgumentOutOfRangeException(nameof(L1Regularization), L1Regularization, "L1 regularisation must be a finite value of at least 0.");
        }

        if (MaximumIterations < 1)
        {
            yield return new ArgumentOutOfRangeException(nameof(MaximumIterations), MaximumIterations, "At least one iteration is needed.");
        }
    }
}

/// <summary>
/// Kernel ridge regression with a Gaussian kernel on the standardised features (gamma = 1 / (2 x feature size)) onto
/// one-hot class targets. Up to <see cref="MaxCentres"/> training views each become a centre that the image is compared
/// with; with more views, a class-stratified, seeded subset of <see cref="MaxCentres"/> views are the centres and the
/// weights are fitted on all views (Nystroem subset of regressors), so that the model file and each prediction stay
/// bounded and training grows linearly with the views. Up to <see cref="FullPrecisionCentres"/> centres are kept as
/// 32-bit floats; with more, every centre is rounded to a 16-bit float before the fit (the fit uses the rounded
/// centres, so the saved model predicts exactly what was trained) and the model file holds 2 bytes per value: ResNet18
/// multi-stage grid features take at most 1,600 x 4,864 x 2 bytes, 15.6 MB, as 800 full-precision centres did. The L1/L2 weights, their search and the iteration limit belong to <see cref="LinearHeadOptions"/>.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record KernelHeadOptions : HeadOptions
{
    /// <summary>The default ridge weight lambda (chosen on held-out Fashion-MNIST training images, never the test set; see bench/PretrainedKit.Experiments).</summary>
    public const double DefaultRidge = 0.01;

    /// <summary>The default most centres: 1,600.</summary>
    public const int DefaultMaxCentres = 1600;

    /// <summary>The most centres kept as 32-bit floats (800); with more, centres are rounded to 16-bit floats.</summary>
    public const int FullPrecisionCentres = KernelHeadDefinition.FullPrecisionCentres;

    /// <summary>Gets the default settings.</summary>
    public static KernelHeadOptions Default { get; } = new();

    /// <inheritdoc/>
    public override HeadKind Kind => HeadKind.Kernel;

    /// <summary>Gets the ridge weight lambda added to the kernel matrix (divided by each view's class weight).</summary>
    /// <value>The default is <see cref="DefaultRidge"/> (0.01). Automatic lever choice tries 0.01, 0.1 and 1.</value>
    public double Ridge { get; init; } = DefaultRidge;

    /// <summary>
    /// Gets the most training views kept as centres (the model file holds each one: 4 bytes x feature size up to
    /// <see cref="FullPrecisionCentres"/> centres, 2 bytes x feature size above).
    /// </summary>
    /// <value>The default is <see cref="DefaultMaxCentres"/> (1,600).</value>
    public int MaxCentres { get; init; } = DefaultMaxCentres;

    /// <inheritdoc/>
    internal override IEnumerable<ArgumentException> Problems() => RidgeProblems(Ridge, nameof(Ridge), MaxCentres, nameof(MaxCentres), "kernel");
}

/// <summary>
/// A retrained final layer fitted in closed form: ridge regression of one-hot class targets on the standardised features
/// (with a bias), lambda = <see cref="Ridge"/> x feature size. It stores the same linear layer as
/// <see cref="LinearHeadOptions"/> (so prediction, calibration and ONNX export are the same) but is fitted by one
/// Cholesky factorisation instead of iterations, which is what lets automatic lever choice cross-validate many
/// candidates in seconds; it is the linear candidate of that choice. Above <see cref="MaxCentres"/> training views the
/// fit uses a seeded subset of the views as its basis (as <see cref="KernelHeadOptions"/> does).
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record RidgeHeadOptions : HeadOptions
{
    /// <summary>Gets the default settings.</summary>
    public static RidgeHeadOptions Default { get; } = new();

    /// <inheritdoc/>
    public override HeadKind Kind => HeadKind.Linear;

    /// <summary>Gets the ridge weight, relative to the feature size (lambda = this x feature size, about one view's squared length).</summary>
    /// <value>The default is 1. Automatic lever choice tries 0.1, 1 and 10.</value>
    public double Ridge { get; init; } = 1;

    /// <summary>The default most training views used as the basis of the fit: 800.</summary>
    public const int DefaultMaxCentres = 800;

    /// <summary>Gets the most training views used as the basis of the fit.</summary>
    /// <value>The default is <see cref="DefaultMaxCentres"/> (800).</value>
    public int MaxCentres { get; init; } = DefaultMaxCentres;

    /// <inheritdoc/>
    internal override IEnumerable<ArgumentException> Problems() => RidgeProblems(Ridge, nameof(Ridge), MaxCentres, nameof(MaxCentres), "ridge");
}

/// <summary>
/// Thrown by <see cref="ImageClassifierOptions.Validate"/> when more than one setting is out of range: every problem is
/// listed in <see cref="Problems"/> and in the message. A single problem is thrown as itself
/// (<see cref="ArgumentOutOfRangeException"/>, <see cref="ArgumentNullException"/> or <see cref="ArgumentException"/>).
/// </summary>
public sealed class InvalidOptionsException : ArgumentException
{
    /// <summary>Initializes a new instance of the <see cref="InvalidOptionsException"/> class.</summary>
    public InvalidOptionsException()
        : this([])
    {
    }

    /// <summary>Initializes a new instance of the <see cref="InvalidOptionsException"/> class.</summary>
    /// <param name="message">The message.</param>
    public InvalidOptionsException(string message)
        : base(message)
    {
        Problems = [];
    }

    /// <summary>Initializes a new instance of the <see cref="InvalidOptionsException"/> class.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public InvalidOptionsException(string message, Exception innerException)
        : base(message, innerException)
    {
        Problems = [];
    }

    /// <summary>Initializes a new instance of the <see cref="InvalidOptionsException"/> class.</summary>
    /// <param name="problems">Every setting that is out of range.</param>
    public InvalidOptionsException(IReadOnlyList<ArgumentException> problems)
        : base($"{problems.Count} options are invalid:{string.Concat(problems.Select(p => Environment.NewLine + "- " + p.Message))}")
    {
        Problems = problems;
    }

    /// <summary>Gets every setting that is out of range.</summary>
    public IReadOnlyList<ArgumentException> Problems { get; }
}
