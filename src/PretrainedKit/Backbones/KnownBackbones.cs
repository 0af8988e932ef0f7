namespace PretrainedKit.Backbones;

/// <summary>The backbones that ship with PretrainedKit. Nothing is downloaded at run time: the weights come from NuGet packages.</summary>
public static class KnownBackbones
{
    /// <summary>
    /// Gets ResNet18 with ImageNet weights (ONNX, from the NuGet package <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>):
    /// 224x224 input, BGR channel order with the package's mean image subtracted from 0-255 pixels, 512 features
    /// (global average pool of the last stage).
    /// </summary>
    public static Backbone ResNet18 { get; } = new(
        id: "resnet18-imagenet",
        displayName: "ResNet18 (ImageNet)",
        modelFile: Path.Combine("ResNet18Onnx", "ResNet18.onnx"),
        preprocessFile: Path.Combine("ResNetPrepOnnx", "ResNetPreprocess.onnx"),
        inputName: "Input247",
        outputName: "Pooling395_Output_0",
        inputSize: 224,
        featureSize: 512,
        packageId: "Microsoft.ML.DnnImageFeaturizer.ResNet18",
        packageVersion: "0.24.0",
        stages:
        [
            new BackboneStage("ReLU315_Output_0", 128, 28, 28),
            new BackboneStage("ReLU347_Output_0", 256, 14, 14),
            new BackboneStage("ReLU393_Output_0", 512, 7, 7),
        ]);

    /// <summary>Gets every known backbone.</summary>
    public static IReadOnlyList<Backbone> All { get; } = [ResNet18];

    /// <summary>Finds a known backbone by its <see cref="Backbone.Id"/>.</summary>
    /// <param name="id">The id stored in a model file.</param>
    /// <returns>The backbone, or <see langword="null"/> when the id is unknown.</returns>
    public static Backbone? FindById(string id) => All.FirstOrDefault(b => string.Equals(b.Id, id, StringComparison.Ordinal));
}
