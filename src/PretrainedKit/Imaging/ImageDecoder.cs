using SkiaSharp;

namespace PretrainedKit.Imaging;

/// <summary>
/// The one place where images are decoded and normalised, at training and at prediction time alike:
/// format by content, pixel limit from the header, EXIF orientation, alpha onto the background, any
/// colour type to 8-bit RGB, then resize to the backbone's input.
/// </summary>
/// <threadsafety>Safe to call from many threads at once; concurrent decodes share the process-wide <see cref="DecodeBudget"/>.</threadsafety>
internal static class ImageDecoder
{
    /// <summary>
    /// Reads a whole file, mapping every I/O failure to an <see cref="InvalidImageException"/> that names it. The path is
    /// judged before it is opened (<see cref="ImageFile"/>): links are followed to their final target, and anything but a
    /// regular file of at most <paramref name="maxBytes"/> bytes is refused without being opened or read.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="maxBytes">The largest file read; <see langword="null"/> for <see cref="ImageLimits.MaxFileBytes"/>.</param>
    public static byte[] ReadFile(string path, long? maxBytes = null) => ImageFile.Read(path, maxBytes ?? ImageLimits.MaxFileBytes);

    /// <summary>Reads a stream to its end (not closed), refusing it as soon as it yields more than <see cref="ImageLimits.MaxFileBytes"/>.</summary>
    public static byte[] ReadStream(Stream stream, long? maxBytes = null) => ImageFile.Read(stream, maxBytes ?? ImageLimits.MaxFileBytes);

    /// <summary>
    /// Encodes a small synthetic image (one colour) for warm-up, so that the first real image does not pay for the first
    /// use of that format's decoder and of the resampler's path (smaller than the input size: enlarged; larger: reduced).
    /// </summary>
    /// <param name="format">PNG or JPEG.</param>
    /// <param name="size">The edge in pixels.</param>
    /// <returns>The encoded image.</returns>
    public static byte[] EncodeWarmUpImage(SKEncodedImageFormat format, int size)
    {
        using var bitmap = new SKBitmap(size, size, SKColorType.Rgba8888, SKAlphaType.Premul);
        bitmap.Erase(new SKColor(90, 140, 200));
        using var data = bitmap.Encode(format, 90);
        return data.ToArray();
    }

    /// <summary>Reads a stream to its end asynchronously (not closed), refusing it as soon as it yields more than <see cref="ImageLimits.MaxFileBytes"/>.</summary>
    public static Task<byte[]> ReadStreamAsync(Stream stream, CancellationToken cancellationToken) =>
        ImageFile.ReadAsync(stream, ImageLimits.MaxFileBytes, cancellationToken);

    /// <summary>Checks the format and the declared size from the header without decoding pixels.</summary>
    /// <returns>The declared width and height.</returns>
    public static (int Width, int Height) Probe(byte[] bytes, string? path, ImagePreprocessingOptions options)
    {
        using var codec = OpenCodec(bytes, path, options);
        return (codec.Info.Width, codec.Info.Height);
    }

    /// <summary>Decodes and normalises an image into <paramref name="rgb"/>: interleaved 8-bit RGB, <paramref name="width"/> x <paramref name="height"/>.</summary>
    /// <remarks>
    /// The memory the decode needs is estimated from the header (<see cref="DecodeCost"/>) and held in the process-wide
    /// <see cref="DecodeBudget"/> while it runs: a decode that does not fit waits for others to finish; an image that needs
    /// more than the whole budget is refused as <see cref="BadImageReason.TooLarge"/>.
    /// </remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting for the budget.</exception>
    public static void DecodeNormalized(byte[] bytes, string? path, ImagePreprocessingOptions options, int width, int height, Span<byte> rgb, CancellationToken cancellationToken = default)
    {
        if (rgb.Length < width * height * 3)
        {
            throw new ArgumentException("The output buffer is too small.", nameof(rgb));
        }

        using var codec = OpenCodec(bytes, path, options);
        var size = DecodeSize(codec, width, height);
        using var lease = AcquireBudget(bytes, path, codec, size, width, height, cancellationToken);
        using var decoded = DecodeFirstFrame(codec, bytes, path, size);
        var origin = codec.EncodedOrigin;
        Render(decoded, codec.Info.AlphaType == SKAlphaType.Opaque, origin, options, width, height, rgb);
    }

