using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Onnx;
using PretrainedKit.Onnx.Proto;

namespace PretrainedKit.Backbones;

/// <summary>The distributions of a calibration pass.</summary>
/// <param name="Activations">Each quantised activation's name and distribution, in graph order.</param>
/// <param name="ImageCount">How many images were measured.</param>
internal sealed record Int8Statistics(IReadOnlyList<(string Value, ActivationHistogram Histogram)> Activations, int ImageCount);

/// <summary>
/// The int8 backbone: the float graph raised to opset 13 with its batch normalisations folded
/// (<see cref="Prepare"/>), the calibration pass over preprocessed tensors (<see cref="Calibrate"/>), and the QDQ graph
/// that ONNX Runtime fuses into integer kernels (<see cref="Build"/>: QLinearConv for all 20 ResNet18 convolutions,
/// QLinearAdd for its 8 residual additions, the max pooling on bytes; checked with ONNX Runtime's verbose log, see the
/// README).
/// </summary>
internal static class Int8Backbone
{
    /// <summary>The float graph ready for quantisation: raised to opset 13, batch normalisation folded into the convolutions.</summary>
    /// <param name="modelPath">The backbone's ONNX file.</param>
    /// <returns>The prepared graph.</returns>
    /// <exception cref="NotSupportedException">The graph holds an operator that cannot be raised to opset 13 safely.</exception>
    public static ModelProto Prepare(string modelPath) => QdqQuantizer.FoldBatchNorm(QdqQuantizer.RaiseOpset(OnnxModelEditor.Read(modelPath)));

    /// <summary>
    /// Measures every quantised activation over the given input tensors and clips its range at
    /// <see cref="Int8Calibration.DefaultPercentile"/> (see <see cref="Measure"/> and <see cref="Int8Calibration.FromStatistics"/>).
    /// </summary>
    /// <param name="runtime">The float backbone.</param>
    /// <param name="tensors">Preprocessed input tensors (at least <see cref="BackboneRuntime.TensorLength"/> values each).</param>
    /// <param name="cancellationToken">Stops the pass.</param>
    /// <returns>The calibration.</returns>
    /// <exception cref="ArgumentException">No tensor was given, or an activation was not finite.</exception>
    public static Int8Calibration Calibrate(BackboneRuntime runtime, IEnumerable<float[]> tensors, CancellationToken cancellationToken = default) =>
        Int8Calibration.FromStatistics(Measure(runtime, tensors, cancellationToken), Int8Calibration.DefaultPercentile);

    /// <summary>Runs the float graph over the given input tensors and gathers each quantised activation's distribution.</summary>
    /// <param name="runtime">The float backbone.</param>
    /// <param name="tensors">Preprocessed input tensors (at least <see cref="BackboneRuntime.TensorLength"/> values each).</param>
    /// <param name="cancellationToken">Stops the pass.</param>
    /// <returns>The statistics, activations in graph order.</returns>
    /// <exception cref="ArgumentException">No tensor was given, or an activation was not finite.</exception>
    public static Int8Statistics Measure(BackboneRuntime runtime, IEnumerable<float[]> tensors, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(tensors);
        var prepared = Prepare(runtime.ModelPath);
        var values = QdqQuantizer.CalibratedValues(prepared);
        var inputName = runtime.Backbone.InputName;
        var outputs = values.Where(v => v != inputName).ToArray();
        var histograms = values.ToDictionary(v => v, _ => new ActivationHistogram(), StringComparer.Ordinal);
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Environment.ProcessorCount, InterOpNumThreads = 1 };
        using var session = new InferenceSession(OnnxModelEditor.ToBytes(OnnxModelEditor.AddOutputs(prepared, outputs)), options);
        using var runOptions = new RunOptions();
        long[] shape = [1, 3, runtime.Backbone.InputHeight, runtime.Backbone.InputWidth];
        var count = 0;
        foreach (var tensor in tensors)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (histograms.TryGetValue(inputName, out var input))
            {
                input.Add(tensor.AsSpan(0, runtime.TensorLength));
            }

            using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, tensor.AsMemory(0, runtime.TensorLength), shape);
            using var results = session.Run(runOptions, [inputName], [value], outputs);
            for (var i = 0; i < outputs.Length; i++)
            {
                histograms[outputs[i]].Add(results[i].GetTensorDataAsSpan<float>());
            }

            count++;
        }

        if (count == 0)
        {
            throw new ArgumentException("An int8 calibration needs at least one image.", nameof(tensors));
        }

        return new Int8Statistics([.. values.Select(v => (v, histograms[v]))], count);
    }

    /// <summary>The QDQ graph of the backbone for a calibration; the same inputs always give the same graph.</summary>
    /// <param name="modelPath">The backbone's float ONNX file.</param>
    /// <param name="calibration">The calibration.</param>
    /// <returns>The quantised graph.</returns>
    public static ModelProto Build(string modelPath, Int8Calibration calibration)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        calibration.Validate();
        return QdqQuantizer.Quantize(Prepare(modelPath), calibration.ToDictionary(), calibration.Types);
    }
}
