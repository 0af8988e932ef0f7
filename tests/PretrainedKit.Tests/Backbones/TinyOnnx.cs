using Google.Protobuf;
using PretrainedKit.Onnx.Proto;

namespace PretrainedKit.Tests.Backbones;

/// <summary>
/// Writes a tiny ONNX image model: input <c>pixels</c> [1, 3, 32, 32] -> 3x3 Conv (8 filters) -> Relu -> GlobalAveragePool
/// -> Flatten -> output <c>features</c> [1, 8]. Filters 0-2 pass one input channel each (so the mean colour is among the
/// features); filters 3-7 are seeded pseudo-random. The bytes are the same on every run.
/// </summary>
internal static class TinyOnnx
{
    public const string InputName = "pixels";
    public const string OutputName = "features";
    public const int Size = 32;
    public const int FeatureSize = 8;

    public static byte[] Create()
    {
        const int filters = FeatureSize;
        var weights = new float[filters * 3 * 3 * 3];
        var random = new Random(5);
        for (var f = 0; f < filters; f++)
        {
            for (var c = 0; c < 3; c++)
            {
                for (var k = 0; k < 9; k++)
                {
                    var index = (((f * 3) + c) * 9) + k;
                    weights[index] = f < 3
                        ? (f == c && k == 4 ? 1f : 0f)
                        : MathF.Round((float)((random.NextDouble() * 2) - 1) * 0.5f, 4);
                }
            }
        }

        var graph = new GraphProto { Name = "tiny-cnn" };
        graph.Input.Add(Value(InputName, 1, 3, Size, Size));
        graph.Output.Add(Value(OutputName, 1, FeatureSize));
        graph.Initializer.Add(Tensor("w", weights, filters, 3, 3, 3));
        graph.Initializer.Add(Tensor("b", new float[filters], filters));
        graph.Node.Add(Node("Conv", [InputName, "w", "b"], "conv", Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1)));
        graph.Node.Add(Node("Relu", ["conv"], "relu"));
        graph.Node.Add(Node("GlobalAveragePool", ["relu"], "pool"));
        graph.Node.Add(Node("Flatten", ["pool"], OutputName, new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));

        var model = new ModelProto { IrVersion = 7, ProducerName = "PretrainedKit.Tests", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = 13 });
        return model.ToByteArray();
    }

    public static string Write(string folder, string fileName = "tiny-cnn.onnx")
    {
        var path = Path.Combine(folder, fileName);
        File.WriteAllBytes(path, Create());
        return path;
    }

    private static ValueInfoProto Value(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static TensorProto Tensor(string name, float[] values, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange(dims);
        tensor.FloatData.AddRange(values);
        return tensor;
    }

    private static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    private static NodeProto Node(string op, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = output };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        return node;
    }
}
