namespace PretrainedKit.Serialization;

/// <summary>Thrown by <c>Load</c> when a file is not a usable PretrainedKit model: corrupt, truncated, from a newer version or made with other backbone weights.</summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="ModelFormatException"/> class.</summary>
    public ModelFormatException()
        : this("The model file cannot be used.")
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelFormatException"/> class.</summary>
    /// <param name="message">The message.</param>
    public ModelFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelFormatException"/> class.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ModelFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelFormatException"/> class.</summary>
    /// <param name="path">The model file.</param>
    /// <param name="detail">What is wrong and how to fix it.</param>
    /// <param name="innerException">The cause, if any.</param>
    public ModelFormatException(string path, string detail, Exception? innerException)
        : base($"{path}: {detail}", innerException)
    {
        Path = path;
    }

    /// <summary>Gets the model file, when known.</summary>
    public string? Path { get; }
}
