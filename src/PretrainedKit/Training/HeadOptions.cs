using PretrainedKit.Models;

namespace PretrainedKit.Training;

/// <summary>
/// The settings of the head trained on the features: one record per kind of head, so that a setting that belongs to
/// one kind cannot be given to another. Use <see cref="LinearHeadOptions"/> or <see cref="KernelHeadOptions"/>.
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
/// Kernel ridge regression with a Gaussian kernel on the standardised features (gamma = 1 / (2 x feature size), ridge
/// weight <see cref="Ridge"/>): every training view becomes a centre that the image is compared with. It has no
/// settings to tune; the L1/L2 weights, their search and the iteration limit belong to <see cref="LinearHeadOptions"/>.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record KernelHeadOptions : HeadOptions
{
    /// <summary>The ridge weight lambda, fixed (chosen on held-out Fashion-MNIST training images, never the test set; see bench/PretrainedKit.Experiments).</summary>
    public const double Ridge = 0.01;

    /// <summary>Gets the settings.</summary>
    public static KernelHeadOptions Default { get; } = new();

    /// <inheritdoc/>
    public override HeadKind Kind => HeadKind.Kernel;

    /// <inheritdoc/>
    internal override IEnumerable<ArgumentException> Problems() => [];
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
