namespace PretrainedKit.Training;

/// <summary>
/// The retrained final layer: standardise the features, then softmax((W z + b) / T), where T is the calibration
/// temperature (1 when uncalibrated). Stored as plain numbers, so that a model file never needs to deserialise code or types.
/// </summary>
/// <threadsafety>Immutable; <see cref="Probabilities"/> is safe from many threads at once.</threadsafety>
internal sealed class LinearHead
{
    public LinearHead(float[] mean, float[] scale, float[][] weights, float[] biases, double temperature = 1)
    {
        if (mean.Length != scale.Length || weights.Length != biases.Length || weights.Any(w => w.Length != mean.Length))
        {
            throw new ArgumentException("The head's dimensions do not agree.");
        }

        if (!(temperature > 0) || double.IsInfinity(temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be a finite value above 0.");
        }

        Mean = mean;
        Scale = scale;
        Weights = weights;
        Biases = biases;
        Temperature = temperature;
    }

    /// <summary>Gets the feature means subtracted before the linear layer.</summary>
    public float[] Mean { get; }

    /// <summary>Gets the factors (1 / standard deviation) applied after subtracting the mean.</summary>
    public float[] Scale { get; }

    /// <summary>Gets the weights, one row per class.</summary>
    public float[][] Weights { get; }

    /// <summary>Gets the biases, one per class.</summary>
    public float[] Biases { get; }

    /// <summary>Gets the calibration temperature T: the logits are divided by it before the softmax (1 leaves them as trained).</summary>
    public double Temperature { get; }

    public int FeatureSize => Mean.Length;

    public int ClassCount => Biases.Length;

    /// <summary>Standardises a raw feature vector the same way the trainer saw it.</summary>
    public float[] Standardize(ReadOnlySpan<float> features)
    {
        var z = new float[FeatureSize];
        for (var j = 0; j < z.Length; j++)
        {
            z[j] = (features[j] - Mean[j]) * Scale[j];
        }

        return z;
    }

    /// <summary>Returns the same head with another calibration temperature (the weights are shared, not copied).</summary>
    public LinearHead WithTemperature(double temperature) => new(Mean, Scale, Weights, Biases, temperature);

    /// <summary>Computes the uncalibrated logits W z + b (before the temperature).</summary>
    public double[] Logits(ReadOnlySpan<float> features)
    {
        var z = Standardize(features);
        var logits = new double[ClassCount];
        for (var c = 0; c < logits.Length; c++)
        {
            double sum = Biases[c];
            var w = Weights[c];
            for (var j = 0; j < z.Length; j++)
            {
                sum += (double)w[j] * z[j];
            }

            logits[c] = sum;
        }

        return logits;
    }

    /// <summary>Computes calibrated class probabilities, softmax(logits / T), that sum to 1.</summary>
    public float[] Probabilities(ReadOnlySpan<float> features) => Softmax(Logits(features), Temperature);

    /// <summary>Computes softmax(logits / temperature) in a numerically stable way.</summary>
    public static float[] Softmax(ReadOnlySpan<double> logits, double temperature)
    {
        var max = double.NegativeInfinity;
        foreach (var l in logits)
        {
            max = Math.Max(max, l);
        }

        var exp = new double[logits.Length];
        double total = 0;
        for (var c = 0; c < logits.Length; c++)
        {
            exp[c] = Math.Exp((logits[c] - max) / temperature);
            total += exp[c];
        }

        var probabilities = new float[logits.Length];
        for (var c = 0; c < probabilities.Length; c++)
        {
            probabilities[c] = (float)(exp[c] / total);
        }

        return probabilities;
    }
}
