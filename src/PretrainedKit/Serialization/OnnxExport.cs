using System.Runtime.InteropServices;
using System.Text.Json;
using Google.Protobuf;
using PretrainedKit.Backbones;
using PretrainedKit.Imaging;
using PretrainedKit.Internal;
using PretrainedKit.Models;
using PretrainedKit.Onnx;
using PretrainedKit.Onnx.Proto;

namespace PretrainedKit.Serialization;

/// <summary>
/// Builds one self-contained ONNX model from a trained classifier: channel reorder and mean subtraction, the backbone,
/// the head's standardisation, its linear layer (with the calibration temperature folded in: W / T and b / T) and a
/// softmax, so that the probabilities equal <c>Predict</c>'s. Input <c>image</c> [N,3,H,W] (RGB, 0-255, planar), output
/// <c>probabilities</c> [N,classes].
/// </summary>
internal static class OnnxExport
{
    public const string InputName = "image";
    public const string OutputName = "probabilities";
    public const string MetadataPrefix = "pretrainedkit.";

    /// <summary>The facts written to <c>metadata_props</c>, also returned so that callers can show them.</summary>
    public static IReadOnlyDictionary<string, string> Metadata(
        IReadOnlyList<string> classes,
        Backbone backbone,
        string weightsSha256,
        ImagePreprocessingOptions image,
        string? libraryVersion) => new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [MetadataPrefix + "classes"] = JsonSerializer.Serialize(classes),
            [MetadataPrefix + "input"] = $"{InputName}: float32 [N,3,{backbone.InputHeight},{backbone.InputWidth}], planar (NCHW), RGB channel order, values 0-255 (no scaling, no mean subtraction: the model does both)",
            [MetadataPrefix + "output"] = $"{OutputName}: float32 [N,{classes.Count}], softmax probabilities in the order of {MetadataPrefix}classes",
            [MetadataPrefix + "resize"] = $"{image.ResizeMode} to {backbone.InputWidth}x{backbone.InputHeight}",
            [MetadataPrefix + "background"] = image.Background.ToString(),
            [MetadataPrefix + "backbone"] = backbone.Id,
            [MetadataPrefix + "backbone_sha256"] = weightsSha256,
            [MetadataPrefix + "version"] = libraryVersion ?? string.Empty,
        };

    /// <summary>Builds the ONNX model of a definition and writes it atomically.</summary>
    /// <param name="path">The ONNX file to write.</param>
    /// <param name="definition">The model.</param>
    /// <param name="runtime">Its backbone, for the weights and the mean image.</param>
    public static void Write(string path, ModelDefinition definition, BackboneRuntime runtime) =>
        WriteAtomically(path, Build(definition, runtime, LibraryVersion.Informational));

    /// <summary>Builds the ONNX model of a definition: the backbone's graph, the preprocessing before it and the head after it.</summary>
    /// <param name="definition">The model.</param>
    /// <param name="runtime">Its backbone, for the weights and the mean image.</param>
    /// <param name="libraryVersion">The version written to the metadata.</param>
    /// <returns>The model.</returns>
    public static ModelProto Build(ModelDefinition definition, BackboneRuntime runtime, string? libraryVersion)
    {
        var head = definition.Head;
        var classes = definition.Classes;
        var image = definition.Image;
        var unknownThreshold = definition.UnknownThreshold;
        var backbone = runtime.Backbone;
        var model = OnnxModelEditor.MakeBatchDynamic(OnnxModelEditor.Read(runtime.ModelPath));
        var graph = model.Graph;
        var names = graph.Node.SelectMany(n => n.Output).Concat(graph.Input.Select(i => i.Name)).Concat(graph.Initializer.Select(i => i.Name)).ToHashSet(StringComparer.Ordinal);
        string Fresh(string name)
        {
            var candidate = "pretrainedkit_" + name;
            for (var i = 2; names.Contains(candidate); i++)
            {
                candidate = $"pretrainedkit_{name}_{i}";
            }

            names.Add(candidate);
            return candidate;
        }

        if (names.Contains(InputName) || names.Contains(OutputName))
        {
            throw new InvalidOperationException($"The backbone '{runtime.ModelPath}' already uses the name '{InputName}' or '{OutputName}'.");
        }

        // 1. The backbone's own input becomes an intermediate value: image (RGB) -> BGR -> minus the mean image.
        var backboneInput = graph.Input.SingleOrDefault(i => i.Name == backbone.InputName)
            ?? throw new InvalidOperationException($"The backbone has no input named '{backbone.InputName}'.");
        graph.Input.Remove(backboneInput);
        graph.ValueInfo.Add(backboneInput);
        graph.Input.Insert(0, TensorInfo(InputName, [null, 3, backbone.InputHeight, backbone.InputWidth]));

        var order = Fresh("bgr_order");
        var negativeMean = Fresh("negative_mean");
        var bgr = Fresh("bgr");
        graph.Initializer.Add(Int64Tensor(order, [3], [2, 1, 0]));
        graph.Initializer.Add(FloatTensor(negativeMean, [1, 3, backbone.InputHeight, backbone.InputWidth], runtime.NegativeMean.ToArray()));
        var prologue = new[]
        {
            Node("Gather", [InputName, order], [bgr], IntAttribute("axis", 1)),
            Node("Add", [bgr, negativeMean], [backbone.InputName]),
        };
        for (var i = prologue.Length - 1; i >= 0; i--)
        {
            graph.Node.Insert(0, prologue[i]);
        }

        // 2. After the backbone: flatten, (L2-normalise,) standardise, (kernel values,) linear layer, softmax.
        var d = head.FeatureSize;
        var k = head.ClassCount;
        var features = Fresh("features");
        var centred = Fresh("centred");
        var standardized = Fresh("standardized");
        var logits = Fresh("logits");
        var mean = Fresh("feature_mean");
        var scale = Fresh("feature_scale");
        var weights = Fresh("weights");
        var biases = Fresh("biases");
        graph.Initializer.Add(FloatTensor(mean, [d], head.Scaling.Mean));
        graph.Initializer.Add(FloatTensor(scale, [d], head.Scaling.Scale));
        var inverseTemperature = 1 / definition.Temperature; // softmax((W z + b) / T) = softmax((W / T) z + b / T).
        graph.Initializer.Add(FloatTensor(weights, [k, head.Weights[0].Length], head.Weights.SelectMany(w => w).Select(v => (float)(v * inverseTemperature)).ToArray()));
        graph.Initializer.Add(FloatTensor(biases, [k], head.Biases.Select(v => (float)(v * inverseTemperature)).ToArray()));
        graph.Node.Add(Node("Flatten", [backbone.OutputName], [features], IntAttribute("axis", 1)));
        if (head.Scaling.NormalizeL2)
        {
            var normalized = Fresh("l2_normalized");
            graph.Node.Add(Node("LpNormalization", [features], [normalized], IntAttribute("axis", 1), IntAttribute("p", 2)));
            features = normalized;
        }

        graph.Node.Add(Node("Sub", [features, mean], [centred]));
        graph.Node.Add(Node("Mul", [centred, scale], [standardized]));
        var lastInputs = standardized;
        if (head is KernelHeadDefinition kernel)
        {
            // Kernel head: k = exp(-gamma |z - c|^2) = exp(2 gamma z.c - gamma |c|^2 - gamma |z|^2) against every centre c.
            var m = kernel.Centres.Length;
            var centres = Fresh("kernel_centres");
            var centreTerms = Fresh("kernel_centre_terms");
            var gamma = Fresh("kernel_gamma");
            var squared = Fresh("kernel_input_squared");
            var inputTerms = Fresh("kernel_input_terms");
            var crossTerms = Fresh("kernel_cross_terms");
            var exponent = Fresh("kernel_exponent");
            var values = Fresh("kernel_values");
            graph.Initializer.Add(FloatTensor(centres, [m, d], kernel.Centres.SelectMany(c => c).ToArray()));
            graph.Initializer.Add(FloatTensor(centreTerms, [m], kernel.SquaredNorms.Select(v => -kernel.Gamma * v).ToArray()));
            graph.Initializer.Add(FloatTensor(gamma, [1], [kernel.Gamma]));
            graph.Node.Add(Node("ReduceSumSquare", [standardized], [squared], IntsAttribute("axes", 1), IntAttribute("keepdims", 1)));
            graph.Node.Add(Node("Mul", [squared, gamma], [inputTerms]));
            graph.Node.Add(Node("Gemm", [standardized, centres, centreTerms], [crossTerms], FloatAttribute("alpha", 2 * kernel.Gamma), IntAttribute("transB", 1)));
            graph.Node.Add(Node("Sub", [crossTerms, inputTerms], [exponent]));
            graph.Node.Add(Node("Exp", [exponent], [values]));
            lastInputs = values;
        }

        graph.Node.Add(Node("Gemm", [lastInputs, weights, biases], [logits], IntAttribute("transB", 1)));
        graph.Node.Add(Node("Softmax", [logits], [OutputName], IntAttribute("axis", 1)));

        graph.Output.Clear();
        graph.Output.Add(TensorInfo(OutputName, [null, k]));
        graph.Name = "pretrainedkit_image_classifier";

        // Gemm with a broadcast bias needs opset 7; everything else used here is older.
        var defaultDomain = model.OpsetImport.FirstOrDefault(o => string.IsNullOrEmpty(o.Domain) || o.Domain == "ai.onnx");
        if (defaultDomain is null)
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = 7 });
        }
        else if (defaultDomain.Version < 7)
        {
            throw new InvalidOperationException($"The backbone uses ONNX opset {defaultDomain.Version}; export needs 7 or later.");
        }

        model.ProducerName = "PretrainedKit";
        model.ProducerVersion = libraryVersion ?? string.Empty;
        model.DocString = $"Image classifier exported by PretrainedKit: {backbone.DisplayName} features, retrained softmax head over {k} classes. Input '{InputName}' float32 [N,3,{backbone.InputHeight},{backbone.InputWidth}] RGB 0-255 NCHW; output '{OutputName}' float32 [N,{k}].";
        model.MetadataProps.Clear();
        foreach (var (key, value) in Metadata(classes, backbone, runtime.WeightsSha256, image, libraryVersion))
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }

        model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataPrefix + "temperature", Value = definition.Temperature.ToString("R", System.Globalization.CultureInfo.InvariantCulture) });
        if (unknownThreshold is { } threshold)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataPrefix + "unknown_threshold", Value = threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture) });
        }

        return model;
    }

    /// <summary>Writes the model atomically (see <see cref="AtomicFile"/>).</summary>
    /// <param name="path">The ONNX file.</param>
    /// <param name="model">The model.</param>
    public static void WriteAtomically(string path, ModelProto model)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var target = Path.GetFullPath(path);
        if (Directory.Exists(target))
        {
            throw new IOException($"Cannot export the ONNX model to '{target}': it is a folder. Give a file path such as '{Path.Combine(target, "model.onnx")}'.");
        }

        var directory = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Cannot export the ONNX model to '{target}': the folder '{directory}' does not exist. Create it first.");
        }

        try
        {
            AtomicFile.Write(target, model.WriteTo);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Could not export the ONNX model to '{target}': {ex.Message} The previous file, if any, is unchanged.", ex);
        }
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = "pretrainedkit_" + op + "_" + outputs[0] };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static AttributeProto IntAttribute(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto IntsAttribute(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    private static AttributeProto FloatAttribute(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    private static ValueInfoProto TensorInfo(string name, int?[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(dim is { } value
                ? new TensorShapeProto.Types.Dimension { DimValue = value }
                : new TensorShapeProto.Types.Dimension { DimParam = OnnxModelEditor.BatchDimension });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static TensorProto FloatTensor(string name, long[] dims, float[] values)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("ONNX export needs a little-endian machine.");
        }

        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    private static TensorProto Int64Tensor(string name, long[] dims, long[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.AddRange(dims);
        tensor.Int64Data.AddRange(values);
        return tensor;
    }
}
