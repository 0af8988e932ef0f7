using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace PretrainedKit.Caching;

/// <summary>
/// A content-addressed, size-bounded store of feature vectors on disk. Entries are written atomically (temporary file,
/// then rename), so readers in this or another process never see a torn entry; each entry carries a checksum over its
/// key's hash and its features, so an entry that is corrupt, or that is valid but sits under another key's name (copied
/// or renamed over it), is deleted and recomputed.
/// </summary>
/// <remarks>
/// The checksum is not a signature: whoever can write to the cache folder can still forge an entry for a key they can
/// compute. Keep a shared cache folder writable only by users you trust, or give each user their own (the default).
/// Entry layout (format 2): magic <c>PKFC0002</c>, the feature count (int32, little-endian), the SHA-256 of the key's
/// UTF-8 bytes, the features (float32, little-endian), then the SHA-256 of everything before it. Entries of format 1 are
/// misses, and are replaced as their images are featurised again.
/// </remarks>
/// <threadsafety>Safe from many threads and processes at once.</threadsafety>
public sealed class FeatureCache
{
    private const int KeyHashOffset = 8 + 4;
    private const int HeaderLength = KeyHashOffset + SHA256.HashSizeInBytes;
    private const int ChecksumLength = SHA256.HashSizeInBytes;
    private static readonly byte[] Magic = "PKFC0002"u8.ToArray();

    /// <summary>The fraction of <see cref="FeatureCacheOptions.MaxBytes"/> that <see cref="Trim"/> evicts down to.</summary>
    public const double TrimTarget = 0.9;

    /// <summary>How many entries <see cref="EstimateSize"/> lists at least before it extrapolates.</summary>
    private const int SampleEntries = 2000;

    /// <summary>How many entry folders there are at most (the first two hexadecimal digits of the key).</summary>
    private const int ShardCount = 256;

    /// <summary>How stale an entry's time stamp may be before a read refreshes it (the granularity of least-recently-used eviction).</summary>
    internal static readonly TimeSpan RecencyResolution = TimeSpan.FromMinutes(10);

    /// <summary>Initializes a new instance of the <see cref="FeatureCache"/> class.</summary>
    /// <param name="options">Where the cache lives and how big it may grow.</param>
    public FeatureCache(FeatureCacheOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Directory = options.ResolveDirectory();
    }

    /// <summary>Gets the options.</summary>
    public FeatureCacheOptions Options { get; }

    /// <summary>Gets the absolute cache folder.</summary>
    public string Directory { get; }

    /// <summary>Computes the key of an image: its bytes plus everything that decides its features.</summary>
    /// <param name="imageBytes">The encoded image file.</param>
    /// <param name="context">The backbone id, weights hash and preprocessing settings, as one string.</param>
    /// <returns>A 64-character hexadecimal key: SHA-256 of (SHA-256 of the bytes, a newline, the context).</returns>
    public static string ComputeKey(ReadOnlySpan<byte> imageBytes, string context) => ComputeKeys(imageBytes, [context])[0];

    /// <summary>
    /// Computes the keys of one image under several contexts (one per view), hashing the image bytes once: each key
    /// equals <see cref="ComputeKey"/> for its context.
    /// </summary>
    /// <param name="imageBytes">The encoded image file.</param>
    /// <param name="contexts">One context string per key.</param>
    /// <returns>The keys, in the order of <paramref name="contexts"/>.</returns>
    public static string[] ComputeKeys(ReadOnlySpan<byte> imageBytes, IReadOnlyList<string> contexts) => KeysFromDigest(SHA256.HashData(imageBytes), contexts);

