namespace PretrainedKit.Imaging;

/// <summary>
/// How every image is normalised before it reaches the backbone. The same settings, and the same code,
/// are used at training and at prediction time; they are saved in the model file so that a loaded model
/// sees images exactly as the trained one did.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record ImagePreprocessingOptions
{
    /// <summary>The default pixel limit: 100 megapixels.</summary>
    public const long DefaultMaxPixels = 100_000_000;

    /// <summary>Gets the colour that transparent pixels are composited onto.</summary>
    /// <value>The default is <see cref="RgbColor.White"/>, which measurably helps photos with transparency.</value>
    public RgbColor Background { get; init; } = RgbColor.White;

    /// <summary>Gets how an image that is not square is fitted to the backbone's input.</summary>
    /// <value>The default is <see cref="ResizeMode.Stretch"/>: nothing is cut off.</value>
    public ResizeMode ResizeMode { get; init; } = ResizeMode.Stretch;

    /// <summary>
    /// Gets the largest image, in pixels (width times height), that is decoded. Larger images are refused
    /// from their header, before any pixel is decoded, so that a hostile file cannot exhaust memory.
    /// </summary>
    /// <value>The default is <see cref="DefaultMaxPixels"/> (100 megapixels); at most <see cref="ImageLimits.MaxPixelsCap"/>.</value>
    public long MaxPixels { get; init; } = DefaultMaxPixels;

    /// <summary>Gets the default options.</summary>
    public static ImagePreprocessingOptions Default { get; } = new();

    internal void Validate()
    {
        if (MaxPixels <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPixels), MaxPixels, "MaxPixels must be positive.");
        }

        if (MaxPixels > ImageLimits.MaxPixelsCap)
        {
            // Also guards model files: a manifest cannot switch the pixel guard off (for example with 9e18).
            throw new ArgumentOutOfRangeException(
                nameof(MaxPixels),
                MaxPixels,
                $"MaxPixels must be at most {ImageLimits.MaxPixelsCap:N0} (ImageLimits.MaxPixelsCap): one such image already needs 4 GB of decoded pixels. Downscale larger images before using them.");
        }

        if (!Enum.IsDefined(ResizeMode))
        {
            throw new ArgumentOutOfRangeException(nameof(ResizeMode), ResizeMode, "Unknown resize mode.");
        }
    }
}

/// <summary>How an image is fitted to the backbone's square input.</summary>
public enum ResizeMode
{
    /// <summary>Scale width and height independently to the input size; nothing is cut off, the aspect ratio changes.</summary>
    Stretch = 0,

    /// <summary>Scale the shorter side to the input size and cut the centre out of the longer side (the ImageNet convention).</summary>
    CenterCrop = 1,

    /// <summary>Scale the longer side to the input size and fill the rest with the background colour.</summary>
    Pad = 2,
}

/// <summary>An opaque 8-bit RGB colour.</summary>
/// <param name="R">Red, 0 to 255.</param>
/// <param name="G">Green, 0 to 255.</param>
/// <param name="B">Blue, 0 to 255.</param>
public readonly record struct RgbColor(byte R, byte G, byte B)
{
    /// <summary>Gets white (255, 255, 255).</summary>
    public static RgbColor White => new(255, 255, 255);

    /// <summary>Gets black (0, 0, 0).</summary>
    public static RgbColor Black => new(0, 0, 0);

    /// <summary>Formats the colour as <c>#RRGGBB</c>.</summary>
    /// <returns>The colour in hexadecimal notation.</returns>
    public override string ToString() => $"#{R:X2}{G:X2}{B:X2}";

    /// <summary>Parses <c>#RRGGBB</c> or <c>RRGGBB</c>.</summary>
    /// <param name="text">The text to parse.</param>
    /// <returns>The colour.</returns>
    /// <exception cref="FormatException">The text is not six hexadecimal digits.</exception>
    public static RgbColor Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var hex = text.StartsWith('#') ? text[1..] : text;
        if (hex.Length != 6 || !uint.TryParse(hex, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var value))
        {
            throw new FormatException($"'{text}' is not a colour: expected #RRGGBB, for example #FFFFFF.");
        }

        return new RgbColor((byte)(value >> 16), (byte)(value >> 8), (byte)value);
    }
}
