namespace PretrainedKit.Training;

/// <summary>
/// The retrained final layer: optionally divide the features by their Euclidean length, standardise them, then softmax(W z + b). Stored as plain numbers, so that a model
/// file never needs to deserialise code or types.
/// </summary>
/// <threadsafety>Immutable; <c>Probabilities</c> is safe from many threads at once.</threadsafety>
internal sealed class LinearHead
{
    public LinearHead(float[] mean, float[] scale, float[][] weights, float[] biases)
    {
        if (mean.Length != scale.Length || weights.Length != biases.Length || weights.Any(w => w.Length != mean.Length))
        {
            throw new ArgumentException("The head's dimensions do not agree.");
        }

        Mean = mean;
        Scale = scale;
        Weights = weights;
        Biases = biases;
    }

    /// <summary>Gets the feature means subtracted before the linear layer.</summary>
    public float[] Mean { get; }

    /// <summary>Gets the factors (1 / standard deviation) applied after subtracting the mean.</summary>
    public float[] Scale { get; }

    /// <summary>Gets the weights, one row per class.</summary>
    public float[][] Weights { get; }

    /// <summary>Gets the biases, one per class.</summary>
    public float[] Biases { get; }

    /// <summary>Gets a value indicating whether each feature vector is divided by its Euclidean length before standardising.</summary>
    public bool NormalizeL2 { get; init; }

    public int FeatureSize => Mean.Length;

    public int ClassCount => Biases.Length;

    /// <summary>Returns <paramref name="features"/> divided by its Euclidean length (unchanged when the length is 0).</summary>
    public static float[] L2Normalized(ReadOnlySpan<float> features)
    {
        double norm = 0;
        foreach (var v in features)
        {
            norm += (double)v * v;
        }

        var result = features.ToArray();
        if (norm > 0)
        {
            var inverse = (float)(1 / Math.Sqrt(norm));
            for (var j = 0; j < result.Length; j++)
            {
                result[j] *= inverse;
            }
        }

        return result;
    }

    /// <summary>Normalises and standardises a raw feature vector the same way the trainer saw it.</summary>
    public float[] Standardize(ReadOnlySpan<float> features)
    {
        ReadOnlySpan<float> source = NormalizeL2 ? L2Normalized(features) : features;
        var z = new float[FeatureSize];
        for (var j = 0; j < z.Length; j++)
        {
            z[j] = (source[j] - Mean[j]) * Scale[j];
        }

        return z;
    }

    /// <summary>Averages the class probabilities of several views of one image (test-time augmentation).</summary>
    public float[] Probabilities(IReadOnlyList<float[]> views)
    {
        if (views.Count == 1)
        {
            return Probabilities(views[0]);
        }

        var sum = new double[ClassCount];
        foreach (var view in views)
        {
            var p = Probabilities(view);
            for (var c = 0; c < sum.Length; c++)
            {
                sum[c] += p[c];
            }
        }

        return sum.Select(v => (float)(v / views.Count)).ToArray();
    }

    /// <summary>Computes class probabilities that sum to 1.</summary>
    public float[] Probabilities(ReadOnlySpan<float> features)
    {
        var z = Standardize(features);
        var logits = new double[ClassCount];
        var max = double.NegativeInfinity;
        for (var c = 0; c < logits.Length; c++)
        {
            double sum = Biases[c];
            var w = Weights[c];
            for (var j = 0; j < z.Length; j++)
            {
                sum += (double)w[j] * z[j];
            }

            logits[c] = sum;
            max = Math.Max(max, sum);
        }

        double total = 0;
        for (var c = 0; c < logits.Length; c++)
        {
            logits[c] = Math.Exp(logits[c] - max);
            total += logits[c];
        }

        var probabilities = new float[ClassCount];
        for (var c = 0; c < probabilities.Length; c++)
        {
            probabilities[c] = (float)(logits[c] / total);
        }

        return probabilities;
    }
}
