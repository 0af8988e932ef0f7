using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Onnx;
using PretrainedKit.Onnx.Proto;

namespace PretrainedKit.Backbones;

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

    /// <summary>Measures the range of every quantised activation over the given input tensors (min and max).</summary>
    /// <param name="runtime">The float backbone.</param>
    /// <param name="tensors">Preprocessed input tensors (at least <see cref="BackboneRuntime.TensorLength"/> values each).</param>
    /// <param name="cancellationToken">Stops the pass.</param>
    /// <returns>The calibration.</returns>
    /// <exception cref="ArgumentException">No tensor was given.</exception>
    public static Int8Calibration Calibrate(BackboneRuntime runtime, IEnumerable<float[]> tensors, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(tensors);
        var prepared = Prepare(runtime.ModelPath);
        var values = QdqQuantizer.CalibratedValues(prepared);
        var inputName = runtime.Backbone.InputName;
        var outputs = values.Where(v => v != inputName).ToArray();
        var ranges = values.ToDictionary(v => v, _ => (Min: float.PositiveInfinity, Max: float.NegativeInfinity), StringComparer.Ordinal);
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Environment.ProcessorCount, InterOpNumThreads = 1 };
        using var session = new InferenceSession(OnnxModelEditor.ToBytes(OnnxModelEditor.AddOutputs(prepared, outputs)), options);
        using var runOptions = new RunOptions();
        long[] shape = [1, 3, runtime.Backbone.InputHeight, runtime.Backbone.InputWidth];
        var count = 0;
        foreach (var tensor in tensors)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (ranges.ContainsKey(inputName))
            {
                Widen(ranges, inputName, tensor.AsSpan(0, runtime.TensorLength));
            }

            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, tensor.AsMemory(0, runtime.TensorLength), shape);
            using var results = session.Run(runOptions, [inputName], [input], outputs);
            for (var i = 0; i < outputs.Length; i++)
            {
                Widen(ranges, outputs[i], results[i].GetTensorDataAsSpan<float>());
            }

            count++;
        }

        if (count == 0)
        {
            throw new ArgumentException("An int8 calibration needs at least one image.", nameof(tensors));
        }

        var calibration = new Int8Calibration([.. values.Select(v => new Int8Range(v, ranges[v].Min, ranges[v].Max))], Int8Calibration.DefaultTypes, count);
        calibration.Validate();
        return calibration;
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

    private static void Widen(Dictionary<string, (float Min, float Max)> ranges, string name, ReadOnlySpan<float> values)
    {
        var (min, max) = ranges[name];
        foreach (var v in values)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }

        ranges[name] = (min, max);
    }
}
