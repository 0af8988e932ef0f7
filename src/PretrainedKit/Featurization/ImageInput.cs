namespace PretrainedKit.Featurization;

/// <summary>One image to featurise: a file (read by the layer) or encoded bytes already in memory.</summary>
/// <param name="Path">The absolute path of the file, or of where the bytes came from; <see langword="null"/> for bytes without a file.</param>
/// <param name="Bytes">The encoded image, or <see langword="null"/> to read <paramref name="Path"/>.</param>
internal readonly record struct ImageInput(string? Path, byte[]? Bytes)
{
    /// <summary>An image file, read when it is featurised.</summary>
    /// <param name="path">The absolute path.</param>
    /// <returns>The input.</returns>
    public static ImageInput FromFile(string path) => new(path, null);

    /// <summary>Encoded bytes held in memory.</summary>
    /// <param name="bytes">The encoded image.</param>
    /// <returns>The input.</returns>
    public static ImageInput FromBytes(byte[] bytes) => new(null, bytes);

    /// <summary>
    /// Gets small synthetic images for warm-up, made in memory: a 256×256 JPEG (the most common case: that decoder, the
    /// resampler reducing) and a 32×32 PNG (the other common decoder, the resampler enlarging).
    /// </summary>
    /// <returns>The JPEG, then the PNG.</returns>
    public static (ImageInput Jpeg, ImageInput Png) WarmUpImages() =>
        (FromBytes(Imaging.ImageDecoder.EncodeWarmUpImage(SkiaSharp.SKEncodedImageFormat.Jpeg, 256)),
         FromBytes(Imaging.ImageDecoder.EncodeWarmUpImage(SkiaSharp.SKEncodedImageFormat.Png, 32)));

    /// <summary>Reads the encoded bytes (the file, once) or returns those held.</summary>
    /// <returns>The encoded image.</returns>
    public byte[] ReadBytes() => Bytes ?? Imaging.ImageDecoder.ReadFile(Path!);
}
