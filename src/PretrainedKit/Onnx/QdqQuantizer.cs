using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using PretrainedKit.Onnx.Proto;

namespace PretrainedKit.Onnx;

/// <summary>Which integer types an int8 graph computes in (ONNX Runtime's names: activation type, then weight type).</summary>
internal enum QuantizedTypes
{
    /// <summary>Unsigned 8-bit activations, signed 8-bit weights with the full range [-127, 127].</summary>
    U8S8,

    /// <summary>Unsigned 8-bit activations, signed 7-bit weights [-63, 63]: no 16-bit saturation in AVX2's <c>vpmaddubsw</c>.</summary>
    U8S7,

    /// <summary>Unsigned 8-bit activations and weights (weight zero point 128).</summary>
    U8U8,
}

/// <summary>
/// Quantises a float convolutional network (ResNet-style: Conv, BatchNormalization, Relu, MaxPool, Add, pooling) into
/// QDQ form that ONNX Runtime's graph optimiser fuses into integer kernels (QLinearConv, QLinearAdd): the opset raised
/// to 13 (per-channel DequantizeLinear needs its <c>axis</c>), BatchNormalization folded into the convolution before
/// it, weights quantised per output channel (symmetric), activations per tensor from calibrated ranges. Every step is
/// deterministic: the same model and ranges give the same bytes.
/// </summary>
internal static class QdqQuantizer
{
    /// <summary>The opset of the raised and of the quantised graph.</summary>
    public const int TargetOpset = 13;

    private const string QuantizedSuffix = "_quantized";
    private const string FloatSuffix = "_float";

    /// <summary>
    /// The operators whose meaning is the same from opset 7 to 13 for the attributes they carry, once BatchNormalization's
    /// <c>spatial</c> (removed in 9, and 1 is the only behaviour left) is dropped. Pad (its pads became an input in 11),
    /// Reshape, Upsample and the like are not here: a graph that holds one is refused rather than silently changed.
    /// </summary>
    private static readonly HashSet<string> OpsetStableOperators = new(StringComparer.Ordinal)
    {
        "Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Add", "Flatten", "Concat",
    };

    /// <summary>
    /// The same float graph at opset <see cref="TargetOpset"/> (IR version 7): BatchNormalization's <c>spatial</c> dropped
    /// (only 1 is accepted), initializers no longer listed as graph inputs (so that ONNX Runtime may treat them as
    /// constants), and the default-domain opset raised. It computes the same values as the original.
    /// </summary>
    /// <param name="model">The model (not changed); default-domain opset 7 to 13.</param>
    /// <returns>The raised copy.</returns>
    /// <exception cref="NotSupportedException">An operator whose meaning changed between the model's opset and 13 (every one is named), or another domain.</exception>
    public static ModelProto RaiseOpset(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var copy = model.Clone();
        var graph = copy.Graph;
        var unsupported = graph.Node.Where(n => !string.IsNullOrEmpty(n.Domain) || !OpsetStableOperators.Contains(n.OpType)).Select(n => $"{n.OpType} ({n.Name})").Distinct().ToList();
        var opsets = copy.OpsetImport.Where(o => string.IsNullOrEmpty(o.Domain) || o.Domain == "ai.onnx").ToList();
        if (opsets.Count != 1 || opsets[0].Version is < 7 or > TargetOpset)
        {
            unsupported.Add($"default-domain opset {string.Join(", ", opsets.Select(o => o.Version))} (7 to {TargetOpset} can be raised)");
        }

        foreach (var node in graph.Node.Where(n => n.OpType == "BatchNormalization"))
        {
            if (node.Attribute.FirstOrDefault(a => a.Name == "spatial") is { } spatial)
            {
                if (spatial.I != 1)
                {
                    unsupported.Add($"BatchNormalization {node.Name} with spatial={spatial.I}");
                }

                node.Attribute.Remove(spatial);
            }

            if (node.Output.Count > 1)
            {
                unsupported.Add($"BatchNormalization {node.Name} in training mode (more than one output)");
            }
        }

        if (unsupported.Count > 0)
        {
            throw new NotSupportedException($"The backbone graph cannot be raised to opset {TargetOpset} for int8: {string.Join("; ", unsupported)}. Use Precision.Float32 for this backbone.");
        }

        opsets[0].Version = TargetOpset;
        copy.IrVersion = Math.Max(copy.IrVersion, 7);
        var initializers = graph.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var inputs = graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
        graph.Input.Clear();
        graph.Input.Add(inputs);
        return copy;
    }

