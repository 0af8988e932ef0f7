namespace PretrainedKit.Backbones;

/// <summary>The arithmetic the backbone runs in.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "The names are the numeric formats themselves, as in ONNX Runtime and PyTorch.")]
public enum Precision
{
    /// <summary>32-bit floating point: the backbone's own weights, bit-identical features. The default.</summary>
    Float32 = 0,

    /// <summary>
    /// 8-bit integers: the backbone quantised when the model is trained (weights per output channel, activations from
    /// a calibration pass over up to <see cref="Int8Calibration.MaxImages"/> of the training images; the ranges are
    /// saved with the model, so that loading rebuilds the same integer graph). Faster on CPUs with integer dot-product
    /// instructions; the README lists what it gives, and costs in accuracy, on the machines measured. Built-in ResNet18
    /// (and custom backbones of the same operators) only.
    /// </summary>
    Int8 = 1,
}
