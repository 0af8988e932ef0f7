using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace PretrainedKit.Interop;

/// <summary>
/// An ML.NET estimator over one image column that accepts the column types an ML.NET user has at hand: text (a file
/// path, as from a folder listing), a byte vector (the encoded file, as from <c>LoadRawImageBytes</c> or a <c>byte[]</c>
/// member) or an image (<see cref="MLImage"/>, as from <c>LoadImages</c> or an <see cref="MLImage"/> member marked with
/// <see cref="ImageTypeAttribute"/>). The column type is checked at <see cref="Fit"/> and <see cref="GetOutputSchema"/>; the
/// fitted <see cref="ImageColumnTransformer{TResult}"/> is lazy (rows are computed when they are read) and keeps every
/// input column. Fitting learns nothing: the transformer applies to any data with the column.
/// </summary>
/// <typeparam name="TResult">What one image gives (features, a prediction); the output columns read it.</typeparam>
/// <threadsafety>Immutable; safe to use from many threads at once.</threadsafety>
internal sealed class ImageColumnEstimator<TResult> : IEstimator<ITransformer>
    where TResult : class
{
    private readonly ImageColumnMapping<TResult> _mapping;

    /// <summary>Initializes a new instance of the <see cref="ImageColumnEstimator{TResult}"/> class.</summary>
    /// <param name="mapping">The image column, the output columns and how an image is computed.</param>
    public ImageColumnEstimator(ImageColumnMapping<TResult> mapping)
    {
        _mapping = mapping;
    }

    /// <inheritdoc/>
    public ITransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _ = ImageColumnBinding<TResult>.Bind(_mapping, input.Schema);
        return new ImageColumnTransformer<TResult>(_mapping);
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var name = _mapping.InputColumnName;
        var matches = inputSchema.Where(c => c.Name == name).ToList();
        if (matches.Count == 0)
        {
            throw new ArgumentException(ImageColumnMapping<TResult>.NoColumnMessage(name, inputSchema.Select(c => c.Name)), nameof(inputSchema));
        }

        var column = matches[^1];
        var scalar = column.Kind == SchemaShape.Column.VectorKind.Scalar;
        var known = (column.ItemType is TextDataViewType or ImageDataViewType && scalar) || (column.ItemType == NumberDataViewType.Byte && !scalar);
        if (!known)
        {
            var shown = scalar ? $"{column.ItemType}" : $"a vector of {column.ItemType}";
            throw new ArgumentException(ImageColumnMapping<TResult>.WrongTypeMessage(name, shown), nameof(inputSchema));
        }

        var outputs = _mapping.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var added = ShapeOf(_mapping.OutputOnlySchema());
        return new SchemaShape(inputSchema.Where(c => !outputs.Contains(c.Name)).Concat(added));
    }

    /// <summary>The shape of a schema, through ML.NET's own <c>SchemaShape.Create</c>.</summary>
    /// <remarks>
    /// ML.NET makes <see cref="SchemaShape.Column"/> values only internally (its constructor and <c>SchemaShape.Create</c>
    /// are internal, and no public API turns a <see cref="DataViewSchema"/> into a shape), so the one call is made through
    /// reflection rather than by rebuilding ML.NET's type-to-shape rules here. Only ML.NET itself asks estimators for
    /// shapes (an estimator chain's <c>GetOutputSchema</c>); <c>Fit</c>, <c>Transform</c> and prediction engines never do.
    /// </remarks>
    private static SchemaShape ShapeOf(DataViewSchema schema)
    {
        var create = typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, [typeof(DataViewSchema)])
            ?? throw new NotSupportedException($"This version of ML.NET ({typeof(SchemaShape).Assembly.GetName().Version}) has no SchemaShape.Create(DataViewSchema), so the output shape cannot be given; Fit and Transform still work.");
        return (SchemaShape)create.Invoke(null, [schema])!;
    }
}

/// <summary>What kind of image column an input schema holds.</summary>
internal enum ImageColumnKind
{
    /// <summary>Text: an image file path.</summary>
    Path,

    /// <summary>A byte vector: an encoded image file.</summary>
    Bytes,

    /// <summary>An <see cref="MLImage"/>: decoded pixels.</summary>
    Image,
}