    /// <summary>
    /// Folds every BatchNormalization whose input is a convolution's output used by it alone into that convolution's
    /// weights and bias: <c>w' = w * gamma / sqrt(var + eps)</c>, <c>b' = (b - mean) * gamma / sqrt(var + eps) + beta</c>.
    /// </summary>
    /// <param name="model">A raised model (see <see cref="RaiseOpset"/>); not changed.</param>
    /// <returns>The folded copy.</returns>
    public static ModelProto FoldBatchNorm(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var copy = model.Clone();
        var graph = copy.Graph;
        var initializers = graph.Initializer.ToDictionary(i => i.Name, StringComparer.Ordinal);
        var consumers = Consumers(graph);
        foreach (var bn in graph.Node.Where(n => n.OpType == "BatchNormalization").ToList())
        {
            var conv = graph.Node.FirstOrDefault(n => n.OpType == "Conv" && n.Output[0] == bn.Input[0]);
            if (conv is null || consumers[bn.Input[0]].Count != 1 || !bn.Input.Skip(1).All(initializers.ContainsKey) || !initializers.ContainsKey(conv.Input[1]))
            {
                continue;
            }

            var epsilon = bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
            var gamma = ReadFloats(initializers[bn.Input[1]]);
            var beta = ReadFloats(initializers[bn.Input[2]]);
            var mean = ReadFloats(initializers[bn.Input[3]]);
            var variance = ReadFloats(initializers[bn.Input[4]]);
            var weightTensor = initializers[conv.Input[1]];
            var weights = ReadFloats(weightTensor);
            var channels = (int)weightTensor.Dims[0];
            var perChannel = weights.Length / channels;
            var bias = conv.Input.Count > 2 ? ReadFloats(initializers[conv.Input[2]]) : new float[channels];
            var folded = new float[weights.Length];
            var foldedBias = new float[channels];
            for (var c = 0; c < channels; c++)
            {
                var factor = (double)gamma[c] / Math.Sqrt((double)variance[c] + epsilon);
                for (var k = 0; k < perChannel; k++)
                {
                    folded[(c * perChannel) + k] = (float)(weights[(c * perChannel) + k] * factor);
                }

                foldedBias[c] = (float)(((bias[c] - (double)mean[c]) * factor) + beta[c]);
            }

            var weightName = conv.Output[0] + "_folded_weight";
            var biasName = conv.Output[0] + "_folded_bias";
            graph.Initializer.Add(FloatTensor(weightName, [.. weightTensor.Dims], folded));
            graph.Initializer.Add(FloatTensor(biasName, [channels], foldedBias));
            var convInput = conv.Input[0];
            conv.Input.Clear();
            conv.Input.Add(convInput);
            conv.Input.Add(weightName);
            conv.Input.Add(biasName);
            conv.Output[0] = bn.Output[0];
            graph.Node.Remove(bn);
        }

        RemoveUnusedInitializers(graph);
        return copy;
    }

