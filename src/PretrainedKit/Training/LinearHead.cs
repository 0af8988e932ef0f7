using System.Numerics.Tensors;

namespace PretrainedKit.Training;

/// <summary>
/// The kernel layer of a <see cref="HeadKind.Kernel"/> head: the standardised training rows (centres) and the RBF width;
/// the final layer then reads k_i = exp(-gamma |z - centre_i|^2) for every centre instead of z.
/// </summary>
internal sealed record KernelLayer(float[][] Centres, float Gamma)
{
    /// <summary>Gets the squared length of each centre, computed once.</summary>
    public float[] SquaredNorms { get; } = Centres.Select(c => TensorPrimitives.Dot<float>(c, c)).ToArray();
}

/// <summary>
/// The retrained final layer: optionally divide the features by their Euclidean length, standardise them, then
/// softmax((W z + b) / T), where T is the calibration temperature (1 when uncalibrated). With a <see cref="Kernel"/>
/// layer, the final layer reads the kernel values of z against the training rows instead of z. Several views of one image
/// (test-time augmentation) are combined by averaging their logits before the softmax. Stored as plain numbers, so that a model file never needs to deserialise code or types.
/// </summary>
/// <threadsafety>Immutable; <c>Probabilities</c> is safe from many threads at once.</threadsafety>
internal sealed class LinearHead
{
    public LinearHead(float[] mean, float[] scale, float[][] weights, float[] biases, double temperature = 1, KernelLayer? kernel = null)
    {
        var inputs = kernel?.Centres.Length ?? mean.Length;
        if (mean.Length != scale.Length || weights.Length != biases.Length || weights.Any(w => w.Length != inputs)
            || (kernel is not null && (kernel.Centres.Any(c => c.Length != mean.Length) || !(kernel.Gamma > 0) || float.IsInfinity(kernel.Gamma))))
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
        Kernel = kernel;
    }

    /// <summary>Gets the feature means subtracted before the linear layer.</summary>
    public float[] Mean { get; }

    /// <summary>Gets the factors (1 / standard deviation) applied after subtracting the mean.</summary>
    public float[] Scale { get; }

    /// <summary>Gets the kernel layer between the standardised features and the final layer, or <see langword="null"/> for a linear head.</summary>
    public KernelLayer? Kernel { get; }

    /// <summary>Gets the weights of the final layer, one row per class.</summary>
    public float[][] Weights { get; }

    /// <summary>Gets the biases, one per class.</summary>
    public float[] Biases { get; }

    /// <summary>Gets the calibration temperature T: the logits are divided by it before the softmax (1 leaves them as trained).</summary>
    public double Temperature { get; }

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
    public float[] Standardize(ReadOnlySpan<float> features) => Standardize(NormalizeL2 ? L2Normalized(features) : features, Mean, Scale);

    /// <summary>Returns (features - mean) * scale, element by element: the standardisation the trainer and the head share.</summary>
    public static float[] Standardize(ReadOnlySpan<float> features, float[] mean, float[] scale)
    {
        var z = new float[mean.Length];
        for (var j = 0; j < z.Length; j++)
        {
            z[j] = (features[j] - mean[j]) * scale[j];
        }

        return z;
    }

    /// <summary>Returns the same head with another calibration temperature (the weights are shared, not copied).</summary>
    public LinearHead WithTemperature(double temperature) => new(Mean, Scale, Weights, Biases, temperature, Kernel) { NormalizeL2 = NormalizeL2 };

    /// <summary>Computes the uncalibrated logits of several views of one image, averaged (test-time augmentation).</summary>
    public double[] Logits(IReadOnlyList<float[]> views)
    {
        var logits = Logits(views[0]);
        if (views.Count == 1)
        {
            return logits;
        }

        for (var v = 1; v < views.Count; v++)
        {
            var next = Logits(views[v]);
            for (var c = 0; c < logits.Length; c++)
            {
                logits[c] += next[c];
            }
        }

        for (var c = 0; c < logits.Length; c++)
        {
            logits[c] /= views.Count;
        }

        return logits;
    }

    /// <summary>Computes calibrated class probabilities from several views of one image (their logits averaged).</summary>
    public float[] Probabilities(IReadOnlyList<float[]> views) => Softmax(Logits(views), Temperature);

    /// <summary>Computes the uncalibrated logits W z + b (before the temperature), with z replaced by its kernel values against the centres when there is a kernel layer.</summary>
    public double[] Logits(ReadOnlySpan<float> features)
    {
        var z = Standardize(features);
        if (Kernel is { } kernel)
        {
            var squared = TensorPrimitives.Dot<float>(z, z);
            var values = new float[kernel.Centres.Length];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (float)KernelTrainer.Kernel(squared, kernel.SquaredNorms[i], TensorPrimitives.Dot<float>(z, kernel.Centres[i]), kernel.Gamma);
            }

            z = values;
        }

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
