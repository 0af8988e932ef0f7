using System.Runtime.InteropServices;

namespace PretrainedKit.Internal;

/// <summary>What a path finally names, after following every symbolic link.</summary>
internal enum FileKind
{
    /// <summary>Nothing: the path, or the final target of its link, does not exist.</summary>
    Missing,

    /// <summary>A regular file: the only kind that is ever opened.</summary>
    Regular,

    /// <summary>A folder.</summary>
    Directory,

    /// <summary>A named pipe (FIFO): opening it blocks until a writer appears, reading it may never end.</summary>
    Pipe,

    /// <summary>A character device such as <c>/dev/zero</c>: reading it may never end.</summary>
    CharacterDevice,

    /// <summary>A block device (a disk).</summary>
    BlockDevice,

    /// <summary>A Unix socket.</summary>
    Socket,

    /// <summary>A chain of symbolic links that never ends (or is longer than the system follows).</summary>
    LinkLoop,

    /// <summary>The path is longer than the file system allows.</summary>
    PathTooLong,

    /// <summary>A folder on the way is not searchable by this user.</summary>
    AccessDenied,
}

/// <summary>What <see cref="FileGuard.Inspect"/> found.</summary>
/// <param name="Kind">What the path finally names.</param>
/// <param name="Length">The size in bytes of the final target (0 for pipes and devices).</param>
/// <param name="LinkTarget">The final target when the path is a symbolic link, else <see langword="null"/>.</param>
internal readonly record struct FileFacts(FileKind Kind, long Length, string? LinkTarget)
{
    /// <summary>Gets whether the path is a symbolic link.</summary>
    public bool IsLink => LinkTarget is not null;

    /// <summary>Gets the kind in words, for messages ("a named pipe", "a device").</summary>
    public string Describe() => Kind switch
    {
        FileKind.Pipe => "a named pipe (FIFO)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.Directory => "a folder",
        FileKind.Missing => "nothing (it does not exist)",
        FileKind.LinkLoop => "a loop of symbolic links",
        _ => "a regular file",
    };
}