/// <summary>The image column, the columns added and how one image fills them; shared by the estimator, the transformer and its rows.</summary>
/// <typeparam name="TResult">What one image gives.</typeparam>
/// <param name="InputColumnName">The image column.</param>
/// <param name="Outputs">The columns added, in order.</param>
/// <param name="FromPath">Computes the result of an image file (absolute or relative path).</param>
/// <param name="FromBytes">Computes the result of an encoded image.</param>
/// <param name="MaxPixels">The largest <see cref="MLImage"/> accepted (the model's or featurizer's pixel limit).</param>
/// <param name="SaveAdvice">What to do instead of <c>mlContext.Model.Save</c>: the end of the message that refuses it.</param>
internal sealed record ImageColumnMapping<TResult>(
    string InputColumnName,
    IReadOnlyList<ImageOutputColumn<TResult>> Outputs,
    Func<string, TResult> FromPath,
    Func<byte[], TResult> FromBytes,
    long MaxPixels,
    string SaveAdvice)
    where TResult : class
{
    /// <summary>The message for a schema without the image column.</summary>
    /// <param name="name">The column asked for.</param>
    /// <param name="columns">The columns there are.</param>
    /// <returns>The message.</returns>
    public static string NoColumnMessage(string name, IEnumerable<string> columns) =>
        $"The data has no column '{name}' (columns: {string.Join(", ", columns)}). Name the column of image paths, image bytes or images (MLImage) with inputColumnName.";

    /// <summary>The message for an image column of a type that is not read.</summary>
    /// <param name="name">The column.</param>
    /// <param name="type">Its type, as shown.</param>
    /// <returns>The message.</returns>
    public static string WrongTypeMessage(string name, string type) =>
        $"The column '{name}' holds {type}; it must hold image file paths (text), encoded image bytes (a byte vector, as LoadRawImageBytes or LoadFromEnumerable with byte[] give) or images (MLImage, as LoadImages gives).";

    /// <summary>A schema with only the output columns.</summary>
    /// <returns>The schema.</returns>
    public DataViewSchema OutputOnlySchema()
    {
        var builder = new DataViewSchema.Builder();
        foreach (var output in Outputs)
        {
            builder.AddColumn(output.Name, output.Type);
        }

        return builder.ToSchema();
    }
}

/// <summary>One column added by the transformer: its name, its type and how its value is read from the row's result.</summary>
/// <typeparam name="TResult">What one image gives.</typeparam>
internal sealed class ImageOutputColumn<TResult>
    where TResult : class
{
    private readonly Func<Func<TResult>, Delegate> _makeGetter;

    private ImageOutputColumn(string name, DataViewType type, Func<Func<TResult>, Delegate> makeGetter)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Type = type;
        _makeGetter = makeGetter;
    }

    /// <summary>Gets the column name.</summary>
    public string Name { get; }

    /// <summary>Gets the column type.</summary>
    public DataViewType Type { get; }

    /// <summary>A text column.</summary>
    /// <param name="name">The column name.</param>
    /// <param name="value">Its value in a result.</param>
    /// <returns>The column.</returns>
    public static ImageOutputColumn<TResult> Text(string name, Func<TResult, string> value) =>
        new(name, TextDataViewType.Instance, current => (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> dst) => dst = value(current()).AsMemory()));

    /// <summary>A vector of <paramref name="size"/> floats.</summary>
    /// <param name="name">The column name.</param>
    /// <param name="size">The vector length; every result gives exactly this many.</param>
    /// <param name="value">Its value in a result.</param>
    /// <returns>The column.</returns>
    public static ImageOutputColumn<TResult> Floats(string name, int size, Func<TResult, IReadOnlyList<float>> value) =>
        new(name, new VectorDataViewType(NumberDataViewType.Single, size), current => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) => Fill(ref dst, value(current()))));

    /// <summary>A vector of <paramref name="size"/> texts.</summary>
    /// <param name="name">The column name.</param>
    /// <param name="size">The vector length; every result gives exactly this many.</param>
    /// <param name="value">Its value in a result.</param>
    /// <returns>The column.</returns>
    public static ImageOutputColumn<TResult> Texts(string name, int size, Func<TResult, IReadOnlyList<string>> value) =>
        new(name, new VectorDataViewType(TextDataViewType.Instance, size), current => (ValueGetter<VBuffer<ReadOnlyMemory<char>>>)((ref VBuffer<ReadOnlyMemory<char>> dst) =>
        {
            var texts = value(current());
            var editor = VBufferEditor.Create(ref dst, texts.Count);
            for (var i = 0; i < texts.Count; i++)
            {
                editor.Values[i] = texts[i].AsMemory();
            }

            dst = editor.Commit();
        }));

    /// <summary>Makes the column's <see cref="ValueGetter{TValue}"/> over a row's current result.</summary>
    /// <param name="current">Gives the result of the row's current image (computed once per row).</param>
    /// <returns>A <see cref="ValueGetter{TValue}"/> of the column's type.</returns>
    public Delegate MakeGetter(Func<TResult> current) => _makeGetter(current);

    private static void Fill(ref VBuffer<float> dst, IReadOnlyList<float> values)
    {
        var editor = VBufferEditor.Create(ref dst, values.Count);
        for (var i = 0; i < values.Count; i++)
        {
            editor.Values[i] = values[i];
        }

        dst = editor.Commit();
    }
}
