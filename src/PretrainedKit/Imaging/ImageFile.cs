using PretrainedKit.Internal;

namespace PretrainedKit.Imaging;

/// <summary>
/// Reads image files and streams defensively: a path is judged by what it finally names before it is opened (a named
/// pipe would block the open, a device such as <c>/dev/zero</c> never ends, also behind a symbolic link), and no more
/// than a set number of bytes is ever read. Every failure becomes an <see cref="InvalidImageException"/> naming the file.
/// </summary>
/// <threadsafety>Stateless; safe to call from many threads at once.</threadsafety>
internal static class ImageFile
{
    /// <summary>Reads a whole image file of at most <paramref name="maxBytes"/> bytes.</summary>
    public static byte[] Read(string path, long maxBytes)
    {
        try
        {
            if (FileGuard.RegularFileLength(path) is { } known && known > 0 && known <= maxBytes)
            {
                return ReadRegular(path, maxBytes, known); // A regular file within the limits: nothing more to judge.
            }

            var facts = FileGuard.Inspect(path);
            var via = facts.IsLink ? $"this is a symbolic link to '{FileGuard.Shorten(facts.LinkTarget!)}', which is " : "this is ";
            switch (facts.Kind)
            {
                case FileKind.Directory:
                    throw new InvalidImageException(path, BadImageReason.Unreadable, via + "a folder, not an image file. Move it out of the class folder or give a file path.");
                case FileKind.Pipe or FileKind.CharacterDevice or FileKind.BlockDevice or FileKind.Socket:
                    throw new InvalidImageException(
                        path,
                        BadImageReason.Unreadable,
                        via + facts.Describe() + ", not a regular file: reading it could block or never end, so it is not opened. Remove it, or replace it with a real image file.");
                case FileKind.LinkLoop:
                    throw new InvalidImageException(path, BadImageReason.Unreadable, "this is a symbolic link that leads back to itself (a loop of links), so it names no file. Fix or remove the link.");
                case FileKind.PathTooLong:
                    throw new InvalidImageException(path, BadImageReason.Unreadable, $"the path is {path.Length:N0} characters long, more than the file system allows. Move the file to a shorter path.");
                case FileKind.AccessDenied:
                    throw new InvalidImageException(path, BadImageReason.Unreadable, "a folder on the way to this file cannot be searched: permission denied. Give the current user access to the folder, or move the file.");
                case FileKind.Missing:
                    throw new InvalidImageException(path, BadImageReason.Unreadable, Missing(path, facts));
            }

            if (facts.Length == 0)
            {
                // Checked before opening: where the file type is unknown (no statx), a pipe or a device also reports 0 bytes.
                throw new InvalidImageException(path, BadImageReason.Empty, (facts.IsLink ? via + "empty" : "the file is empty") + " (0 bytes), or is a pipe or device rather than a regular file. Remove it or replace it with a real image.");
            }

            if (facts.Length > maxBytes)
            {
                throw TooLarge(path, $"the file is {facts.Length:N0} bytes ({FileGuard.Mib(facts.Length)}), more than the limit of {maxBytes:N0} bytes ({FileGuard.Mib(maxBytes)}), so it is not read");
            }

            return ReadRegular(path, maxBytes, facts.Length);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new InvalidImageException(path, BadImageReason.Unreadable, "the file cannot be read: permission denied. Give the current user read access or remove the file.", ex);
        }
        catch (FileNotFoundException ex)
        {
            throw new InvalidImageException(path, BadImageReason.Unreadable, Missing(path, new FileFacts(FileKind.Missing, 0, null)), ex);
        }
        catch (DirectoryNotFoundException ex)
        {
            throw new InvalidImageException(path, BadImageReason.Unreadable, "the folder of this file does not exist.", ex);
        }
        catch (PathTooLongException ex)
        {
            throw new InvalidImageException(path, BadImageReason.Unreadable, $"the path is {path.Length:N0} characters long, more than the file system allows. Move the file to a shorter path.", ex);
        }
        catch (IOException ex)
        {
            throw new InvalidImageException(path, BadImageReason.Unreadable, $"the file cannot be read: {ex.Message}", ex);
        }
    }

    /// <summary>Reads a regular file of <paramref name="length"/> bytes (as judged just before), refusing it if it grew past <paramref name="maxBytes"/>.</summary>
    private static byte[] ReadRegular(string path, long maxBytes, long length)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        return FileGuard.ReadBounded(stream, maxBytes, length)
            ?? throw TooLarge(path, $"the file grew past the limit of {maxBytes:N0} bytes ({FileGuard.Mib(maxBytes)}) while it was read");
    }

    /// <summary>Reads a stream to its end (not closed), refusing it once it yields more than <paramref name="maxBytes"/>.</summary>
    public static byte[] Read(Stream stream, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return FileGuard.ReadBounded(stream, maxBytes, Remaining(stream)) ?? throw StreamTooLarge(maxBytes);
    }

    /// <summary>Reads a stream to its end asynchronously (not closed), refusing it once it yields more than <paramref name="maxBytes"/>; see <see cref="Read(Stream, long)"/>.</summary>
    public static async Task<byte[]> ReadAsync(Stream stream, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return await FileGuard.ReadBoundedAsync(stream, maxBytes, Remaining(stream), cancellationToken).ConfigureAwait(false) ?? throw StreamTooLarge(maxBytes);
    }

    /// <summary>What a seekable stream holds from its position, or -1 when unknown.</summary>
    private static long Remaining(Stream stream) => stream.CanSeek ? Math.Max(0, stream.Length - stream.Position) : -1;

    private static InvalidImageException StreamTooLarge(long maxBytes) =>
        TooLarge(null, $"the stream holds more than the limit of {maxBytes:N0} bytes ({FileGuard.Mib(maxBytes)}); reading stopped there");

    private static InvalidImageException TooLarge(string? path, string what) => new(
        path,
        BadImageReason.TooLarge,
        what + ". No image within the pixel limit needs that much; if you trust the file, raise ImageLimits.MaxFileBytes.");

    private static string Missing(string path, FileFacts facts)
    {
        if (facts.IsLink)
        {
            return $"this is a symbolic link to '{FileGuard.Shorten(facts.LinkTarget!)}', which does not exist. Fix or remove the link.";
        }

        return FileGuard.IsUndecodableName(path)
            ? "the file name is not valid UTF-8 (.NET shows the bytes it cannot decode as '\uFFFD'), so the file cannot be opened by this name. Rename it to a UTF-8 name (for example with convmv)."
            : "the file does not exist (it may have been moved or deleted).";
    }
}
