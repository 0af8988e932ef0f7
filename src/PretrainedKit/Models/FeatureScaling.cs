namespace PretrainedKit.Models;

/// <summary>
/// How a raw feature vector is scaled before a head reads it: optionally divided by its Euclidean length, then
/// (features - mean) * scale. The kind is stored, not worked back out of the numbers.
/// </summary>
/// <param name="Kind">The normalisation.</param>
/// <param name="Mean">The means subtracted (zeros for <see cref="FeatureNormalization.None"/>).</param>
/// <param name="Scale">The factors applied after subtracting the mean (ones for <see cref="FeatureNormalization.None"/>).</param>
internal sealed record FeatureScaling(FeatureNormalization Kind, float[] Mean, float[] Scale)
{
    /// <summary>Gets the length of the feature vectors it scales.</summary>
    public int FeatureSize => Mean.Length;

    /// <summary>Gets a value indicating whether each vector is divided by its Euclidean length first.</summary>
    public bool NormalizeL2 => Kind == FeatureNormalization.L2ThenStandardize;

    /// <summary>The identity scaling of <see cref="FeatureNormalization.None"/>.</summary>
    /// <param name="featureSize">The feature vector length.</param>
    /// <returns>Zeros as means and ones as scales.</returns>
    public static FeatureScaling Identity(int featureSize) => new(FeatureNormalization.None, new float[featureSize], Enumerable.Repeat(1f, featureSize).ToArray());

    /// <summary>Returns <paramref name="features"/> divided by its Euclidean length (unchanged when the length is 0).</summary>
    /// <param name="features">The vector.</param>
    /// <returns>A new vector.</returns>
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

    /// <summary>Returns (features - mean) * scale, element by element.</summary>
    /// <param name="features">The vector.</param>
    /// <param name="mean">The means.</param>
    /// <param name="scale">The factors.</param>
    /// <returns>A new vector.</returns>
    public static float[] Standardize(ReadOnlySpan<float> features, float[] mean, float[] scale)
    {
        var z = new float[mean.Length];
        for (var j = 0; j < z.Length; j++)
        {
            z[j] = (features[j] - mean[j]) * scale[j];
        }

        return z;
    }

    /// <summary>Scales a raw feature vector the way the head was trained to read it.</summary>
    /// <param name="features">The raw vector.</param>
    /// <returns>A new, scaled vector.</returns>
    public float[] Apply(ReadOnlySpan<float> features) => Standardize(NormalizeL2 ? L2Normalized(features) : features, Mean, Scale);
}