    /// <summary>
    /// The activations that <see cref="Quantize"/> puts a QuantizeLinear/DequantizeLinear pair on, and so needs a range
    /// for: the graph input, and the outputs of Conv, Relu, MaxPool and Add, except a value whose only consumer is a Relu
    /// (the Relu's output is quantised instead, and ONNX Runtime folds the Relu into the quantisation).
    /// </summary>
    /// <param name="model">A raised, folded model.</param>
    /// <returns>The value names, in graph order.</returns>
    public static IReadOnlyList<string> CalibratedValues(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph;
        var consumers = Consumers(graph);
        var values = new List<string>();
        foreach (var input in graph.Input)
        {
            if (consumers.TryGetValue(input.Name, out var users) && users.Any(u => u.OpType == "Conv"))
            {
                values.Add(input.Name);
            }
        }

        foreach (var node in graph.Node.Where(n => n.OpType is "Conv" or "Relu" or "MaxPool" or "Add"))
        {
            var output = node.Output[0];
            var users = consumers.TryGetValue(output, out var u) ? u : [];
            var onlyRelu = users.Count == 1 && users[0].OpType == "Relu" && !graph.Output.Any(o => o.Name == output);
            if (!onlyRelu && node.OpType != "MaxPool")
            {
                values.Add(output);
            }
        }

        return values;
    }

    /// <summary>
    /// Inserts QuantizeLinear/DequantizeLinear pairs: on every value of <see cref="CalibratedValues"/> (uint8, asymmetric,
    /// from its calibrated range; a MaxPool's output reuses its input's parameters, so that ONNX Runtime runs the pooling
    /// on bytes), and on the weights (per output channel, symmetric) and biases (int32 at input scale times weight scale)
    /// of every convolution. Each quantised value keeps its name, now produced by its DequantizeLinear, so that stage
    /// outputs can still be read as float.
    /// </summary>
    /// <param name="model">A raised, folded model (not changed).</param>
    /// <param name="ranges">Each calibrated value's (min, max).</param>
    /// <param name="types">The integer types.</param>
    /// <param name="floatValues">
    /// Values of <see cref="CalibratedValues"/> left in float (no pair, no range needed); a convolution that reads one
    /// keeps its float weights, so it runs in float. None by default.
    /// </param>
    /// <returns>The QDQ model.</returns>
    /// <exception cref="ArgumentException">A value of <see cref="CalibratedValues"/> has no range, or a range is not finite.</exception>
    public static ModelProto Quantize(ModelProto model, IReadOnlyDictionary<string, (float Min, float Max)> ranges, QuantizedTypes types, IReadOnlySet<string>? floatValues = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(ranges);
        var copy = model.Clone();
        var graph = copy.Graph;
        var values = CalibratedValues(copy).Where(v => floatValues?.Contains(v) != true).ToList();
        var missing = values.Where(v => !ranges.TryGetValue(v, out var r) || !float.IsFinite(r.Min) || !float.IsFinite(r.Max)).ToList();
        if (missing.Count > 0)
        {
            throw new ArgumentException($"No finite calibrated range for {missing.Count} values: {string.Join(", ", missing.Take(5))}.", nameof(ranges));
        }

        var initializers = graph.Initializer.ToDictionary(i => i.Name, StringComparer.Ordinal);
        var parameters = new Dictionary<string, (float Scale, byte ZeroPoint)>(StringComparer.Ordinal);
        foreach (var value in values)
        {
            parameters[value] = ActivationParameters(ranges[value].Min, ranges[value].Max);
        }

        // MaxPool outputs: the input's parameters (max of bytes is the byte of the max).
        foreach (var pool in graph.Node.Where(n => n.OpType == "MaxPool"))
        {
            if (parameters.TryGetValue(pool.Input[0], out var p))
            {
                parameters[pool.Output[0]] = p;
            }
        }

        var newNodes = new List<NodeProto>();
        var graphInputs = graph.Input.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var renamedInputs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (value, (scale, zeroPoint)) in parameters)
        {
            var scaleName = value + "_scale";
            var zeroName = value + "_zero_point";
            graph.Initializer.Add(FloatTensor(scaleName, [], [scale]));
            graph.Initializer.Add(new TensorProto { Name = zeroName, DataType = (int)TensorProto.Types.DataType.Uint8, RawData = ByteString.CopyFrom(zeroPoint) });
            string source;
            string target;
            if (graphInputs.Contains(value))
            {
                source = value;
                target = value + "_dequantized";
                renamedInputs[value] = target;
            }
            else
            {
                source = value + FloatSuffix;
                target = value;
                graph.Node.Single(n => n.Output.Contains(value)).Output[0] = source;
            }

            newNodes.Add(Node("QuantizeLinear", value + "_QuantizeLinear", [source, scaleName, zeroName], [value + QuantizedSuffix]));
            newNodes.Add(Node("DequantizeLinear", value + "_DequantizeLinear", [value + QuantizedSuffix, scaleName, zeroName], [target]));
        }

