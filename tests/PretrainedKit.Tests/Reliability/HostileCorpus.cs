using System.Buffers.Binary;
using System.Diagnostics;
using PretrainedKit.Imaging;
using SkiaSharp;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// The hostile-input corpus, generated on disk (nothing binary is committed except the 363-byte CMYK JPEG in
/// <see cref="TestImages"/>): files that must be refused, each with the reason it must get, and awkward but valid files
/// that must be used.
/// </summary>
internal sealed class HostileCorpus
{
    private HostileCorpus(string root)
    {
        Root = root;
    }

    /// <summary>Gets the dataset folder: the small colour dataset plus the corpus inside its class folders.</summary>
    public string Root { get; }

    /// <summary>Gets the files that must be refused, by absolute path, with the expected reason.</summary>
    public Dictionary<string, BadImageReason> Bad { get; } = new(StringComparer.Ordinal);

    /// <summary>Gets the valid but awkward files that must be decoded and used, by kind.</summary>
    public Dictionary<string, string> Valid { get; } = new(StringComparer.Ordinal);

    /// <summary>Gets the images of the underlying colour dataset.</summary>
    public int BaseImageCount { get; private set; }

    /// <summary>Gets a path longer than the file system allows (4,200 characters); it cannot exist.</summary>
    public string TooLongPath { get; private set; } = string.Empty;

    /// <summary>Gets a folder named like an image (<c>album.jpg</c>) that holds one valid image.</summary>
    public string FolderNamedLikeImage { get; private set; } = string.Empty;

    /// <summary>Gets the kind of each bad file, for the README table.</summary>
    public Dictionary<string, string> BadKinds { get; } = new(StringComparer.Ordinal);

    /// <summary>Builds the corpus. The unreadable file is only added when <paramref name="includeUnreadable"/> (it needs a non-root reader).</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")] // mkfifo, Unix file modes
    public static HostileCorpus Create(bool includeUnreadable)
    {
        var perClass = 6;
        var corpus = new HostileCorpus(SmallDataset.Create(perClass)) { BaseImageCount = 3 * perClass };
        var red = Path.Combine(corpus.Root, "red");
        var green = Path.Combine(corpus.Root, "green");
        var blue = Path.Combine(corpus.Root, "blue");

        using var pattern = TestImages.Pattern(64, 48);
        var png = TestImages.Png(pattern);
        var jpeg = TestImages.Jpeg(pattern);

        // Refused.
        corpus.AddBad(red, "zero-byte.jpg", [], BadImageReason.Empty, "zero-byte file");
        corpus.AddBad(red, "text.jpg", "This is a text file, not a JPEG.\n"u8.ToArray(), BadImageReason.NotAnImage, "text file named .jpg");
        foreach (var keep in new[] { 0.02, 0.1, 0.5, 0.9, 0.99 })
        {
            corpus.AddBad(green, $"truncated-{keep * 100:00}pct.png", png[..(int)(png.Length * keep)], BadImageReason.Truncated, "truncated PNG");
        }

        foreach (var keep in new[] { 0.05, 0.3, 0.7, 0.95 })
        {
            corpus.AddBad(green, $"truncated-{keep * 100:00}pct.jpg", jpeg[..(int)(jpeg.Length * keep)], BadImageReason.Truncated, "truncated JPEG");
        }

        corpus.AddBad(blue, "claims-60000x60000.png", TestImages.RawPng(60000, 60000, 8, 2, [], includeData: false), BadImageReason.TooLarge, "PNG declaring 60000x60000");
        var dangling = Path.Combine(blue, "dangling-link.png");
        File.CreateSymbolicLink(dangling, Path.Combine(blue, "does-not-exist.png"));
        corpus.Bad[dangling] = BadImageReason.Unreadable;
        corpus.BadKinds[dangling] = "dangling symbolic link";
        var fifo = Path.Combine(blue, "named-pipe.png");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            mkfifo.WaitForExit();
        }

        corpus.Bad[fifo] = BadImageReason.Unreadable;
        corpus.BadKinds[fifo] = "named pipe called .png (reading it would block)";
        var pipeLink = Path.Combine(blue, "link-to-pipe.png");
        File.CreateSymbolicLink(pipeLink, fifo);
        corpus.Bad[pipeLink] = BadImageReason.Unreadable;
        corpus.BadKinds[pipeLink] = "symbolic link to a named pipe (opening it would block)";
        var deviceLink = Path.Combine(red, "link-to-dev-zero.png");
        File.CreateSymbolicLink(deviceLink, "/dev/zero");
        corpus.Bad[deviceLink] = BadImageReason.Unreadable;
        corpus.BadKinds[deviceLink] = "symbolic link to /dev/zero (reading it never ends)";

