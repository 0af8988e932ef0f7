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

    /// <summary>
    /// <see cref="MultiStage"/> plus where things are: the last two stages also average-pooled over a 2 x 2 grid of
    /// (for odd sizes, slightly overlapping) quadrants, each quadrant one square-rooted, L2-normalised block (ResNet18:
    /// 1,792 + 4 x (256 + 512) = 4,864 values). Helps when classes differ in layout, as garments do in Fashion-MNIST; less
    /// shift-invariant than <see cref="MultiStage"/>.
    /// </summary>
    MultiStageGrid = 2,
}

/// <summary>An activation that closes one stage of a backbone.</summary>
/// <param name="OutputName">The ONNX value name.</param>
/// <param name="Channels">Channels.</param>
/// <param name="Height">Height.</param>
/// <param name="Width">Width.</param>
public sealed record BackboneStage(string OutputName, int Channels, int Height, int Width);
