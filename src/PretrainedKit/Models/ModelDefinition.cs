using PretrainedKit.Backbones;
using PretrainedKit.Imaging;

namespace PretrainedKit.Models;

/// <summary>
/// Everything a trained classifier is, and nothing it runs on: which backbone (and exactly which weights and features),
/// how images are normalised, the classes, the head, the views averaged per prediction, the calibration temperature and
/// the "unknown" threshold. Training produces it; the model file and the ONNX export serialise exactly it; a loaded
/// model is this definition plus a featurisation session.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
internal sealed record ModelDefinition
{
    /// <summary>Gets the backbone the features come from.</summary>
    public required Backbone Backbone { get; init; }

    /// <summary>Gets the SHA-256 of the backbone weights the head was trained on.</summary>
    public required string WeightsSha256 { get; init; }

    /// <summary>Gets which backbone activations are the features.</summary>
    public required FeatureLayout FeatureLayout { get; init; }

    /// <summary>Gets the calibration of the int8 backbone the features come from, or <see langword="null"/> for the float backbone.</summary>
    public Int8Calibration? Int8 { get; init; }

    /// <summary>Gets the arithmetic the backbone runs in.</summary>
    public Precision Precision => Int8 is null ? Precision.Float32 : Precision.Int8;

    /// <summary>Gets how images are decoded and normalised before the backbone.</summary>
    public required ImagePreprocessingOptions Image { get; init; }

    /// <summary>Gets the class names, in the order of the head's outputs.</summary>
    public required IReadOnlyList<string> Classes { get; init; }

    /// <summary>Gets the head.</summary>
    public required HeadDefinition Head { get; init; }

    /// <summary>Gets the views whose logits each prediction averages.</summary>
    public TestTimeAugmentation TestTimeAugmentation { get; init; } = TestTimeAugmentation.None;

    /// <summary>Gets the calibration temperature T: probabilities are softmax(logits / T).</summary>
    public double Temperature { get; init; } = 1;

    /// <summary>Gets the top-probability threshold below which an answer is "unknown", or <see langword="null"/>.</summary>
    public float? UnknownThreshold { get; init; }

    /// <summary>Gets the length of one view's feature vector.</summary>
    public int FeatureSize => Head.FeatureSize;

    /// <summary>Gets the views of each image that a prediction runs, in order.</summary>
    public IReadOnlyList<ImageView> TestViews => ViewsOf(TestTimeAugmentation);

    /// <summary>The views that a test-time augmentation setting runs, in order.</summary>
    /// <param name="augmentation">The setting.</param>
    /// <returns>The views.</returns>
    public static IReadOnlyList<ImageView> ViewsOf(TestTimeAugmentation augmentation) =>
        augmentation == TestTimeAugmentation.Mirror ? [ImageView.Original, ImageView.Mirror] : [ImageView.Original];

    /// <summary>Checks that the parts agree with each other.</summary>
    /// <exception cref="ArgumentException">A part does not fit the others.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The temperature or the threshold is out of range.</exception>
    public void Validate()
    {
        Head.Validate();
        if (Head.ClassCount != Classes.Count)
        {
            throw new ArgumentException($"The head has {Head.ClassCount} outputs for {Classes.Count} classes.");
        }

        if (!(Temperature > 0) || double.IsInfinity(Temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "The temperature must be a finite value above 0.");
        }

        if (UnknownThreshold is { } threshold && !(threshold >= 0 && threshold <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(UnknownThreshold), threshold, "The unknown threshold must be a probability from 0 to 1.");
        }
    }

    /// <summary>Computes calibrated class probabilities from the features of the test views of one image.</summary>
    /// <param name="views">The raw features of each view in <see cref="TestViews"/>.</param>
    /// <returns>Probabilities that sum to 1.</returns>
    public float[] Probabilities(IReadOnlyList<float[]> views) => Softmax(Head.Logits(views), Temperature);

    /// <summary>Computes softmax(logits / temperature) in a numerically stable way.</summary>
    /// <param name="logits">The logits.</param>
    /// <param name="temperature">The temperature.</param>
    /// <returns>Probabilities that sum to 1.</returns>
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
