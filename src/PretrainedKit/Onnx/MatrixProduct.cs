using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Onnx.Proto;

namespace PretrainedKit.Onnx;

/// <summary>
/// Dense float matrix products by ONNX Runtime's <c>Gemm</c> (its MLAS kernels, on every core): Y = A Bᵀ for row-major
/// matrices. Tens of times faster than pairwise dot products for the Gram matrices and similarity searches of a few
/// thousand feature vectors. One session for the process, built from a one-node graph in memory (nothing is read).
/// </summary>
/// <threadsafety>Safe to call from many threads at once.</threadsafety>
internal static class MatrixProduct
{
    private static readonly Lazy<InferenceSession> Session = new(Create, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Computes Y = A Bᵀ.</summary>
    /// <param name="a">A, <paramref name="rowsA"/> x <paramref name="columns"/>, row-major.</param>
    /// <param name="rowsA">The rows of A.</param>
    /// <param name="b">B, <paramref name="rowsB"/> x <paramref name="columns"/>, row-major.</param>
    /// <param name="rowsB">The rows of B.</param>
    /// <param name="columns">The columns of A and of B.</param>
    /// <returns>Y, <paramref name="rowsA"/> x <paramref name="rowsB"/>, row-major.</returns>
    public static float[] MultiplyTransposed(Memory<float> a, int rowsA, Memory<float> b, int rowsB, int columns)
    {
        var result = new float[(long)rowsA * rowsB];
        if (rowsA == 0 || rowsB == 0 || columns == 0)
        {
            return result;
        }

        using var inputA = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, a[..(rowsA * columns)], [rowsA, columns]);
        using var inputB = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, b[..(rowsB * columns)], [rowsB, columns]);
        using var output = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, result.AsMemory(), [rowsA, rowsB]);
        using var runOptions = new RunOptions();
        Session.Value.Run(runOptions, ["A", "B"], [inputA, inputB], ["Y"], [output]);
        return result;
    }

    /// <summary>Stacks equally long vectors into one row-major matrix.</summary>
    public static float[] Rows(IReadOnlyList<float[]> vectors, int columns)
    {
        var matrix = new float[(long)vectors.Count * columns];
        for (var i = 0; i < vectors.Count; i++)
        {
            vectors[i].AsSpan(0, columns).CopyTo(matrix.AsSpan(i * columns, columns));
        }

        return matrix;
    }

    private static InferenceSession Create()
    {
        static ValueInfoProto Matrix(string name, string rows, string columns)
        {
            var shape = new TensorShapeProto();
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = rows });
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = columns });
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } } };
        }

        var node = new NodeProto { OpType = "Gemm", Name = "pretrainedkit_gemm" };
        node.Input.AddRange(["A", "B"]);
        node.Output.Add("Y");
        node.Attribute.Add(new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        var graph = new GraphProto { Name = "pretrainedkit_matrix_product" };
        graph.Node.Add(node);
        graph.Input.AddRange([Matrix("A", "m", "k"), Matrix("B", "n", "k")]);
        graph.Output.Add(Matrix("Y", "m", "n"));
        var model = new ModelProto { IrVersion = 7, ProducerName = "PretrainedKit", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = 13 });
        using var options = new SessionOptions { IntraOpNumThreads = Environment.ProcessorCount, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        return new InferenceSession(model.ToByteArray(), options);
    }
}
