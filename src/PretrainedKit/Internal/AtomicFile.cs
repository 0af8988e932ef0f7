namespace PretrainedKit.Internal;

/// <summary>
/// The one way the library (and the CLI) writes a file that a user keeps: the content goes to a hidden temporary file
/// next to the target, is flushed to the disk, and is then renamed over the target. A reader never sees a half-written
/// file, and a failure at any point leaves the previous file as it was and no temporary file behind.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="target"/> atomically.</summary>
    /// <param name="target">The absolute path of the file to write.</param>
    /// <param name="write">Writes the content to the stream it is given.</param>
    /// <param name="beforeCommit">Test seam: runs with the temporary file's path after it is flushed and before the rename.</param>
    /// <param name="wrapStream">Test seam: wraps the temporary file's stream (to inject a full disk or a pause mid-write).</param>
    /// <param name="durable">Flush the content to the disk before the rename (every file a user keeps); only the feature cache, whose entries are checksummed and recomputable, turns it off.</param>
    /// <exception cref="IOException">The file cannot be written; the previous file, if any, is unchanged.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder or file is not writable; the previous file is unchanged.</exception>
    public static void Write(string target, Action<Stream> write, Action<string>? beforeCommit = null, Func<Stream, Stream>? wrapStream = null, bool durable = true)
    {
        var temp = TemporaryPath(target);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                var output = wrapStream?.Invoke(stream) ?? stream;
                write(output);
                output.Flush();
                stream.Flush(flushToDisk: durable);
            }

            beforeCommit?.Invoke(temp);
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Writes <paramref name="target"/> atomically from a writer that works asynchronously.</summary>
    /// <param name="target">The absolute path of the file to write.</param>
    /// <param name="write">Writes the content to the stream it is given.</param>
    /// <param name="cancellationToken">Stops the write before the rename; nothing is changed then.</param>
    /// <returns>A task that completes when the file is in place.</returns>
    public static async Task WriteAsync(string target, Func<Stream, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        var temp = TemporaryPath(target);
        try
        {
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, useAsync: true);
            await using (stream.ConfigureAwait(false))
            {
                await write(stream, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            cancellationToken.ThrowIfCancellationRequested();
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }


    private static string TemporaryPath(string target) =>
        Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.tmp");

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Left for the user to remove; the error being reported matters more.
        }
        catch (UnauthorizedAccessException)
        {
            // Same as above.
        }
    }
}
