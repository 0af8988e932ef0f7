using Google.Protobuf;
using PretrainedKit.Onnx.Proto;

namespace PretrainedKit.Onnx;

/// <summary>Small, well-defined edits of ONNX models, done on ONNX's own protobuf schema.</summary>
internal static class OnnxModelEditor
{
    /// <summary>The symbolic name given to the batch dimension.</summary>
    public const string BatchDimension = "N";

    public static ModelProto Read(string path)
    {
        using var stream = File.OpenRead(path);
        return ModelProto.Parser.ParseFrom(stream);
    }

    /// <summary>
    /// Replaces dimension 0 of every input, output and <c>value_info</c> with the symbolic <see cref="BatchDimension"/>,
    /// so that ONNX Runtime accepts any batch size. Models exported with a fixed batch of 1 (such as the CNTK ResNet18)
    /// compute exactly the same per-image results after this edit.
    /// </summary>
    /// <param name="model">The model (not changed).</param>
    /// <param name="dimension">The symbolic name of the batch dimension; a graph that runs several views of each image
    /// inside it names the backbone's batch differently from its own input's.</param>
    /// <returns>The edited copy.</returns>
    public static ModelProto MakeBatchDynamic(ModelProto model, string dimension = BatchDimension)
    {
        var copy = model.Clone();
        var graph = copy.Graph;
        var initializers = graph.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var info in graph.Input.Where(i => !initializers.Contains(i.Name)).Concat(graph.Output).Concat(graph.ValueInfo))
        {
            var shape = info.Type?.TensorType?.Shape;
            if (shape is { Dim.Count: > 0 })
            {
                shape.Dim[0] = new TensorShapeProto.Types.Dimension { DimParam = dimension };
            }
        }

        return copy;
    }

    /// <summary>Adds existing intermediate values as graph outputs (for example the ReLU closing each ResNet stage).</summary>
    public static ModelProto AddOutputs(ModelProto model, IEnumerable<string> names)
    {
        var copy = model.Clone();
        var graph = copy.Graph;
        foreach (var name in names)
        {
            if (graph.Output.Any(o => o.Name == name))
            {
                continue;
            }

            if (!graph.Node.Any(n => n.Output.Contains(name)))
            {
                throw new ArgumentException($"The model has no value named '{name}'.", nameof(names));
            }

            var info = graph.ValueInfo.FirstOrDefault(v => v.Name == name)?.Clone()
                ?? new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } } };
            graph.Output.Add(info);
        }

        return copy;
    }

    public static byte[] ToBytes(ModelProto model) => model.ToByteArray();
}