    private static SKCodec OpenCodec(byte[] bytes, string? path, ImagePreprocessingOptions options)
    {
        if (bytes.Length == 0)
        {
            throw new InvalidImageException(path, BadImageReason.Empty, "the file is empty (0 bytes). Remove it or replace it with a real image.");
        }

        var format = ImageFormatSniffer.Sniff(bytes.AsSpan(0, Math.Min(bytes.Length, ImageFormatSniffer.HeaderLength)));
        if (format == SniffedFormat.Unknown && ImageFormatSniffer.IsTruncatedSignature(bytes))
        {
            throw new InvalidImageException(path, BadImageReason.Truncated, $"the file ends after {bytes.Length} bytes, inside an image signature: it was cut short. Re-export or re-download the image.");
        }

        if (format == SniffedFormat.Unknown)
        {
            throw new InvalidImageException(
                path,
                BadImageReason.NotAnImage,
                $"the content is not a JPEG, PNG, BMP, GIF or WebP image ({ImageFormatSniffer.Describe(bytes.AsSpan(0, Math.Min(bytes.Length, 16)))}), whatever its extension says. Remove it or convert it to one of those formats.");
        }

        if (ImageHeader.TryReadSize(bytes, format) is var (zeroWidth, zeroHeight) && (zeroWidth == 0 || zeroHeight == 0))
        {
            throw new InvalidImageException(
                path,
                BadImageReason.Undecodable,
                $"the header declares an invalid size, {zeroWidth}x{zeroHeight}: an image needs at least one pixel each way. Re-export the image.");
        }

        if (ImageHeader.TryReadSize(bytes, format) is var (declaredWidth, declaredHeight) && declaredWidth * declaredHeight > options.MaxPixels)
        {
            throw new InvalidImageException(
                path,
                BadImageReason.TooLarge,
                $"the header declares {declaredWidth}x{declaredHeight} = {declaredWidth * declaredHeight:N0} pixels, more than the limit of {options.MaxPixels:N0}. Downscale the image, or raise MaxPixels if you trust it.");
        }

        if (format == SniffedFormat.Png && !ImageHeader.PngHasEnd(bytes))
        {
            throw new InvalidImageException(path, BadImageReason.Truncated, $"the PNG has no closing IEND chunk: the file was cut short after {bytes.Length:N0} bytes. Re-export or re-download the image.");
        }

        SKCodec? codec;
        SKCodecResult result;
        var stream = new SKMemoryStream(bytes);
        codec = SKCodec.Create(stream, out result); // The codec owns the stream from here on.
        if (codec is null)
        {
            stream.Dispose();
        }

        if (codec is null)
        {
            var reason = result == SKCodecResult.IncompleteInput ? BadImageReason.Truncated : BadImageReason.Undecodable;
            var what = reason == BadImageReason.Truncated ? "the file ends inside the image header (truncated)" : $"the {format} header cannot be read ({result})";
            throw new InvalidImageException(path, reason, what + ". Re-export or re-download the image.");
        }

        var info = codec.Info;
        var pixels = (long)info.Width * info.Height;
        if (info.Width <= 0 || info.Height <= 0)
        {
            codec.Dispose();
            throw new InvalidImageException(path, BadImageReason.Undecodable, $"the header declares an empty image ({info.Width}x{info.Height}).");
        }

        if (pixels > options.MaxPixels)
        {
            codec.Dispose();
            throw new InvalidImageException(
                path,
                BadImageReason.TooLarge,
                $"the header declares {info.Width}x{info.Height} = {pixels:N0} pixels, more than the limit of {options.MaxPixels:N0}. Downscale the image, or raise MaxPixels if you trust it.");
        }

        return codec;
    }

    /// <summary>The size the image is decoded at before the final resize.</summary>
    private static SKSizeI DecodeSize(SKCodec codec, int targetWidth, int targetHeight)
    {
        // Decode-time downscaling (JPEG and WebP support it) keeps big photos cheap, but never below twice the target,
        // so the final resize still has detail to average.
        var info = codec.Info;
        var shortSide = Math.Min(info.Width, info.Height);
        var wanted = 2f * Math.Max(targetWidth, targetHeight) / shortSide;
        return wanted < 1f ? codec.GetScaledDimensions(wanted) : new SKSizeI(info.Width, info.Height);
    }

    private static DecodeBudget.Lease AcquireBudget(byte[] bytes, string? path, SKCodec codec, SKSizeI size, int width, int height, CancellationToken cancellationToken)
    {
        var format = ImageFormatSniffer.Sniff(bytes.AsSpan(0, Math.Min(bytes.Length, ImageFormatSniffer.HeaderLength)));
        var header = bytes.AsSpan(0, Math.Min(bytes.Length, 64 * 1024));
        var need = DecodeCost.Estimate(header, format, codec.Info.Width, codec.Info.Height, size.Width, size.Height, width, height);
        var budget = DecodeBudget.Shared;
        return budget.Acquire(need, cancellationToken) ?? throw new InvalidImageException(
            path,
            BadImageReason.TooLarge,
            $"decoding this {codec.Info.Width}x{codec.Info.Height} {format} needs about {Internal.FileGuard.Mib(need)} of memory, more than the whole decode memory budget of {Internal.FileGuard.Mib(budget.Capacity)} "
            + "(ImageLimits.DecodeMemoryBudgetBytes). Downscale the image, or raise the budget if the machine has the memory.");
    }