        // A loop: followed, it would scan the whole dataset again under "green", forever with two such links.
        Directory.CreateSymbolicLink(Path.Combine(green, "loop"), "..");
        if (includeUnreadable)
        {
            var unreadable = corpus.AddBad(blue, "no-read-permission.png", png, BadImageReason.Unreadable, "file without read permission");
            File.SetUnixFileMode(unreadable, UnixFileMode.None);
        }

        // Awkward but valid: decoded and used.
        using var upright = TestImages.Pattern(64, 48);
        corpus.AddValid(red, "bmp-named.jpg", TestImages.Bmp(upright), "BMP named .jpg");
        corpus.AddValid(red, "cmyk.jpg", Convert.FromBase64String(TestImages.CmykRedJpegBase64), "CMYK JPEG");
        corpus.AddValid(red, "gray16.png", TestImages.Gray16Png(16, 16, (x, y) => (ushort)((x * 4000) + (y * 100))), "16-bit greyscale PNG");
        corpus.AddValid(red, "gray-alpha.png", TestImages.RawPng(4, 4, 8, 4, Enumerable.Range(0, 4 * 9).Select(i => (byte)(i % 9 == 0 ? 0 : 128)).ToArray()), "grey+alpha PNG");
        corpus.AddValid(green, "palette.gif", TestImages.Gif(16, 16, SKColors.Green), "palette GIF");
        corpus.AddValid(green, "animated.gif", TestImages.Gif(16, 16, SKColors.Green, SKColors.Red, SKColors.Blue), "animated GIF (3 frames)");
        corpus.AddValid(green, "lossless.webp", TestImages.WebP(upright), "WebP");
        corpus.AddValid(blue, "interlaced.png", InterlacedPng(upright), "interlaced (Adam7) PNG");
        using (var stored6 = TestImages.Rotate90(upright, clockwise: false))
        using (var stored8 = TestImages.Rotate90(upright, clockwise: true))
        {
            corpus.AddValid(blue, "exif-orientation-6.jpg", TestImages.WithExifOrientation(TestImages.Jpeg(stored6), 6), "JPEG with EXIF orientation 6");
            corpus.AddValid(blue, "exif-orientation-8.jpg", TestImages.WithExifOrientation(TestImages.Jpeg(stored8), 8), "JPEG with EXIF orientation 8");
        }

        var unicode = Path.Combine(red, "données d'été", "chat ünïcödé 猫 – copie (2).png");
        Directory.CreateDirectory(Path.GetDirectoryName(unicode)!);
        corpus.AddValid(Path.GetDirectoryName(unicode)!, Path.GetFileName(unicode), png, "non-ASCII path with spaces");

        // About 1,230 characters: beyond Windows' classic 260, within Linux's 4,096 (each name within 255).
        var deep = Path.Combine([green, .. Enumerable.Range(0, 5).Select(i => new string((char)('a' + i), 200))]);
        Directory.CreateDirectory(deep);
        corpus.AddValid(deep, new string('z', 200) + ".png", png, "very long path (over 1,000 characters)");

        corpus.FolderNamedLikeImage = Path.Combine(red, "album.jpg");
        Directory.CreateDirectory(corpus.FolderNamedLikeImage);
        corpus.AddValid(corpus.FolderNamedLikeImage, "inside.png", png, "image inside a folder named album.jpg");

        corpus.TooLongPath = Path.Combine([corpus.Root, .. Enumerable.Range(0, 20).Select(_ => new string('x', 210))]) + ".png";
        return corpus;
    }

    /// <summary>An Adam7-interlaced, 8-bit RGB PNG of <paramref name="bitmap"/>.</summary>
    public static byte[] InterlacedPng(SKBitmap bitmap)
    {
        int w = bitmap.Width, h = bitmap.Height;
        (int X, int Y, int Dx, int Dy)[] passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];
        var raw = new List<byte>();
        foreach (var (x0, y0, dx, dy) in passes)
        {
            var pw = (w - x0 + dx - 1) / dx;
            var ph = (h - y0 + dy - 1) / dy;
            if (pw <= 0 || ph <= 0)
            {
                continue;
            }

            for (var y = y0; y < h; y += dy)
            {
                raw.Add(0);
                for (var x = x0; x < w; x += dx)
                {
                    var c = bitmap.GetPixel(x, y);
                    raw.Add(c.Red);
                    raw.Add(c.Green);
                    raw.Add(c.Blue);
                }
            }
        }

        var png = TestImages.RawPng(w, h, 8, 2, raw.ToArray());

        // Set the interlace byte of IHDR (offset 8 + 8 + 12) and recompute the chunk's CRC.
        png[28] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), TestImages.Crc32(png.AsSpan(12, 17)));
        return png;
    }

    private string AddBad(string folder, string name, byte[] content, BadImageReason reason, string kind)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllBytes(path, content);
        Bad[path] = reason;
        BadKinds[path] = kind;
        return path;
    }

    private void AddValid(string folder, string name, byte[] content, string kind)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllBytes(path, content);
        Valid[path] = kind;
    }
}
