using System.Numerics.Tensors;

namespace PretrainedKit.Models;

/// <summary>
/// A trained head: the closed set of what can sit on the backbone's features (<see cref="LinearHeadDefinition"/> or
/// <see cref="KernelHeadDefinition"/>), each with its feature scaling, final-layer weights and biases. It scores; it does
/// not train (the trainers live in Training and produce these records).
/// </summary>
/// <param name="Scaling">How raw features are scaled first.</param>
/// <param name="Weights">The final layer, one row per class.</param>
/// <param name="Biases">One per class.</param>
internal abstract record HeadDefinition(FeatureScaling Scaling, float[][] Weights, float[] Biases)
{
    /// <summary>Gets the kind of head.</summary>
    public abstract HeadKind Kind { get; }

    /// <summary>Gets the length of the raw feature vectors it reads.</summary>
    public int FeatureSize => Scaling.FeatureSize;

    /// <summary>Gets the number of classes.</summary>
    public int ClassCount => Biases.Length;

    /// <summary>Computes the uncalibrated logits of one raw feature vector.</summary>
    /// <param name="features">The raw features.</param>
    /// <returns>One logit per class.</returns>
    public double[] Logits(ReadOnlySpan<float> features) => FinalLayer(FinalLayerInput(Scaling.Apply(features)));

    /// <summary>Computes the uncalibrated logits of several views of one image, averaged (test-time augmentation).</summary>
    /// <param name="views">The raw features of each view.</param>
    /// <returns>One logit per class.</returns>
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

    /// <summary>Checks that the sizes agree and every number is usable.</summary>
    /// <exception cref="ArgumentException">A size does not agree.</exception>
    public virtual void Validate()
    {
        if (Scaling.Mean.Length != Scaling.Scale.Length || Weights.Length != Biases.Length || Weights.Any(w => w.Length != FinalLayerInputSize))
        {
            throw new ArgumentException("The head's dimensions do not agree.");
        }
    }

    /// <summary>Gets the length of the vector the final layer reads.</summary>
    protected abstract int FinalLayerInputSize { get; }

    /// <summary>Turns the scaled features into what the final layer reads.</summary>
    /// <param name="scaled">The scaled features.</param>
    /// <returns>The final layer's input.</returns>
    protected abstract float[] FinalLayerInput(float[] scaled);

    private double[] FinalLayer(float[] z)
    {
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
}

/// <summary>A retrained final layer: logits = W z + b on the scaled features z.</summary>
/// <param name="Scaling">How raw features are scaled first.</param>
/// <param name="Weights">One row per class, one weight per feature.</param>
/// <param name="Biases">One per class.</param>
internal sealed record LinearHeadDefinition(FeatureScaling Scaling, float[][] Weights, float[] Biases) : HeadDefinition(Scaling, Weights, Biases)
{
    /// <inheritdoc/>
    public override HeadKind Kind => HeadKind.Linear;

    /// <inheritdoc/>
    protected override int FinalLayerInputSize => FeatureSize;

    /// <inheritdoc/>
    protected override float[] FinalLayerInput(float[] scaled) => scaled;
}

/// <summary>
/// Kernel ridge regression: the final layer reads k_i = exp(-gamma |z - centre_i|^2) for every centre (a scaled training
/// view) instead of z.
/// </summary>
/// <param name="Scaling">How raw features are scaled first.</param>
/// <param name="Centres">The scaled training views.</param>
/// <param name="Gamma">The kernel width.</param>
/// <param name="Weights">One row per class, one weight per centre.</param>
/// <param name="Biases">One per class.</param>
internal sealed record KernelHeadDefinition(FeatureScaling Scaling, float[][] Centres, float Gamma, float[][] Weights, float[] Biases) : HeadDefinition(Scaling, Weights, Biases)
{
    /// <summary>The most centres the model file keeps as 32-bit floats; more are trained and stored as 16-bit floats.</summary>
    public const int FullPrecisionCentres = 800;

    /// <summary>Gets the squared length of each centre, computed once.</summary>
    public float[] SquaredNorms { get; } = Centres.Select(c => TensorPrimitives.Dot<float>(c, c)).ToArray();

    /// <summary>
    /// Gets a value indicating whether the model file stores the centres as 16-bit floats: there are more than
    /// <see cref="FullPrecisionCentres"/> and every value is exactly a 16-bit float (training rounds them so), so the
    /// compact form loses nothing.
    /// </summary>
    public bool StoresHalfCentres => Centres.Length > FullPrecisionCentres && Centres.All(c => c.All(v => (float)(Half)v == v));

    /// <inheritdoc/>
    public override HeadKind Kind => HeadKind.Kernel;

    /// <inheritdoc/>
    protected override int FinalLayerInputSize => Centres.Length;

    /// <summary>exp(-gamma * |a - b|^2) from the squared norms and the dot product (clamped at 0 against rounding).</summary>
    /// <param name="aSquared">|a|^2.</param>
    /// <param name="bSquared">|b|^2.</param>
    /// <param name="dot">a . b.</param>
    /// <param name="gamma">The width.</param>
    /// <returns>The kernel value.</returns>
    public static double Kernel(float aSquared, float bSquared, float dot, float gamma) =>
        Math.Exp(-gamma * Math.Max(0.0, (double)aSquared + bSquared - (2.0 * dot)));

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Centres.Length == 0 || Centres.Any(c => c.Length != FeatureSize) || !(Gamma > 0) || float.IsInfinity(Gamma))
        {
            throw new ArgumentException("The head's dimensions do not agree.");
        }
    }

    /// <inheritdoc/>
    protected override float[] FinalLayerInput(float[] scaled)
    {
        var squared = TensorPrimitives.Dot<float>(scaled, scaled);
        var values = new float[Centres.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)Kernel(squared, SquaredNorms[i], TensorPrimitives.Dot<float>(scaled, Centres[i]), Gamma);
        }

        return values;
    }
}
