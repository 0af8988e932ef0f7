namespace PretrainedKit;

/// <summary>A class and its probability.</summary>
/// <param name="Label">The class name.</param>
/// <param name="Probability">The probability, 0 to 1.</param>
public readonly record struct LabelProbability(string Label, float Probability);

/// <summary>The prediction for one image.</summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record Prediction
{
    /// <summary>Gets the image's path, or <see langword="null"/> when it came from a stream or bytes.</summary>
    public string? Path { get; init; }

    /// <summary>Gets the most probable classes, most probable first (ties in class order).</summary>
    public required IReadOnlyList<LabelProbability> TopK { get; init; }

    /// <summary>Gets the probability of every class, in the model's class order; they sum to 1.</summary>
    public required IReadOnlyList<float> Probabilities { get; init; }

    /// <summary>Gets the most probable class (also when <see cref="IsUnknown"/>: it is then the best guess, not an answer).</summary>
    public string Label => TopK[0].Label;

    /// <summary>Gets the probability of <see cref="Label"/>.</summary>
    public float Probability => TopK[0].Probability;

    /// <summary>
    /// Gets the threshold below which the prediction is "unknown", or <see langword="null"/> for never. It is the model's
    /// <see cref="ImageClassifierModel.UnknownThreshold"/>; to apply another one, copy the prediction:
    /// <c>prediction with { UnknownThreshold = 0.9f }</c>.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public float? UnknownThreshold { get; init; }

    /// <summary>
    /// Gets a value indicating whether the model is not confident enough to answer: <see cref="Probability"/> is below
    /// <see cref="UnknownThreshold"/>. When it is <see langword="true"/>, do not trust <see cref="Label"/>.
    /// </summary>
    public bool IsUnknown => UnknownThreshold is { } threshold && Probability < threshold;
}