/// <summary>
/// Judges a path before anything opens it: follows symbolic links to their final target and says whether that is a
/// regular file, and how big. Opening a named pipe blocks until a writer appears, and a device such as <c>/dev/zero</c>
/// never ends, so neither may be opened; their size (0 bytes) is also what <see cref="FileInfo.Length"/> reports for a
/// link to them only if the link is followed first (<see cref="FileInfo"/> describes the link itself).
/// </summary>
/// <remarks>
/// On Linux the file type comes from <c>statx(2)</c> (glibc 2.28 and later; the structure is the same on every
/// architecture), which follows links like <c>stat(2)</c>. Elsewhere, or where <c>statx</c> is missing or blocked, the
/// final link target's <see cref="FileInfo.Length"/> is used: pipes and devices report 0 bytes there, so they are
/// refused as empty, never opened. A file swapped for a pipe between this check and the open is not covered.
/// </remarks>
/// <threadsafety>Stateless; safe to call from many threads at once.</threadsafety>
internal static class FileGuard
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const uint StatxSize = 0x200;
    private const int ENOENT = 2, EACCES = 13, ENOTDIR = 20, ENAMETOOLONG = 36, ELOOP = 40;
    private static volatile bool _statxUnavailable = !OperatingSystem.IsLinux();
    private static volatile bool _realpathUnavailable = OperatingSystem.IsWindows();

    /// <summary>
    /// The size of <paramref name="path"/>'s final target when that is a regular file, from one <c>statx</c> call, or
    /// <see langword="null"/> when it is anything else or cannot be told that cheaply: then <see cref="Inspect"/> says
    /// what it is. The fast path of reading many images, which are nearly all regular files.
    /// </summary>
    public static long? RegularFileLength(string path)
    {
        if (!_statxUnavailable && TryStatx(path, out var kind, out var length) && kind == FileKind.Regular)
        {
            return length;
        }

        return null;
    }

    /// <summary>Follows <paramref name="path"/> to its final target and says what that is, without opening it.</summary>
    public static FileFacts Inspect(string path)
    {
        string? linkTarget = null;
        try
        {
            var info = new FileInfo(path);
            if (info.LinkTarget is not null)
            {
                linkTarget = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? info.LinkTarget;
            }
        }
        catch (IOException)
        {
            // ELOOP (a link cycle) or a name too long; statx below says which, the fallback reports a loop.
            linkTarget = new FileInfo(path).LinkTarget ?? path;
            if (_statxUnavailable)
            {
                return new FileFacts(FileKind.LinkLoop, 0, linkTarget);
            }
        }
        catch (UnauthorizedAccessException)
        {
            return new FileFacts(FileKind.AccessDenied, 0, null);
        }

        if (!_statxUnavailable && TryStatx(path, out var kind, out var length))
        {
            return new FileFacts(kind, length, linkTarget);
        }

        // Portable fallback: the final target as .NET sees it. Pipes and devices report 0 bytes, so callers refuse them
        // as empty before opening anything.
        var final = linkTarget ?? path;
        if (System.IO.Directory.Exists(final))
        {
            return new FileFacts(FileKind.Directory, 0, linkTarget);
        }

        var target = new FileInfo(final);
        return target.Exists ? new FileFacts(FileKind.Regular, target.Length, linkTarget) : new FileFacts(FileKind.Missing, 0, linkTarget);
    }

    /// <summary>
    /// Why <paramref name="path"/> must not be opened and read whole, or <see langword="null"/> when it is a regular file
    /// of 1 to <paramref name="maxBytes"/> bytes. For model and backbone files; images have their own, finer messages.
    /// </summary>
    public static string? Problem(string path, long maxBytes)
    {
        var facts = Inspect(path);
        var via = facts.IsLink ? $"it is a symbolic link to '{Shorten(facts.LinkTarget!)}', which is " : "it is ";
        return facts.Kind switch
        {
            FileKind.Regular when facts.Length == 0 => via + "empty (0 bytes), or a pipe or device rather than a regular file.",
            FileKind.Regular when facts.Length > maxBytes => $"{via}{facts.Length:N0} bytes ({Mib(facts.Length)}), more than the limit of {Mib(maxBytes)} for this kind of file, so it is not read.",
            FileKind.Regular => null,
            FileKind.Missing => facts.IsLink ? via + "missing." : "it does not exist.",
            FileKind.PathTooLong => "the path is longer than the file system allows.",
            FileKind.AccessDenied => "a folder on the way to it cannot be searched: permission denied.",
            _ => via + facts.Describe() + ", not a regular file: reading it could block or never end, so it is not opened.",
        };
    }

    /// <summary>
    /// Whether a missing path is a file whose name is not valid UTF-8: .NET shows such bytes as U+FFFD, and that string
    /// no longer names the file, so it "does not exist" although the folder lists it.
    /// </summary>
    public static bool IsUndecodableName(string path)
    {
        var name = Path.GetFileName(path);
        if (!name.Contains('\uFFFD', StringComparison.Ordinal) || Path.GetDirectoryName(path) is not { Length: > 0 } folder)
        {
            return false;
        }

        try
        {
            return System.IO.Directory.EnumerateFileSystemEntries(folder).Any(e => string.Equals(Path.GetFileName(e), name, StringComparison.Ordinal));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Reads a stream to its end, refusing it as soon as it holds more than <paramref name="maxBytes"/>.</summary>
    /// <param name="stream">The stream; read from its current position, not closed.</param>
    /// <param name="maxBytes">The most bytes accepted.</param>
    /// <param name="lengthHint">The expected length, or -1 when unknown.</param>
    /// <returns>The bytes, or <see langword="null"/> when the stream holds more than <paramref name="maxBytes"/>.</returns>
    public static byte[]? ReadBounded(Stream stream, long maxBytes, long lengthHint)
    {
        if (lengthHint > maxBytes)
        {
            return null;
        }

        var buffer = FirstBuffer(maxBytes, lengthHint);
        var filled = 0;
        while (true)
        {
            if (filled == buffer.Length)
            {
                if (filled >= maxBytes)
                {
                    // Full at the bound: one more byte means too long.
                    Span<byte> probe = stackalloc byte[1];
                    return stream.Read(probe) == 0 ? buffer : null;
                }

                Grow(ref buffer, maxBytes);
            }

            var read = stream.Read(buffer, filled, buffer.Length - filled);
            if (read == 0)
            {
                return filled == buffer.Length ? buffer : buffer[..filled];
            }

            filled += read;
        }
    }

    /// <summary>
    /// Reads a stream to its end asynchronously, refusing it as soon as it holds more than <paramref name="maxBytes"/>: the
    /// asynchronous twin of <see cref="ReadBounded"/> (same bound, same growth), for streams that forbid synchronous reads
    /// such as ASP.NET Core's request body.
    /// </summary>
    /// <param name="stream">The stream; read from its current position, not closed.</param>
    /// <param name="maxBytes">The most bytes accepted.</param>
    /// <param name="lengthHint">The expected length, or -1 when unknown.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The bytes, or <see langword="null"/> when the stream holds more than <paramref name="maxBytes"/>.</returns>
    public static async Task<byte[]?> ReadBoundedAsync(Stream stream, long maxBytes, long lengthHint, CancellationToken cancellationToken)
    {
        if (lengthHint > maxBytes)
        {
            return null;
        }

        var buffer = FirstBuffer(maxBytes, lengthHint);
        var filled = 0;
        while (true)
        {
            if (filled == buffer.Length)
            {
                if (filled >= maxBytes)
                {
                    // Full at the bound: one more byte means too long.
                    var probe = new byte[1];
                    return await stream.ReadAsync(probe, cancellationToken).ConfigureAwait(false) == 0 ? buffer : null;
                }

                Grow(ref buffer, maxBytes);
            }

            var read = await stream.ReadAsync(buffer.AsMemory(filled, buffer.Length - filled), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return filled == buffer.Length ? buffer : buffer[..filled];
            }

            filled += read;
        }
    }

    /// <summary>The first buffer of a bounded read. Never trusts the hint beyond the bound: the file may grow, or a stream may lie.</summary>
    private static byte[] FirstBuffer(long maxBytes, long lengthHint) =>
        new byte[Math.Max((int)Math.Clamp(lengthHint >= 0 ? lengthHint : 81_920, 0, Math.Min(maxBytes, Array.MaxLength - 1)), 1)];

    /// <summary>Doubles a bounded read's buffer, up to the bound.</summary>
    private static void Grow(ref byte[] buffer, long maxBytes) =>
        Array.Resize(ref buffer, (int)Math.Min(Math.Min((long)buffer.Length * 2, maxBytes), Array.MaxLength));

    /// <summary>Shortens a path for a message by cutting its middle: a 4,000-character path stays one readable line.</summary>
    public static string Shorten(string path, int max = 160)
    {
        if (path.Length <= max)
        {
            return path;
        }

        var keep = (max - 1) / 2;
        return string.Concat(path.AsSpan(0, keep), "…", path.AsSpan(path.Length - keep));
    }

    /// <summary>Formats a size in MiB for messages.</summary>
    public static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString(bytes < 10 * 1024 * 1024 ? "0.0" : "N0", System.Globalization.CultureInfo.InvariantCulture) + " MiB";

    /// <summary>
    /// The canonical absolute path of an existing folder or file, with every symbolic link and <c>..</c> resolved
    /// (<c>realpath(3)</c> on Unix), or <see langword="null"/> when it cannot be resolved (a loop, a missing target, a
    /// path too long). Where <c>realpath</c> is unavailable, the final link target's full path.
    /// </summary>
    public static string? RealPath(string path)
    {
        if (!_realpathUnavailable)
        {
            try
            {
                var resolved = NativeMethods.RealPath(NativePath(path), IntPtr.Zero);
                if (resolved == IntPtr.Zero)
                {
                    return null;
                }

                try
                {
                    return Marshal.PtrToStringUTF8(resolved);
                }
                finally
                {
                    NativeMethods.Free(resolved);
                }
            }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
            {
                _realpathUnavailable = true;
            }
        }

        try
        {
            var info = new DirectoryInfo(path);
            var final = info.LinkTarget is null ? info : info.ResolveLinkTarget(returnFinalTarget: true);
            return final is { Exists: true } ? Path.GetFullPath(final.FullName) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static bool TryStatx(string path, out FileKind kind, out long length)
    {
        kind = FileKind.Missing;
        length = 0;
        var buffer = new byte[256];
        int result;
        try
        {
            result = NativeMethods.Statx(AtFdCwd, NativePath(path), 0, StatxType | StatxSize, buffer);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            _statxUnavailable = true;
            return false;
        }

        if (result != 0)
        {
            switch (Marshal.GetLastPInvokeError())
            {
                case ENOENT or ENOTDIR:
                    kind = FileKind.Missing;
                    return true;
                case ELOOP:
                    kind = FileKind.LinkLoop;
                    return true;
                case ENAMETOOLONG:
                    kind = FileKind.PathTooLong;
                    return true;
                case EACCES:
                    kind = FileKind.AccessDenied;
                    return true;
                default:
                    return false; // ENOSYS or EPERM (a sandbox that blocks statx): use the portable fallback.
            }
        }

        var mode = MemoryMarshal.Read<ushort>(buffer.AsSpan(28)) & 0xF000;
        length = (long)MemoryMarshal.Read<ulong>(buffer.AsSpan(40));
        kind = mode switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0x1000 => FileKind.Pipe,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0xC000 => FileKind.Socket,
            _ => FileKind.Missing,
        };
        return true;
    }

    /// <summary>The path as the C library takes it: UTF-8, as .NET encodes file names on Unix, and NUL-terminated.</summary>
    private static byte[] NativePath(string path) => System.Text.Encoding.UTF8.GetBytes(path + "\0");

    private static class NativeMethods
    {
        [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
        public static extern int Statx(int dirfd, byte[] path, int flags, uint mask, byte[] buffer);

        [DllImport("libc", EntryPoint = "realpath", SetLastError = true)]
        public static extern IntPtr RealPath(byte[] path, IntPtr resolved);

        [DllImport("libc", EntryPoint = "free")]
        public static extern void Free(IntPtr pointer);
    }
}