    /// <summary>Computes the keys of one image from the SHA-256 of its bytes (as <see cref="ComputeKeys"/> does after hashing them).</summary>
    /// <param name="digest">The SHA-256 of the encoded image file.</param>
    /// <param name="contexts">One context string per key.</param>
    /// <returns>The keys, in the order of <paramref name="contexts"/>.</returns>
    public static string[] KeysFromDigest(ReadOnlySpan<byte> digest, IReadOnlyList<string> contexts)
    {
        ArgumentNullException.ThrowIfNull(contexts);
        var keys = new string[contexts.Count];
        for (var i = 0; i < keys.Length; i++)
        {
            ArgumentNullException.ThrowIfNull(contexts[i]);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            hash.AppendData(digest);
            hash.AppendData(Encoding.UTF8.GetBytes("\n" + contexts[i]));
            keys[i] = Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
        }

        return keys;
    }

    /// <summary>Reads an entry.</summary>
    /// <param name="key">The key from <see cref="ComputeKey"/>.</param>
    /// <param name="length">The expected number of features.</param>
    /// <returns>
    /// The features, or <see langword="null"/> when absent, corrupt, of another entry format, or written for another key
    /// (such an entry is deleted).
    /// </returns>
    public float[]? TryRead(string key, int length)
    {
        ArgumentNullException.ThrowIfNull(key);
        var path = PathOf(key);
        var expected = HeaderLength + (4 * length) + ChecksumLength;
        var bytes = new byte[expected];
        try
        {
            // One handle for the size, the bytes and the time stamp: a cache hit costs one open, however it goes on.
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
            if (RandomAccess.GetLength(handle) != expected || RandomAccess.Read(handle, bytes, 0) != expected)
            {
                handle.Dispose();
                TryDelete(path);
                return null;
            }

            var now = DateTime.UtcNow;
            if (now - File.GetLastWriteTimeUtc(handle) > RecencyResolution)
            {
                // Recently used: evicted last. Refreshed at most once per RecencyResolution, so that a warm run does not
                // write every entry's metadata each time; eviction order is only as fine as that.
                TryTouch(handle, now);
            }
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        catch (IOException)
        {
            return null; // Being replaced by another process right now: recompute.
        }
        catch (UnauthorizedAccessException)
        {
            return null; // An entry this user may not read is a miss; the write that follows will fail quietly too.
        }

        if (!bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic)
            || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(Magic.Length)) != length
            || !bytes.AsSpan(KeyHashOffset, SHA256.HashSizeInBytes).SequenceEqual(KeyHash(key))
            || !SHA256.HashData(bytes.AsSpan(0, expected - ChecksumLength)).AsSpan().SequenceEqual(bytes.AsSpan(expected - ChecksumLength)))
        {
            TryDelete(path);
            return null;
        }

        var features = new float[length];
        var stored = bytes.AsSpan(HeaderLength, 4 * length);
        if (BitConverter.IsLittleEndian)
        {
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(stored).CopyTo(features);
        }
        else
        {
            for (var i = 0; i < length; i++)
            {
                features[i] = BinaryPrimitives.ReadSingleLittleEndian(stored[(4 * i)..]);
            }
        }

