using Microsoft.ML;
using Microsoft.ML.Data;

namespace PretrainedKit.Interop;

/// <summary>
/// An ML.NET estimator over one image column that accepts the column types an ML.NET user has at hand: text (a file
/// path, as from a folder listing) or a byte vector (the encoded file, as from <c>LoadRawImageBytes</c>). The type is
/// read from the data at <see cref="Fit"/> (and from the schema shape in <see cref="GetOutputSchema"/>), and the work is a
/// lazy <c>CustomMapping</c>: rows are computed when they are read, every input column is kept.
/// </summary>
/// <typeparam name="TOut">The output row; its columns are described by the output schema definition.</typeparam>
internal sealed class ImageColumnEstimator<TOut> : IEstimator<ITransformer>
    where TOut : class, new()
{
    private readonly TransformsCatalog _transforms;
    private readonly string _inputColumnName;
    private readonly SchemaDefinition _output;
    private readonly Action<string, TOut> _fromPath;
    private readonly Action<byte[], TOut> _fromBytes;

    /// <summary>Initializes a new instance of the <see cref="ImageColumnEstimator{TOut}"/> class.</summary>
    /// <param name="transforms">The catalog the mappings are made with.</param>
    /// <param name="inputColumnName">The image column.</param>
    /// <param name="output">The output columns.</param>
    /// <param name="fromPath">Fills an output row from an image file path.</param>
    /// <param name="fromBytes">Fills an output row from encoded image bytes.</param>
    public ImageColumnEstimator(TransformsCatalog transforms, string inputColumnName, SchemaDefinition output, Action<string, TOut> fromPath, Action<byte[], TOut> fromBytes)
    {
        _transforms = transforms;
        _inputColumnName = inputColumnName;
        _output = output;
        _fromPath = fromPath;
        _fromBytes = fromBytes;
    }

    /// <inheritdoc/>
    public ITransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var column = input.Schema.GetColumnOrNull(_inputColumnName)
            ?? throw new ArgumentException($"The data has no column '{_inputColumnName}' (columns: {string.Join(", ", input.Schema.Select(c => c.Name))}). Name the column of image paths or image bytes with inputColumnName.", nameof(input));
        var kind = column.Type switch
        {
            TextDataViewType => ColumnKind.Path,
            VectorDataViewType { ItemType: var item } when item == NumberDataViewType.Byte => ColumnKind.Bytes,
            _ => ColumnKind.Other,
        };
        return Inner(kind, column.Type).Fit(input);
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var matches = inputSchema.Where(c => c.Name == _inputColumnName).ToList();
        if (matches.Count == 0)
        {
            throw new ArgumentException($"The data has no column '{_inputColumnName}'. Name the column of image paths or image bytes with inputColumnName.", nameof(inputSchema));
        }

        var column = matches[^1];
        var kind = column.ItemType is TextDataViewType && column.Kind == SchemaShape.Column.VectorKind.Scalar ? ColumnKind.Path
            : column.ItemType == NumberDataViewType.Byte && column.Kind != SchemaShape.Column.VectorKind.Scalar ? ColumnKind.Bytes
            : ColumnKind.Other;
        return Inner(kind, column.ItemType).GetOutputSchema(inputSchema);
    }

    private enum ColumnKind
    {
        Path,
        Bytes,
        Other,
    }

    private IEstimator<ITransformer> Inner(ColumnKind kind, DataViewType type)
    {
        if (kind == ColumnKind.Path)
        {
            var input = SchemaDefinition.Create(typeof(PathRow));
            input[0].ColumnName = _inputColumnName;
            return _transforms.CustomMapping<PathRow, TOut>((row, result) => _fromPath(row.Path ?? string.Empty, result), contractName: null, input, _output);
        }

        if (kind == ColumnKind.Bytes)
        {
            var input = SchemaDefinition.Create(typeof(BytesRow));
            input[0].ColumnName = _inputColumnName;
            return _transforms.CustomMapping<BytesRow, TOut>((row, result) => _fromBytes(row.Bytes ?? [], result), contractName: null, input, _output);
        }

        // MLImage columns (from LoadImages) cannot be read: ML.NET's CustomMapping does not support MLImage inputs
        // ("Type 'Microsoft.ML.Data.MLImage' is not yet supported", TypedCursorable), so the message says what to use.
        throw new ArgumentException(type.RawType.Name == "MLImage"
            ? $"The column '{_inputColumnName}' holds images (MLImage), which ML.NET's custom mappings cannot read. Give the column of image paths that LoadImages read, or load the bytes with LoadRawImageBytes instead."
            : $"The column '{_inputColumnName}' holds {type}; it must hold image file paths (text) or encoded image bytes (a byte vector, as LoadFromEnumerable with byte[] or LoadRawImageBytes give).");
    }

    /// <summary>The input row for a path column (the column name is set per estimator).</summary>
    internal sealed class PathRow
    {
        public string? Path { get; set; }
    }

    /// <summary>The input row for a byte-vector column.</summary>
    internal sealed class BytesRow
    {
        public byte[]? Bytes { get; set; }
    }
}

/// <summary>The output row of <c>ClassifyImages</c> (the column names are set per estimator).</summary>
internal sealed class ClassificationRow
{
    public string PredictedLabel { get; set; } = string.Empty;

    public float[] Score { get; set; } = [];

    public string[] TopLabels { get; set; } = [];

    public void Set(Prediction prediction)
    {
        PredictedLabel = prediction.Label;
        Score = prediction.Probabilities.ToArray();
        TopLabels = prediction.TopK.Select(p => p.Label).ToArray();
    }
}
