namespace PretrainedKit.Imaging;

/// <summary>
/// Process-wide limits on image input, shared by every model, builder and call in the process: the largest image file
/// read, the memory that all concurrent decodes may use together, and the pixel cap that no setting can lift.
/// </summary>
/// <remarks>
/// These are deliberately not part of <see cref="ImagePreprocessingOptions"/>: those options are saved in the model file
/// and describe how a model sees an image, while these limits describe what the machine running it can afford. A model
/// file must never be able to raise them (a file from elsewhere could otherwise switch the guards off), and the memory
/// budget only makes sense when every concurrent call shares it.
/// </remarks>
/// <threadsafety>The properties may be read and set from any thread; a change applies to reads and decodes that start after it.</threadsafety>
public static class ImageLimits
{
    /// <summary>The default largest image file: 256 MiB.</summary>
    /// <remarks>
    /// A 100-megapixel photo is about 20 to 60 MB as JPEG and up to about 200 MB as an 8-bit RGB PNG; nothing larger is
    /// a plausible training or prediction image, and the file is held in memory whole while it is decoded.
    /// </remarks>
    public const long DefaultMaxFileBytes = 256L * 1024 * 1024;

    /// <summary>
    /// The most pixels that <see cref="ImagePreprocessingOptions.MaxPixels"/> may allow: 1,000,000,000 (ten times the
    /// default). One such image needs 4 GB just for its decoded 8-bit RGBA pixels; no model file can lift this cap.
    /// </summary>
    public const long MaxPixelsCap = 1_000_000_000;

    /// <summary>The largest default decode budget: 1.5 GiB.</summary>
    public const long DefaultDecodeMemoryBudgetCeiling = 1536L * 1024 * 1024;

    private static long _maxFileBytes = DefaultMaxFileBytes;

    /// <summary>
    /// Gets or sets the largest image file read, in bytes. Larger files (and streams) are refused with
    /// <see cref="BadImageReason.TooLarge"/> from their length, before they are read; a stream is refused as soon as it
    /// yields more.
    /// </summary>
    /// <value>The default is <see cref="DefaultMaxFileBytes"/> (256 MiB).</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not positive, or not below 2 GiB (the largest array .NET allocates).</exception>
    public static long MaxFileBytes
    {
        get => Interlocked.Read(ref _maxFileBytes);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, (long)Array.MaxLength);
            Interlocked.Exchange(ref _maxFileBytes, value);
        }
    }

    /// <summary>
    /// Gets the default decode memory budget: 1.5 GiB, or half the memory available to the process (which honours a
    /// container's limit) if that is less.
    /// </summary>
    /// <remarks>
    /// 1.5 GiB holds the costliest image that the default 100-megapixel limit lets through (a 16-bit RGBA, interlaced
    /// PNG: about 1.3 GB of decoder buffer and pixels), so every image within the default limit decodes, one such image
    /// at a time; ordinary photos need a few megabytes each and never wait.
    /// </remarks>
    public static long DefaultDecodeMemoryBudgetBytes
    {
        get
        {
            var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
            return available > 0 ? Math.Min(DefaultDecodeMemoryBudgetCeiling, available / 2) : DefaultDecodeMemoryBudgetCeiling;
        }
    }

    /// <summary>
    /// Gets or sets the memory, in bytes, that all image decodes in the process may use at once (decoded pixels and the
    /// decoders' own buffers, estimated from each image's header before decoding). A decode that does not fit waits
    /// until others finish; an image that needs more than the whole budget is refused with <see cref="BadImageReason.TooLarge"/>.
    /// </summary>
    /// <value>The default is <see cref="DefaultDecodeMemoryBudgetBytes"/>.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not positive.</exception>
    public static long DecodeMemoryBudgetBytes
    {
        get => DecodeBudget.Shared.Capacity;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            DecodeBudget.Shared.Capacity = value;
        }
    }
}