        return features;
    }

    /// <summary>Writes an entry atomically. Failures (full disk, read-only folder) are swallowed into a <see langword="false"/> result: the cache is an optimisation.</summary>
    /// <param name="key">The key from <see cref="ComputeKey"/>.</param>
    /// <param name="features">The features.</param>
    /// <returns>Whether the entry was written.</returns>
    public bool TryWrite(string key, ReadOnlySpan<float> features)
    {
        ArgumentNullException.ThrowIfNull(key);
        var path = PathOf(key);
        var bytes = new byte[HeaderLength + (4 * features.Length) + ChecksumLength];
        Magic.CopyTo(bytes, 0);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(Magic.Length), features.Length);
        KeyHash(key).CopyTo(bytes, KeyHashOffset);
        for (var i = 0; i < features.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(HeaderLength + (4 * i)), features[i]);
        }

        SHA256.HashData(bytes.AsSpan(0, bytes.Length - ChecksumLength), bytes.AsSpan(bytes.Length - ChecksumLength));
        try
        {
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);

            // Not flushed to the disk: an entry lost in a crash is only recomputed, a torn one fails its checksum, and a
            // flush per entry would stall the backbone thread that writes it.
            Internal.AtomicFile.Write(path, stream => stream.Write(bytes), durable: false);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Gets the total size of the entries, in bytes.</summary>
    /// <returns>The size.</returns>
    public long GetSize() => Entries().Sum(f => f.Length);

    /// <summary>
    /// Keeps the cache within <see cref="FeatureCacheOptions.MaxBytes"/>: when it is over, deletes the least recently used
    /// entries until it is within <see cref="TrimTarget"/> of the limit, so that a full cache is not listed again on the
    /// next run. Whether it is over is first estimated from a sample of the 256 entry folders (entries spread evenly over
    /// them by key), so a cache well within its limit costs a few milliseconds to check however many entries it holds;
    /// only a cache near or over the limit is listed whole.
    /// </summary>
    /// <returns>The number of entries deleted.</returns>
    public int Trim()
    {
        if (Options.MaxBytes == 0 || !System.IO.Directory.Exists(Directory))
        {
            return 0;
        }

        if (EstimateSize() < Options.MaxBytes * TrimTarget)
        {
            return 0;
        }

        var entries = Entries().ToList();
        var total = entries.Sum(f => f.Length);
        if (total <= Options.MaxBytes)
        {
            return 0;
        }

        var target = (long)(Options.MaxBytes * TrimTarget);
        var deleted = 0;
        foreach (var entry in entries.OrderBy(f => f.LastWriteTimeUtc))
        {
            if (total <= target)
            {
                break;
            }

            if (TryDelete(entry.FullName))
            {
                total -= entry.Length;
                deleted++;
            }
        }

        return deleted;
    }

    /// <summary>
    /// The cache's size, estimated from entry folders taken in a random order until at least <see cref="SampleEntries"/>
    /// entries are seen (exact when that takes every folder).
    /// </summary>
    /// <param name="random">Orders the folders; by default <see cref="Random.Shared"/>.</param>
    internal long EstimateSize(Random? random = null)
    {
        var folders = new DirectoryInfo(Directory).GetDirectories();
        if (folders.Length == 0)
        {
            return 0;
        }

        (random ?? Random.Shared).Shuffle(folders);
        long seenBytes = 0;
        var seenEntries = 0;
        var listed = 0;
        foreach (var folder in folders)
        {
            foreach (var entry in folder.EnumerateFiles("*.bin"))
            {
                seenBytes += entry.Length;
                seenEntries++;
            }

            listed++;
            if (seenEntries >= SampleEntries)
            {
                break;
            }
        }

        return listed == folders.Length ? seenBytes : seenBytes * ShardCount / listed;
    }

    /// <summary>Deletes every entry (and leftover temporary files) in the cache folder.</summary>
    /// <returns>The number of files deleted.</returns>
    public int Clear()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return 0;
        }

        var deleted = 0;
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*", SearchOption.AllDirectories))
        {
            if ((file.EndsWith(".bin", StringComparison.Ordinal) || file.EndsWith(".tmp", StringComparison.Ordinal)) && TryDelete(file))
            {
                deleted++;
            }
        }

        return deleted;
    }

    internal string PathOf(string key) => Path.Combine(Directory, key[..2], key + ".bin");

    /// <summary>What binds an entry to its key: an entry copied or renamed to another key's file fails this check.</summary>
    private static byte[] KeyHash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    private IEnumerable<FileInfo> Entries() =>
        System.IO.Directory.Exists(Directory)
            ? new DirectoryInfo(Directory).EnumerateFiles("*.bin", SearchOption.AllDirectories)
            : [];

    private static void TryTouch(Microsoft.Win32.SafeHandles.SafeFileHandle handle, DateTime now)
    {
        try
        {
            File.SetLastWriteTimeUtc(handle, now);
        }
        catch (IOException)
        {
            // Not worth failing a read over; the entry may just be evicted sooner.
        }
        catch (UnauthorizedAccessException)
        {
            // Same: a read-only cache (or another user's entry) still serves reads.
        }
    }

    private static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
