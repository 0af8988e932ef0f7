namespace PretrainedKit.Evaluation;

/// <summary>One image of an evaluation: its true class and the probabilities the model gave it.</summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record EvaluatedImage
{
    /// <summary>The smallest probability used for <see cref="Loss"/>, as in <see cref="ClassificationMetrics.LogLoss"/>.</summary>
    public const double MinimumProbability = 1e-15;

    /// <summary>Gets the absolute path of the image file.</summary>
    public required string Path { get; init; }

    /// <summary>Gets the true class (the name of the image's class folder).</summary>
    public required string Label { get; init; }

    /// <summary>Gets the most probable class (ties go to the class that comes first in the model's class list).</summary>
    public required string PredictedLabel { get; init; }

    /// <summary>Gets the probability of every class, in the model's class order (<see cref="ClassificationMetrics.Classes"/>).</summary>
    public required IReadOnlyList<float> Probabilities { get; init; }

    /// <summary>Gets the probability the model gave the true class.</summary>
    public required float LabelProbability { get; init; }

    /// <summary>Gets the probability of the predicted class.</summary>
    public required float PredictedProbability { get; init; }

    /// <summary>Gets whether the prediction is right.</summary>
    public bool IsCorrect => string.Equals(Label, PredictedLabel, StringComparison.Ordinal);

    /// <summary>Gets the log-loss of this image: <c>-ln(p(true class))</c>, with p clipped at <see cref="MinimumProbability"/>. Higher is worse.</summary>
    public double Loss => -Math.Log(Math.Max(LabelProbability, MinimumProbability));

    /// <summary>Makes the result of one image from its true class index and probabilities.</summary>
    /// <param name="path">The image file.</param>
    /// <param name="classes">The class names, in the order of <paramref name="probabilities"/>.</param>
    /// <param name="actual">The index of the true class.</param>
    /// <param name="probabilities">The predicted probabilities (copied).</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentException">The probabilities do not have one value per class.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="actual"/> is not a class index.</exception>
    public static EvaluatedImage Create(string path, IReadOnlyList<string> classes, int actual, IReadOnlyList<float> probabilities)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(classes);
        ArgumentNullException.ThrowIfNull(probabilities);
        if (probabilities.Count != classes.Count)
        {
            throw new ArgumentException($"Expected {classes.Count} probabilities (one per class), got {probabilities.Count}.", nameof(probabilities));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(actual);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(actual, classes.Count);
        var best = 0;
        for (var c = 1; c < probabilities.Count; c++)
        {
            if (probabilities[c] > probabilities[best])
            {
                best = c;
            }
        }

        return new EvaluatedImage
        {
            Path = path,
            Label = classes[actual],
            PredictedLabel = classes[best],
            Probabilities = probabilities.ToArray(),
            LabelProbability = probabilities[actual],
            PredictedProbability = probabilities[best],
        };
    }
}
