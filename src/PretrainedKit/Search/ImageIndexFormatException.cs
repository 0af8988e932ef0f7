namespace PretrainedKit.Search;

/// <summary>Thrown by <see cref="ImageIndex.Load"/> when a file is not a usable PretrainedKit index: corrupt, truncated, altered, too large or from a newer format version.</summary>
public sealed class ImageIndexFormatException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="ImageIndexFormatException"/> class.</summary>
    public ImageIndexFormatException()
        : this("The index file cannot be used.")
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ImageIndexFormatException"/> class.</summary>
    /// <param name="message">The message.</param>
    public ImageIndexFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ImageIndexFormatException"/> class.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ImageIndexFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ImageIndexFormatException"/> class.</summary>
    /// <param name="path">The index file.</param>
    /// <param name="detail">What is wrong and how to fix it.</param>
    /// <param name="innerException">The cause, if any.</param>
    public ImageIndexFormatException(string path, string detail, Exception? innerException)
        : base($"{path}: {detail}", innerException)
    {
        Path = path;
    }

    /// <summary>Gets the index file, when known.</summary>
    public string? Path { get; }
}
