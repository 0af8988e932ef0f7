namespace PretrainedKit.Imaging;

/// <summary>Why an image could not be used.</summary>
public enum BadImageReason
{
    /// <summary>The file has no bytes.</summary>
    Empty,

    /// <summary>The content is not an image of a supported kind (JPEG, PNG, BMP, GIF or WebP), whatever its extension says.</summary>
    NotAnImage,

    /// <summary>The file ends before the image data does.</summary>
    Truncated,

    /// <summary>The header was recognised but the image data could not be decoded.</summary>
    Undecodable,

    /// <summary>The header declares more pixels than <see cref="ImagePreprocessingOptions.MaxPixels"/> allows, the file is larger than <see cref="ImageLimits.MaxFileBytes"/>, or decoding it needs more memory than <see cref="ImageLimits.DecodeMemoryBudgetBytes"/>.</summary>
    TooLarge,

    /// <summary>The file could not be read (missing, no permission, a folder, a dangling link or a loop of links, a named pipe or a device, a path too long, an I/O error).</summary>
    Unreadable,
}

/// <summary>Thrown when an image cannot be used: the message names the file, what is wrong and how to fix it.</summary>
public sealed class InvalidImageException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="InvalidImageException"/> class.</summary>
    public InvalidImageException()
        : this(null, BadImageReason.Undecodable, "The image could not be used.")
    {
    }

    /// <summary>Initializes a new instance of the <see cref="InvalidImageException"/> class.</summary>
    /// <param name="message">The message.</param>
    public InvalidImageException(string message)
        : this(null, BadImageReason.Undecodable, message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="InvalidImageException"/> class.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public InvalidImageException(string message, Exception innerException)
        : this(null, BadImageReason.Undecodable, message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="InvalidImageException"/> class.</summary>
    /// <param name="path">The file, or <see langword="null"/> for a stream or bytes.</param>
    /// <param name="reason">Why the image cannot be used.</param>
    /// <param name="detail">What exactly is wrong.</param>
    /// <param name="innerException">The cause, if any.</param>
    public InvalidImageException(string? path, BadImageReason reason, string detail, Exception? innerException = null)
        : base(Format(path, detail), innerException)
    {
        Path = path;
        Reason = reason;
        Detail = detail;
    }

    /// <summary>Gets the absolute path of the file, or <see langword="null"/> when the image came from a stream or bytes.</summary>
    public string? Path { get; }

    /// <summary>Gets why the image cannot be used.</summary>
    public BadImageReason Reason { get; }

    /// <summary>Gets what is wrong, without the path.</summary>
    public string Detail { get; }

    /// <summary>The message: the path (cut in the middle when it runs past 1,000 characters, so it stays one readable line) and the detail.</summary>
    private static string Format(string? path, string detail) =>
        path is null ? detail : $"{(path.Length > 1000 ? Internal.FileGuard.Shorten(path, 200) : path)}: {detail}";
}
