namespace PretrainedKit.Backbones;

/// <summary>Which activations of the backbone become the feature vector.</summary>
public enum FeatureLayout
{
    /// <summary>The backbone's own pooled output (512 values for ResNet18): the classic "retrain the final layer".</summary>
    Pooled = 0,

    /// <summary>
    /// Global average- and max-pooled activations closing each declared stage (stages 2-4 of ResNet18: 2 x (128 + 256 + 512)
    /// = 1,792 values), each block square-rooted (the activations are post-ReLU) and L2-normalised. Computed in the same
    /// single ONNX run.
    /// </summary>
    MultiStage = 1,
}

/// <summary>An activation that closes one stage of a backbone.</summary>
/// <param name="OutputName">The ONNX value name.</param>
/// <param name="Channels">Channels.</param>
/// <param name="Height">Height.</param>
/// <param name="Width">Width.</param>
public sealed record BackboneStage(string OutputName, int Channels, int Height, int Width);