    private static SKBitmap DecodeFirstFrame(SKCodec codec, byte[] bytes, string? path, SKSizeI size)
    {
        var decodeInfo = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var bitmap = new SKBitmap();
        try
        {
            if (!bitmap.TryAllocPixels(decodeInfo))
            {
                throw new InvalidImageException(path, BadImageReason.TooLarge, $"there is not enough memory to decode {size.Width}x{size.Height} pixels.");
            }

            var result = codec.GetPixels(decodeInfo, bitmap.GetPixels(), new SKCodecOptions(0));
            switch (result)
            {
                case SKCodecResult.Success:
                    return bitmap;
                case SKCodecResult.IncompleteInput:
                    throw new InvalidImageException(path, BadImageReason.Truncated, $"the file ends before the image data does (truncated after {bytes.Length:N0} bytes). Re-export or re-download the image.");
                default:
                    throw new InvalidImageException(path, BadImageReason.Undecodable, $"the image data cannot be decoded ({result}). Re-export the image as PNG or JPEG.");
            }
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
    }

    private static void Render(SKBitmap decoded, bool opaque, SKEncodedOrigin origin, ImagePreprocessingOptions options, int width, int height, Span<byte> rgb)
    {
        var w = (float)decoded.Width;
        var h = (float)decoded.Height;
        var swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        var orientedWidth = swap ? h : w;
        var orientedHeight = swap ? w : h;

        // Maps stored pixels to upright ones (x' = scaleX*x + skewX*y + transX, y' = skewY*x + scaleY*y + transY).
        var orient = origin switch
        {
            SKEncodedOrigin.TopRight => new SKMatrix(-1, 0, w, 0, 1, 0, 0, 0, 1),
            SKEncodedOrigin.BottomRight => new SKMatrix(-1, 0, w, 0, -1, h, 0, 0, 1),
            SKEncodedOrigin.BottomLeft => new SKMatrix(1, 0, 0, 0, -1, h, 0, 0, 1),
            SKEncodedOrigin.LeftTop => new SKMatrix(0, 1, 0, 1, 0, 0, 0, 0, 1),
            SKEncodedOrigin.RightTop => new SKMatrix(0, -1, h, 1, 0, 0, 0, 0, 1),
            SKEncodedOrigin.RightBottom => new SKMatrix(0, -1, h, -1, 0, w, 0, 0, 1),
            SKEncodedOrigin.LeftBottom => new SKMatrix(0, 1, 0, -1, 0, w, 0, 0, 1),
            _ => SKMatrix.Identity,
        };

        float scaleX, scaleY, offsetX = 0, offsetY = 0;
        switch (options.ResizeMode)
        {
            case ResizeMode.CenterCrop:
                scaleX = scaleY = Math.Max(width / orientedWidth, height / orientedHeight);
                offsetX = (width - (orientedWidth * scaleX)) / 2;
                offsetY = (height - (orientedHeight * scaleY)) / 2;
                break;
            case ResizeMode.Pad:
                scaleX = scaleY = Math.Min(width / orientedWidth, height / orientedHeight);
                offsetX = (width - (orientedWidth * scaleX)) / 2;
                offsetY = (height - (orientedHeight * scaleY)) / 2;
                break;
            default:
                scaleX = width / orientedWidth;
                scaleY = height / orientedHeight;
                break;
        }

        var minScale = Math.Min(scaleX, scaleY);
        // The common case (an upright opaque image, shrunk by less than half, covering the whole target) is resampled here
        // with the same filter and pixel mapping as the canvas path below, straight into RGB: the canvas and the RGBA copy
        // cost more than the JPEG decoder does (about 2 ms against 0.4 ms for the resampler, 256x256 to 224x224, measured
        // side by side), and within one level per channel of the canvas (ImageDecoderTests).
        if (opaque && origin == SKEncodedOrigin.TopLeft && options.ResizeMode != ResizeMode.Pad && minScale is >= 0.5f and < 1f)
        {
            BilinearResampler.Resample(decoded.GetPixelSpan(), decoded.RowBytes, decoded.Width, decoded.Height, scaleX, scaleY, offsetX, offsetY, width, height, rgb);
            return;
        }

        var matrix = new SKMatrix(scaleX, 0, offsetX, 0, scaleY, offsetY, 0, 0, 1).PreConcat(orient);
        // Mipmaps only where the image shrinks by more than half (they cost milliseconds to build); bilinear for mild
        // shrinking; Mitchell cubic for enlarging.
        var sampling = minScale < 0.5f
            ? new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear)
            : minScale < 1f
                ? new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None)
                : new SKSamplingOptions(SKCubicResampler.Mitchell);

        var targetInfo = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var target = new SKBitmap(targetInfo);
        decoded.SetImmutable(); // Lets the image below share the decoded pixels instead of copying them.
        using (var canvas = new SKCanvas(target))
        using (var image = SKImage.FromBitmap(decoded))
        using (var paint = new SKPaint { BlendMode = SKBlendMode.SrcOver })
        {
            var bg = options.Background;
            canvas.Clear(new SKColor(bg.R, bg.G, bg.B, 255));
            canvas.SetMatrix(matrix);
            canvas.DrawImage(image, 0, 0, sampling, paint);
            canvas.Flush();
        }

        var rgba = target.GetPixelSpan();
        for (int i = 0, j = 0; j < width * height * 3; i += 4, j += 3)
        {
            rgb[j] = rgba[i];
            rgb[j + 1] = rgba[i + 1];
            rgb[j + 2] = rgba[i + 2];
        }
    }
}
