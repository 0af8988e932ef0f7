using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using PretrainedKit.Imaging;

namespace PretrainedKit.Interop;

/// <summary>
/// The fitted transformer of <see cref="ImageColumnEstimator{TResult}"/>: reads the image column of each row (a path, a
/// byte vector or an <see cref="MLImage"/>) and adds the mapping's output columns, computed once per row and only when one
/// of them is read. It is a row-to-row mapper, so it works in <c>Transform</c>, in a <c>TransformerChain</c> and in a
/// <c>PredictionEngine</c>.
/// </summary>
/// <remarks>
/// An <see cref="MLImage"/> is read through its pixels: they are encoded as a lossless PNG in memory
/// (<see cref="PixelEncoder"/>) and take the encoded-bytes path, so decoding, the pixel limit, alpha onto the background and
/// the resize are exactly those of any other image. It cannot be saved with <c>mlContext.Model.Save</c>: it holds a native
/// ONNX Runtime session, which an ML.NET model file cannot hold; <see cref="ICanSaveModel.Save"/> throws
/// <see cref="NotSupportedException"/> saying what to do instead.
/// </remarks>
/// <typeparam name="TResult">What one image gives.</typeparam>
/// <threadsafety>Immutable; safe to use from many threads at once. Each cursor and row it makes is for one thread.</threadsafety>
internal sealed class ImageColumnTransformer<TResult> : ITransformer
    where TResult : class
{
    private readonly ImageColumnMapping<TResult> _mapping;

    /// <summary>Initializes a new instance of the <see cref="ImageColumnTransformer{TResult}"/> class.</summary>
    /// <param name="mapping">The image column, the output columns and how an image is computed.</param>
    public ImageColumnTransformer(ImageColumnMapping<TResult> mapping)
    {
        _mapping = mapping;
    }

    /// <inheritdoc/>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return ImageColumnBinding<TResult>.Bind(_mapping, inputSchema).OutputSchema;
    }

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new Mapper(ImageColumnBinding<TResult>.Bind(_mapping, inputSchema));
    }

    /// <inheritdoc/>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new DataView(input, ImageColumnBinding<TResult>.Bind(_mapping, input.Schema));
    }

    /// <summary>Refuses: the transformer holds a native session that an ML.NET model file cannot hold.</summary>
    /// <param name="ctx">Unused.</param>
    /// <exception cref="NotSupportedException">Always; the message says what to save instead.</exception>
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException(
            $"PretrainedKit's transformer over the column '{_mapping.InputColumnName}' cannot be saved with mlContext.Model.Save: it runs a native ONNX Runtime session, which an ML.NET model file cannot hold. {_mapping.SaveAdvice}");

    /// <summary>The transformer as a row-to-row mapper over one input schema.</summary>
    private sealed class Mapper(ImageColumnBinding<TResult> binding) : IRowToRowMapper
    {
        public DataViewSchema InputSchema => binding.InputSchema;

        public DataViewSchema OutputSchema => binding.OutputSchema;

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns) =>
            binding.Dependencies(dependingColumns);

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            ArgumentNullException.ThrowIfNull(input);
            ArgumentNullException.ThrowIfNull(activeColumns);
            return new Row(input, binding, activeColumns);
        }
    }

    /// <summary>The lazy output of <see cref="Transform"/>: the input's rows with the output columns added.</summary>
    private sealed class DataView(IDataView input, ImageColumnBinding<TResult> binding) : IDataView
    {
        public bool CanShuffle => input.CanShuffle;

        public DataViewSchema Schema => binding.OutputSchema;

        public long? GetRowCount() => input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var needed = columnsNeeded.ToList();
            return new Cursor(input.GetRowCursor(binding.Dependencies(needed), rand), binding, needed);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        {
            var needed = columnsNeeded.ToList();
            return input.GetRowCursorSet(binding.Dependencies(needed), n, rand).Select(c => (DataViewRowCursor)new Cursor(c, binding, needed)).ToArray();
        }
    }

    /// <summary>
    /// A row of the output: the input row's columns as they are, and the output columns from its image. It does not own
    /// the input row (as ML.NET's own row mappers do not): whoever made the input disposes it.
    /// </summary>
    private sealed class Row : DataViewRow
    {
        private readonly DataViewRow _input;
        private readonly ImageColumnBinding<TResult> _binding;
        private readonly Delegate?[] _getters;
        private readonly Func<TResult>? _compute;
        private long _cachedPosition = -1;
        private TResult? _cached;

        public Row(DataViewRow input, ImageColumnBinding<TResult> binding, IEnumerable<DataViewSchema.Column> active)
        {
            _input = input;
            _binding = binding;
            _getters = new Delegate?[binding.Mapping.Outputs.Count];
            foreach (var column in active)
            {
                var output = column.Index - binding.InputSchema.Count;
                if (output >= 0 && output < _getters.Length)
                {
                    _getters[output] = binding.Mapping.Outputs[output].MakeGetter(Current);
                }
            }

            if (_getters.Any(g => g is not null))
            {
                _compute = binding.MakeImageReader(input);
            }
        }

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override DataViewSchema Schema => _binding.OutputSchema;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column)
        {
            var output = column.Index - _binding.InputSchema.Count;
            return output < 0 ? _input.IsColumnActive(_input.Schema[column.Index]) : _getters[output] is not null;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            var output = column.Index - _binding.InputSchema.Count;
            if (output < 0)
            {
                return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            }

            return _getters[output] switch
            {
                ValueGetter<TValue> getter => getter,
                null => throw new InvalidOperationException($"The column '{column.Name}' was not asked for when this row or cursor was made; ask for it among the active columns."),
                var other => throw new InvalidOperationException($"The column '{column.Name}' holds {column.Type}; read it as {other.GetType().GetGenericArguments()[0].Name}, not {typeof(TValue).Name}."),
            };
        }

        /// <summary>The result of the current row's image, computed on first use and kept until the row moves.</summary>
        private TResult Current()
        {
            var position = _input.Position;
            if (_cached is null || _cachedPosition != position)
            {
                _cached = null;
                _cached = _compute!();
                _cachedPosition = position;
            }

            return _cached;
        }
    }

    /// <summary>A cursor over the output: moves the input cursor and reads through a <see cref="Row"/> over it.</summary>
    private sealed class Cursor(DataViewRowCursor input, ImageColumnBinding<TResult> binding, IEnumerable<DataViewSchema.Column> active) : DataViewRowCursor
    {
        private readonly Row _row = new(input, binding, active);

        public override long Position => input.Position;

        public override long Batch => input.Batch;

        public override DataViewSchema Schema => binding.OutputSchema;

        public override bool MoveNext() => input.MoveNext();

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _row.IsColumnActive(column);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => _row.GetGetter<TValue>(column);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _row.Dispose();
                input.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>A mapping bound to one input schema: where the image column is, what kind it is, and the output schema.</summary>
/// <typeparam name="TResult">What one image gives.</typeparam>
internal sealed class ImageColumnBinding<TResult>
    where TResult : class
{
    private ImageColumnBinding(ImageColumnMapping<TResult> mapping, DataViewSchema inputSchema, DataViewSchema.Column column, ImageColumnKind kind, DataViewSchema outputSchema)
    {
        Mapping = mapping;
        InputSchema = inputSchema;
        Column = column;
        Kind = kind;
        OutputSchema = outputSchema;
    }

    /// <summary>Gets the mapping.</summary>
    public ImageColumnMapping<TResult> Mapping { get; }

    /// <summary>Gets the input schema.</summary>
    public DataViewSchema InputSchema { get; }

    /// <summary>Gets the image column (the last of that name).</summary>
    public DataViewSchema.Column Column { get; }

    /// <summary>Gets what the image column holds.</summary>
    public ImageColumnKind Kind { get; }

    /// <summary>Gets the output schema: every input column (same indexes), then the output columns, which hide input columns of the same names.</summary>
    public DataViewSchema OutputSchema { get; }

    /// <summary>Binds a mapping to an input schema.</summary>
    /// <param name="mapping">The mapping.</param>
    /// <param name="inputSchema">The input schema.</param>
    /// <returns>The binding.</returns>
    /// <exception cref="ArgumentException">The schema has no image column, or it holds another type; the message names the column, its type and what is accepted.</exception>
    public static ImageColumnBinding<TResult> Bind(ImageColumnMapping<TResult> mapping, DataViewSchema inputSchema)
    {
        var column = inputSchema.GetColumnOrNull(mapping.InputColumnName)
            ?? throw new ArgumentException(ImageColumnMapping<TResult>.NoColumnMessage(mapping.InputColumnName, inputSchema.Select(c => c.Name)), nameof(inputSchema));
        var kind = column.Type switch
        {
            TextDataViewType => ImageColumnKind.Path,
            VectorDataViewType { ItemType: var item } when item == NumberDataViewType.Byte => ImageColumnKind.Bytes,
            ImageDataViewType => ImageColumnKind.Image,
            _ => throw new ArgumentException(ImageColumnMapping<TResult>.WrongTypeMessage(mapping.InputColumnName, $"{column.Type}"), nameof(inputSchema)),
        };
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        foreach (var output in mapping.Outputs)
        {
            builder.AddColumn(output.Name, output.Type);
        }

        return new ImageColumnBinding<TResult>(mapping, inputSchema, column, kind, builder.ToSchema());
    }

    /// <summary>The input columns needed to give <paramref name="dependingColumns"/> of the output.</summary>
    /// <param name="dependingColumns">Output columns.</param>
    /// <returns>Input columns: those passed through, and the image column if an output column is among them.</returns>
    public IEnumerable<DataViewSchema.Column> Dependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var needed = new SortedSet<int>();
        foreach (var column in dependingColumns)
        {
            needed.Add(column.Index < InputSchema.Count ? column.Index : Column.Index);
        }

        return needed.Select(i => InputSchema[i]).ToList();
    }

    /// <summary>Makes the function that reads the current image of <paramref name="input"/> and computes its result.</summary>
    /// <param name="input">A row (or cursor) of <see cref="InputSchema"/>.</param>
    /// <returns>The function; call it once per row.</returns>
    public Func<TResult> MakeImageReader(DataViewRow input)
    {
        var column = input.Schema[Column.Index];
        switch (Kind)
        {
            case ImageColumnKind.Path:
            {
                var getter = input.GetGetter<ReadOnlyMemory<char>>(column);
                return () =>
                {
                    ReadOnlyMemory<char> path = default;
                    getter(ref path);
                    return Mapping.FromPath(path.ToString());
                };
            }

            case ImageColumnKind.Bytes:
            {
                var getter = input.GetGetter<VBuffer<byte>>(column);
                return () =>
                {
                    VBuffer<byte> buffer = default;
                    getter(ref buffer);
                    var bytes = new byte[buffer.Length];
                    buffer.CopyTo(bytes);
                    return Mapping.FromBytes(bytes);
                };
            }

            default:
            {
                var getter = input.GetGetter<MLImage>(column);
                return () =>
                {
                    MLImage image = null!;
                    getter(ref image);
                    return Mapping.FromBytes(EncodeImage(image));
                };
            }
        }
    }

    /// <summary>An <see cref="MLImage"/>'s pixels as a lossless PNG.</summary>
    private byte[] EncodeImage(MLImage? image)
    {
        var name = $"the MLImage in column '{Column.Name}'";
        if (image is null)
        {
            throw new InvalidImageException(null, BadImageReason.Empty, $"{name} is missing (null). Check that LoadImages found the file, or give a path or bytes column instead.");
        }

        var order = image.PixelFormat switch
        {
            MLPixelFormat.Bgra32 => PixelOrder.Bgra,
            MLPixelFormat.Rgba32 => PixelOrder.Rgba,
            var other => throw new InvalidImageException(null, BadImageReason.Undecodable, $"{name} has the pixel format {other}; only Bgra32 and Rgba32 are read."),
        };
        return PixelEncoder.EncodePng(image.Pixels, image.Width, image.Height, order, name, Mapping.MaxPixels);
    }
}
