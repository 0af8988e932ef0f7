using System.Text.Json.Serialization;

namespace PretrainedKit.Backbones;

/// <summary>The order of the colour channels that a backbone expects in its input tensor.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue (PyTorch and most ONNX exports).</summary>
    Rgb,

    /// <summary>Blue, green, red (Caffe and CNTK models, including the bundled ResNet18).</summary>
    Bgr,
}

/// <summary>
/// Declares your own ONNX image model as a backbone: its input and output names, input size, feature size and
/// preprocessing. Pass it to <see cref="Backbone.FromOnnx(string, BackboneDefinition)"/>.
/// </summary>
/// <remarks>
/// <para>
/// The input tensor is planar (NCHW) float, 3 channels in <see cref="ChannelOrder"/>. Each value is
/// <c>(pixel * Scale - Mean[c]) / Std[c]</c>, where <c>pixel</c> is 0-255 and <c>c</c> counts channels in
/// <see cref="ChannelOrder"/>; or, when <see cref="MeanImageFile"/> is set, <c>pixel - meanImage[c, y, x]</c>.
/// </para>
/// <para>The output named <see cref="OutputName"/> must hold <see cref="FeatureSize"/> numbers per image, for example
/// <c>[N, 512]</c> or <c>[N, 512, 1, 1]</c>. The first dimension of every input and output is treated as the batch.</para>
/// <para>The whole definition is saved in model files, so a model can be loaded again with the same preprocessing.</para>
/// </remarks>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record BackboneDefinition
{
    /// <summary>Gets the ImageNet per-channel mean in RGB order, for pixels scaled to 0-1 (PyTorch's torchvision models).</summary>
    public static IReadOnlyList<float> ImageNetMeanRgb { get; } = [0.485f, 0.456f, 0.406f];

    /// <summary>Gets the ImageNet per-channel standard deviation in RGB order, for pixels scaled to 0-1.</summary>
    public static IReadOnlyList<float> ImageNetStdRgb { get; } = [0.229f, 0.224f, 0.225f];

    /// <summary>Gets the identifier stored in model files; a model only loads with a backbone of the same id.</summary>
    /// <value>Required. For example <c>my-mobilenet-v1</c>.</value>
    public required string Id { get; init; }

    /// <summary>Gets a human-readable name.</summary>
    /// <value>The default is <see langword="null"/>, which shows <see cref="Id"/>.</value>
    public string? DisplayName { get; init; }

    /// <summary>Gets the name of the ONNX input that takes the image tensor.</summary>
    /// <value>Required.</value>
    public required string InputName { get; init; }

    /// <summary>Gets the name of the ONNX output that holds the features.</summary>
    /// <value>Required.</value>
    public required string OutputName { get; init; }

    /// <summary>Gets the input width in pixels.</summary>
    /// <value>The default is 224.</value>
    public int InputWidth { get; init; } = 224;

    /// <summary>Gets the input height in pixels.</summary>
    /// <value>The default is 224.</value>
    public int InputHeight { get; init; } = 224;

    /// <summary>Gets the number of features per image in <see cref="OutputName"/>.</summary>
    /// <value>Required.</value>
    public required int FeatureSize { get; init; }

    /// <summary>Gets the channel order of the input tensor.</summary>
    /// <value>The default is <see cref="ChannelOrder.Rgb"/>.</value>
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.Rgb;

    /// <summary>Gets the factor applied to 0-255 pixel values before the mean is subtracted.</summary>
    /// <value>The default is 1/255 (pixels in 0-1). Use 1 for models that take 0-255 values.</value>
    public float Scale { get; init; } = 1f / 255f;

    /// <summary>Gets the per-channel mean subtracted after scaling, in <see cref="ChannelOrder"/>.</summary>
    /// <value>The default is 0, 0, 0. For torchvision models use <see cref="ImageNetMeanRgb"/>.</value>
    public IReadOnlyList<float> Mean { get; init; } = [0f, 0f, 0f];

    /// <summary>Gets the per-channel standard deviation divided by last, in <see cref="ChannelOrder"/>.</summary>
    /// <value>The default is 1, 1, 1. For torchvision models use <see cref="ImageNetStdRgb"/>.</value>
    public IReadOnlyList<float> Std { get; init; } = [1f, 1f, 1f];

    /// <summary>
    /// Gets an ONNX preprocessing model that subtracts a mean image (like the ResNet18 package's
    /// <c>ResNetPreprocess.onnx</c>): it is run once on a black image and the negated result is added to every 0-255
    /// input. A relative path is resolved against the backbone's ONNX file. When set, <see cref="Scale"/>,
    /// <see cref="Mean"/> and <see cref="Std"/> must keep their defaults.
    /// </summary>
    /// <value>The default is <see langword="null"/>: per-channel normalisation.</value>
    public string? MeanImageFile { get; init; }

    /// <summary>Gets whether the per-channel settings are at their defaults.</summary>
    [JsonIgnore]
    internal bool HasDefaultNormalization =>
        Scale == 1f / 255f && Mean.SequenceEqual([0f, 0f, 0f]) && Std.SequenceEqual([1f, 1f, 1f]);

    /// <summary>Checks every setting and reports every problem at once.</summary>
    /// <exception cref="ArgumentException">A setting is invalid; the message lists each problem and its fix.</exception>
    public void Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Id))
        {
            problems.Add("Id is empty: give the backbone a stable name, for example \"my-mobilenet\".");
        }

        if (string.IsNullOrWhiteSpace(InputName))
        {
            problems.Add("InputName is empty: give the name of the ONNX input that takes the image.");
        }

        if (string.IsNullOrWhiteSpace(OutputName))
        {
            problems.Add("OutputName is empty: give the name of the ONNX output that holds the features.");
        }

        if (InputWidth is < 8 or > 4096 || InputHeight is < 8 or > 4096)
        {
            problems.Add($"InputWidth x InputHeight is {InputWidth} x {InputHeight}: each must be 8 to 4096 pixels.");
        }

        if (FeatureSize is < 1 or > 1_000_000)
        {
            problems.Add($"FeatureSize is {FeatureSize}: it must be 1 to 1,000,000.");
        }

        if (!Enum.IsDefined(ChannelOrder))
        {
            problems.Add($"ChannelOrder {ChannelOrder} is not Rgb or Bgr.");
        }

        if (!float.IsFinite(Scale) || Scale <= 0)
        {
            problems.Add($"Scale is {Scale}: it must be a positive number (1/255 for 0-1 pixels, 1 for 0-255 pixels).");
        }

        if (Mean is null || Mean.Count != 3 || Mean.Any(m => !float.IsFinite(m)))
        {
            problems.Add("Mean must hold 3 finite numbers, one per channel in ChannelOrder.");
        }

        if (Std is null || Std.Count != 3 || Std.Any(s => !float.IsFinite(s) || s <= 0))
        {
            problems.Add("Std must hold 3 positive numbers, one per channel in ChannelOrder.");
        }

        if (MeanImageFile is not null && problems.Count == 0 && !HasDefaultNormalization)
        {
            problems.Add("MeanImageFile is set together with Scale, Mean or Std: use either a mean image (0-255 pixels) or per-channel normalisation, not both.");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException($"The backbone definition '{Id}' is invalid:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", problems));
        }
    }
}