        foreach (var node in graph.Node)
        {
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (renamedInputs.TryGetValue(node.Input[i], out var renamed))
                {
                    node.Input[i] = renamed;
                }
            }
        }

        foreach (var conv in graph.Node.Where(n => n.OpType == "Conv").ToList())
        {
            var input = conv.Input[0];
            var inputValue = input.EndsWith("_dequantized", StringComparison.Ordinal) ? input[..^"_dequantized".Length] : input;
            if (!parameters.TryGetValue(inputValue, out var inputParameters) || !initializers.TryGetValue(conv.Input[1], out var weightTensor))
            {
                continue;
            }

            var weights = ReadFloats(weightTensor);
            var channels = (int)weightTensor.Dims[0];
            var perChannel = weights.Length / channels;
            var limit = types == QuantizedTypes.U8S7 ? 63 : 127;
            var scales = new float[channels];
            var quantized = new byte[weights.Length];
            for (var c = 0; c < channels; c++)
            {
                var max = 0f;
                for (var k = 0; k < perChannel; k++)
                {
                    max = Math.Max(max, Math.Abs(weights[(c * perChannel) + k]));
                }

                scales[c] = max > 0 ? max / limit : 1f;
                for (var k = 0; k < perChannel; k++)
                {
                    var q = (int)Math.Clamp(MathF.Round(weights[(c * perChannel) + k] / scales[c], MidpointRounding.ToEven), -limit, limit);
                    quantized[(c * perChannel) + k] = types == QuantizedTypes.U8U8 ? (byte)(q + 128) : unchecked((byte)(sbyte)q);
                }
            }

            var weightName = conv.Input[1];
            var weightType = types == QuantizedTypes.U8U8 ? TensorProto.Types.DataType.Uint8 : TensorProto.Types.DataType.Int8;
            var zeroByte = types == QuantizedTypes.U8U8 ? (byte)128 : (byte)0;
            graph.Initializer.Add(new TensorProto { Name = weightName + QuantizedSuffix, DataType = (int)weightType, Dims = { weightTensor.Dims }, RawData = ByteString.CopyFrom(quantized) });
            graph.Initializer.Add(FloatTensor(weightName + "_scale", [channels], scales));
            graph.Initializer.Add(new TensorProto { Name = weightName + "_zero_point", DataType = (int)weightType, Dims = { channels }, RawData = ByteString.CopyFrom(Enumerable.Repeat(zeroByte, channels).ToArray()) });
            newNodes.Add(Node("DequantizeLinear", weightName + "_DequantizeLinear", [weightName + QuantizedSuffix, weightName + "_scale", weightName + "_zero_point"], [weightName], axis: 0));
            graph.Initializer.Remove(weightTensor);

            if (conv.Input.Count > 2 && initializers.TryGetValue(conv.Input[2], out var biasTensor))
            {
                var bias = ReadFloats(biasTensor);
                var biasScales = scales.Select(s => s * inputParameters.Scale).ToArray();
                var biasValues = new int[channels];
                for (var c = 0; c < channels; c++)
                {
                    biasValues[c] = (int)Math.Clamp(Math.Round(bias[c] / (double)biasScales[c], MidpointRounding.ToEven), int.MinValue + 1, int.MaxValue);
                }

                var biasName = conv.Input[2];
                graph.Initializer.Add(new TensorProto { Name = biasName + QuantizedSuffix, DataType = (int)TensorProto.Types.DataType.Int32, Dims = { channels }, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(biasValues.AsSpan())) });
                graph.Initializer.Add(FloatTensor(biasName + "_scale", [channels], biasScales));
                graph.Initializer.Add(new TensorProto { Name = biasName + "_zero_point", DataType = (int)TensorProto.Types.DataType.Int32, Dims = { channels }, RawData = ByteString.CopyFrom(new byte[4 * channels]) });
                newNodes.Add(Node("DequantizeLinear", biasName + "_DequantizeLinear", [biasName + QuantizedSuffix, biasName + "_scale", biasName + "_zero_point"], [biasName], axis: 0));
                graph.Initializer.Remove(biasTensor);
            }
        }

        graph.Node.Add(newNodes);
        TopologicalSort(graph);
        return copy;
    }

    /// <summary>Scale and zero point of an unsigned 8-bit activation over [min, max], the range stretched to hold 0.</summary>
    /// <param name="min">The smallest calibrated value.</param>
    /// <param name="max">The largest calibrated value.</param>
    /// <returns>The parameters.</returns>
    public static (float Scale, byte ZeroPoint) ActivationParameters(float min, float max)
    {
        min = Math.Min(min, 0);
        max = Math.Max(max, 0);
        if (max - min <= 0)
        {
            return (1f, 0);
        }

        var scale = (max - min) / 255f;
        var zeroPoint = (byte)Math.Clamp(MathF.Round(-min / scale, MidpointRounding.ToEven), 0, 255);
        return (scale, zeroPoint);
    }

    /// <summary>The values of a float tensor, from <c>raw_data</c> or <c>float_data</c>.</summary>
    /// <param name="tensor">The tensor.</param>
    /// <returns>A copy of its values.</returns>
    public static float[] ReadFloats(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.DataType != (int)TensorProto.Types.DataType.Float)
        {
            throw new NotSupportedException($"The initializer '{tensor.Name}' holds data type {tensor.DataType}, not float.");
        }

        return tensor.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).ToArray() : [.. tensor.FloatData];
    }

    private static TensorProto FloatTensor(string name, long[] dims, float[] values) => new()
    {
        Name = name,
        DataType = (int)TensorProto.Types.DataType.Float,
        Dims = { dims },
        RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())),
    };

    private static NodeProto Node(string op, string name, string[] inputs, string[] outputs, long? axis = null)
    {
        var node = new NodeProto { OpType = op, Name = name, Input = { inputs }, Output = { outputs } };
        if (axis is { } a)
        {
            node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = a });
        }

        return node;
    }

    private static Dictionary<string, List<NodeProto>> Consumers(GraphProto graph)
    {
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (var input in node.Input.Where(i => i.Length > 0))
            {
                if (!consumers.TryGetValue(input, out var list))
                {
                    consumers[input] = list = [];
                }

                list.Add(node);
            }
        }

        return consumers;
    }

    private static void RemoveUnusedInitializers(GraphProto graph)
    {
        var used = graph.Node.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        foreach (var unused in graph.Initializer.Where(i => !used.Contains(i.Name)).ToList())
        {
            graph.Initializer.Remove(unused);
        }
    }

    /// <summary>Orders the nodes so that each comes after the producers of its inputs (stable: the original order where it already holds).</summary>
    private static void TopologicalSort(GraphProto graph)
    {
        var available = graph.Input.Select(i => i.Name).Concat(graph.Initializer.Select(i => i.Name)).ToHashSet(StringComparer.Ordinal);
        var pending = graph.Node.ToList();
        var ordered = new List<NodeProto>(pending.Count);
        while (pending.Count > 0)
        {
            var ready = pending.FindIndex(n => n.Input.All(i => i.Length == 0 || available.Contains(i)));
            if (ready < 0)
            {
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"The quantised graph has a cycle or a missing value at node {pending[0].Name}."));
            }

            var node = pending[ready];
            pending.RemoveAt(ready);
            ordered.Add(node);
            foreach (var output in node.Output)
            {
                available.Add(output);
            }
        }

        graph.Node.Clear();
        graph.Node.Add(ordered);
    }
}
