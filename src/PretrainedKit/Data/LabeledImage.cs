namespace PretrainedKit.Data;

/// <summary>An image file and its class label.</summary>
/// <param name="Path">The image file.</param>
/// <param name="Label">The class name.</param>
public sealed record LabeledImage(string Path, string Label)
{
    /// <summary>
    /// Reads a list of labelled images from a CSV file, for <c>ImageClassifierBuilder.FromImages</c>,
    /// <c>WithValidationImages</c> or <c>ImageClassifierModel.EvaluateAsync</c>. The first line is a header naming the
    /// columns <c>path</c> and <c>label</c> (any case, any order; other columns are ignored), then one row per image.
    /// Fields follow RFC 4180: a path or label that holds a comma, a double quote or a line break is written in double
    /// quotes, with each quote inside doubled (<c>"a ""b"", c.png",cat</c>). The file is UTF-8, with or without a byte
    /// order mark; blank lines are ignored; relative paths are resolved against the folder of the CSV file.
    /// </summary>
    /// <param name="path">The CSV file.</param>
    /// <returns>The images, in file order, with absolute paths.</returns>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="FileNotFoundException">The CSV file does not exist; the message names its absolute path.</exception>
    /// <exception cref="InvalidDatasetException">
    /// The file cannot be used: no header or no <c>path</c>/<c>label</c> column, or bad rows (a missing or extra column,
    /// an empty path or label, a quote out of place, an image that does not exist, a path listed twice). Every problem
    /// is listed at once, each naming the CSV file and its line (<see cref="DatasetProblem.Line"/>).
    /// </exception>
    public static IReadOnlyList<LabeledImage> ReadCsv(string path) => LabeledImageCsv.Read(path);
}

/// <summary>An image that was left out, and why.</summary>
/// <param name="Path">The absolute path of the file.</param>
/// <param name="Reason">The kind of problem.</param>
/// <param name="Message">What is wrong and how to fix it.</param>
public sealed record SkippedImage(string Path, Imaging.BadImageReason Reason, string Message);

/// <summary>The kinds of problem that make a dataset unusable.</summary>
public enum DatasetProblemKind
{
    /// <summary>Fewer than two classes.</summary>
    TooFewClasses,

    /// <summary>A class with no usable image.</summary>
    EmptyClass,

    /// <summary>An image that cannot be used (reported in strict mode).</summary>
    BadImage,

    /// <summary>A class in an evaluation or validation folder that the model does not know.</summary>
    UnknownClass,

    /// <summary>A label that is empty or white space.</summary>
    InvalidLabel,

    /// <summary>A line of a CSV file that cannot be read as a row: no header, a missing or extra column, a quote out of place, an empty path.</summary>
    InvalidRow,

    /// <summary>A listed image file that does not exist.</summary>
    MissingFile,

    /// <summary>An image listed more than once.</summary>
    DuplicateImage,
}

/// <summary>One problem found while validating a dataset.</summary>
/// <param name="Path">The file or folder concerned (absolute).</param>
/// <param name="Kind">The kind of problem.</param>
/// <param name="Message">What is wrong and how to fix it.</param>
public sealed record DatasetProblem(string Path, DatasetProblemKind Kind, string Message)
{
    /// <summary>Gets the line of the CSV file the problem is on (from 1), or <see langword="null"/> when it does not come from a CSV file.</summary>
    public int? Line { get; init; }

    /// <summary>Formats the problem as one line.</summary>
    /// <returns>The kind, path and message.</returns>
    public override string ToString() => $"{Kind}: {Message}";
}

/// <summary>
/// Thrown, before any expensive work, when a dataset cannot be used. <see cref="Problems"/> lists every problem at once,
/// each with the file or folder and how to fix it.
/// </summary>
public sealed class InvalidDatasetException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="InvalidDatasetException"/> class.</summary>
    public InvalidDatasetException()
        : this("The dataset cannot be used.")
    {
    }

    /// <summary>Initializes a new instance of the <see cref="InvalidDatasetException"/> class.</summary>
    /// <param name="message">The message.</param>
    public InvalidDatasetException(string message)
        : base(message)
    {
        Problems = [];
    }

    /// <summary>Initializes a new instance of the <see cref="InvalidDatasetException"/> class.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public InvalidDatasetException(string message, Exception innerException)
        : base(message, innerException)
    {
        Problems = [];
    }

    /// <summary>Initializes a new instance of the <see cref="InvalidDatasetException"/> class.</summary>
    /// <param name="problems">Every problem found.</param>
    public InvalidDatasetException(IReadOnlyList<DatasetProblem> problems)
        : base(BuildMessage(problems))
    {
        Problems = problems;
    }

    /// <summary>Gets every problem found.</summary>
    public IReadOnlyList<DatasetProblem> Problems { get; }

    private static string BuildMessage(IReadOnlyList<DatasetProblem> problems) =>
        $"The dataset cannot be used ({problems.Count} problem{(problems.Count == 1 ? string.Empty : "s")}):"
        + string.Concat(problems.Select(p => $"{Environment.NewLine}  - {p.Message}"));
}
