namespace PretrainedKit.Prediction;

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

    /// <summary>Gets the most probable class.</summary>
    public string Label => TopK[0].Label;

    /// <summary>Gets the probability of <see cref="Label"/>.</summary>
    public float Probability => TopK[0].Probability;
}
