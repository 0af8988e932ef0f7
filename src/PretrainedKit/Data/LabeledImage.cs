namespace PretrainedKit.Data;

/// <summary>An image file and its class label.</summary>
/// <param name="Path">The image file.</param>
/// <param name="Label">The class name.</param>
public sealed record LabeledImage(string Path, string Label);

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
}

/// <summary>One problem found while validating a dataset.</summary>
/// <param name="Path">The file or folder concerned (absolute).</param>
/// <param name="Kind">The kind of problem.</param>
/// <param name="Message">What is wrong and how to fix it.</param>
public sealed record DatasetProblem(string Path, DatasetProblemKind Kind, string Message)
{
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
