using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace PretrainedKit.Backbones;

/// <summary>Opens a backbone's ONNX file and checks that it matches its <see cref="BackboneDefinition"/>, naming the file and the fix.</summary>
internal static class BackboneCheck
{
    /// <summary>Opens the backbone file, or <paramref name="replacement"/> (its int8 graph) in its place, with extra outputs, and checks it.</summary>
    public static InferenceSession OpenChecked(Backbone backbone, string modelPath, SessionOptions options, IEnumerable<string>? extraOutputs = null, Onnx.Proto.ModelProto? replacement = null)
    {
        var session = replacement is not null ? OpenEdited(modelPath, options, extraOutputs ?? [], replacement)
            : extraOutputs is null ? OpenFile(modelPath, options) : OpenEdited(modelPath, options, extraOutputs);
        try
        {
            Check(backbone, modelPath, session);
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The file as it is: ONNX Runtime reads it itself, with no managed copy of the model beside its own (for ResNet18
    /// that is about 160 MB less resident memory per session: bench --session-memory).
    /// </summary>
    private static InferenceSession OpenFile(string modelPath, SessionOptions options)
    {
        try
        {
            return new InferenceSession(modelPath, options);
        }
        catch (OnnxRuntimeException ex)
        {
            _ = Read(modelPath); // A file that is not ONNX at all gets the clearer message.
            throw new ArgumentException($"ONNX Runtime cannot load '{modelPath}': {ex.Message}", ex);
        }
    }

    /// <summary>A copy of the model with <paramref name="extraOutputs"/> added as graph outputs (the stage activations of multi-stage features).</summary>
    private static InferenceSession OpenEdited(string modelPath, SessionOptions options, IEnumerable<string> extraOutputs, Onnx.Proto.ModelProto? replacement = null)
    {
        // The batch dimension is left as the file declares it (1 for the ResNet18 package): the backbone runs image by
        // image, which on the CPU beat batches on a symbolic-batch copy (bench/results).
        var bytes = Onnx.OnnxModelEditor.ToBytes(Onnx.OnnxModelEditor.AddOutputs(replacement ?? Read(modelPath), extraOutputs));
        try
        {
            return new InferenceSession(bytes, options);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new ArgumentException($"ONNX Runtime cannot load '{modelPath}': {ex.Message}", ex);
        }
    }

    private static Onnx.Proto.ModelProto Read(string modelPath)
    {
        try
        {
            return Onnx.OnnxModelEditor.Read(modelPath);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new ArgumentException($"'{modelPath}' is not an ONNX model ({ex.Message}). Give the backbone the path of a .onnx file.", ex);
        }
    }

    private static void Check(Backbone backbone, string modelPath, InferenceSession session)
    {
        var problems = new List<string>();
        if (!session.InputMetadata.TryGetValue(backbone.InputName, out var input))
        {
            problems.Add($"it has no input named '{backbone.InputName}' (inputs: {string.Join(", ", session.InputMetadata.Keys)}); set InputName to one of them.");
        }
        else
        {
            var dims = input.Dimensions;
            if (input.ElementDataType != TensorElementType.Float)
            {
                problems.Add($"the input '{backbone.InputName}' holds {input.ElementDataType}, but a backbone takes float.");
            }

            if (dims.Length != 4 || (dims[1] > 0 && dims[1] != 3) || (dims[2] > 0 && dims[2] != backbone.InputHeight) || (dims[3] > 0 && dims[3] != backbone.InputWidth))
            {
                problems.Add($"the input '{backbone.InputName}' has shape [{string.Join(", ", dims)}], but the definition says [N, 3, {backbone.InputHeight}, {backbone.InputWidth}]; fix InputWidth and InputHeight.");
            }
        }

        if (!session.OutputMetadata.TryGetValue(backbone.OutputName, out var output))
        {
            problems.Add($"it has no output named '{backbone.OutputName}' (outputs: {string.Join(", ", session.OutputMetadata.Keys)}); set OutputName to one of them.");
        }
        else
        {
            var perImage = output.Dimensions.Skip(1).ToArray();
            if (output.ElementDataType != TensorElementType.Float)
            {
                problems.Add($"the output '{backbone.OutputName}' holds {output.ElementDataType}, but features must be float.");
            }
            else if (perImage.Length > 0 && perImage.All(d => d > 0) && perImage.Aggregate(1L, (a, d) => a * d) != backbone.FeatureSize)
            {
                problems.Add($"the output '{backbone.OutputName}' has shape [{string.Join(", ", output.Dimensions)}], that is {perImage.Aggregate(1L, (a, d) => a * d)} numbers per image, but FeatureSize is {backbone.FeatureSize}.");
            }
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException($"The ONNX file '{modelPath}' does not match the backbone '{backbone.Id}':{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", problems));
        }
    }
}
