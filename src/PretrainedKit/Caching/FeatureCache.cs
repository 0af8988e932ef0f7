using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace PretrainedKit.Caching;

/// <summary>
/// A content-addressed, size-bounded store of feature vectors on disk. Entries are appended to pack files (one per
/// writing process, with an index beside each), so a lookup costs the same at a million entries as at ten thousand and a
/// run's overhead does not grow with the number of entries; each entry carries a checksum over its key's hash and its
/// features, so an entry that is torn, corrupt, or valid but filed under another key's name is a miss and is recomputed.
/// </summary>
/// <remarks>
/// <para>
/// The checksum is not a signature: whoever can write to the cache folder can still forge an entry for a key they can
/// compute. Keep a shared cache folder writable only by users you trust, or give each user their own (the default).
/// </para>
/// <para>
/// Layout: <c>packs/NAME.pack</c> holds entries one after the other, each in entry format 2: magic <c>PKFC0002</c>, the
/// feature count (int32, little-endian), the SHA-256 of the key's UTF-8 bytes, the features (float32, little-endian),
/// then the SHA-256 of everything before it; <c>packs/NAME.idx</c> holds a 40-byte record per entry (the key's SHA-256
/// and the entry's offset). Each process writes only its own pack, so several processes, or machines sharing the folder,
/// never write to one file; nothing is ever rewritten in place. Entries of the earlier one-file-per-entry store
/// (<c>ab/KEY.bin</c>, format 2) are still read, never written, and are the first to go when the cache is trimmed.
/// </para>
/// </remarks>
/// <threadsafety>Safe from many threads and processes at once.</threadsafety>
public sealed class FeatureCache
{
    /// <summary>The largest feature count an entry may declare (what a pack reader accepts before it allocates).</summary>
    internal const int MaxFeatures = 1 << 20;

    /// <summary>The length of an entry's header: magic, feature count, SHA-256 of the key.</summary>
    internal const int HeaderLength = KeyHashOffset + SHA256.HashSizeInBytes;

    private const int KeyHashOffset = 8 + 4;
    private const int ChecksumLength = SHA256.HashSizeInBytes;
    private static readonly byte[] Magic = "PKFC0002"u8.ToArray();
    private readonly PackStore _store;
    private int _legacy = -1;

    /// <summary>The fraction of <see cref="FeatureCacheOptions.MaxBytes"/> that <see cref="Trim"/> evicts down to.</summary>
    public const double TrimTarget = 0.9;

    /// <summary>How many entries <see cref="EstimateLegacySize"/> lists at least before it extrapolates.</summary>
    private const int SampleEntries = 2000;

    /// <summary>How many entry folders the one-file-per-entry store has at most (the first two hexadecimal digits of the key).</summary>
    private const int ShardCount = 256;

    /// <summary>How stale a pack's time stamp may be before a read refreshes it (the granularity of least-recently-used eviction).</summary>
    internal static readonly TimeSpan RecencyResolution = TimeSpan.FromMinutes(10);

    /// <summary>Initializes a new instance of the <see cref="FeatureCache"/> class.</summary>
    /// <param name="options">Where the cache lives and how big it may grow.</param>
    public FeatureCache(FeatureCacheOptions options)
        : this(options, isolated: false)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="FeatureCache"/> class.</summary>
    /// <param name="options">Where the cache lives and how big it may grow.</param>
    /// <param name="isolated">Test seam: a store of its own, as another process would have (its own pack, its own index).</param>
    internal FeatureCache(FeatureCacheOptions options, bool isolated)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Directory = options.ResolveDirectory();
        _store = isolated ? new PackStore(Directory, options.MaxBytes) : PackStore.For(Directory, options.MaxBytes);
    }

    /// <summary>Gets the options.</summary>
    public FeatureCacheOptions Options { get; }

    /// <summary>Gets the absolute cache folder.</summary>
    public string Directory { get; }

    /// <summary>Gets the folder of the pack files.</summary>
    internal string PacksDirectory => _store.Directory;

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
    /// The features, or <see langword="null"/> when absent, torn, corrupt, of another entry format or length, or written
    /// for another key.
    /// </returns>
    public float[]? TryRead(string key, int length)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        var keyHash = KeyHash(key);
        var entry = _store.TryRead(keyHash, length) ?? (HasLegacyEntries() ? TryReadLegacy(key, keyHash, length) : null);
        if (entry is null)
        {
            return null;
        }

        var features = new float[length];
        var stored = entry.AsSpan(HeaderLength, 4 * length);
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

    /// <summary>Writes an entry (appended to this process's pack). Failures (full disk, read-only folder) are swallowed into a <see langword="false"/> result: the cache is an optimisation.</summary>
    /// <param name="key">The key from <see cref="ComputeKey"/>.</param>
    /// <param name="features">The features.</param>
    /// <returns>Whether the entry was written.</returns>
    public bool TryWrite(string key, ReadOnlySpan<float> features)
    {
        ArgumentNullException.ThrowIfNull(key);
        var keyHash = KeyHash(key);
        var bytes = new byte[EntryLength(features.Length)];
        Magic.CopyTo(bytes, 0);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(Magic.Length), features.Length);
        keyHash.CopyTo(bytes, KeyHashOffset);
        for (var i = 0; i < features.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(HeaderLength + (4 * i)), features[i]);
        }

        SHA256.HashData(bytes.AsSpan(0, bytes.Length - ChecksumLength), bytes.AsSpan(bytes.Length - ChecksumLength));
        return _store.TryWrite(keyHash, bytes);
    }

    /// <summary>The length of an entry of <paramref name="count"/> features.</summary>
    internal static int EntryLength(int count) => HeaderLength + (4 * count) + ChecksumLength;

    /// <summary>Whether <paramref name="entry"/> is a whole, intact format-2 entry of <paramref name="length"/> features for the key whose hash is <paramref name="keyHash"/>.</summary>
    internal static bool IsEntryOf(ReadOnlySpan<byte> entry, ReadOnlySpan<byte> keyHash, int length) =>
        entry.Length == EntryLength(length)
        && entry[..Magic.Length].SequenceEqual(Magic)
        && BinaryPrimitives.ReadInt32LittleEndian(entry[Magic.Length..]) == length
        && entry.Slice(KeyHashOffset, SHA256.HashSizeInBytes).SequenceEqual(keyHash)
        && SHA256.HashData(entry[..^ChecksumLength]).AsSpan().SequenceEqual(entry[^ChecksumLength..]);

    /// <summary>Reads an entry of the one-file-per-entry store; one that fails its checks is deleted.</summary>
    private byte[]? TryReadLegacy(string key, byte[] keyHash, int length)
    {
        var path = PathOf(key);
        var bytes = new byte[EntryLength(length)];
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
            if (RandomAccess.GetLength(handle) == bytes.Length && RandomAccess.Read(handle, bytes, 0) == bytes.Length && IsEntryOf(bytes, keyHash, length))
            {
                return bytes;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // Absent, being replaced, or not ours to read: a miss.
        }

        TryDelete(path);
        return null;
    }

    /// <summary>Whether the folder holds entry folders of the one-file-per-entry store (looked at once per instance).</summary>
    private bool HasLegacyEntries()
    {
        if (_legacy < 0)
        {
            _legacy = System.IO.Directory.Exists(Directory) && LegacyFolders().Any() ? 1 : 0;
        }

        return _legacy == 1;
    }

    private IEnumerable<DirectoryInfo> LegacyFolders() =>
        new DirectoryInfo(Directory).EnumerateDirectories().Where(d => d.Name.Length == 2 && d.Name.All(char.IsAsciiHexDigitLower));

    /// <summary>Gets the total size of the cache on disk (packs, their indexes and any entries of the earlier store), in bytes.</summary>
    /// <returns>The size.</returns>
    public long GetSize() => _store.List().Sum(p => p.Bytes) + LegacyEntries().Sum(f => f.Length);

    /// <summary>Gets the number of entries on disk: distinct keys in the packs (an entry that two processes wrote counts once), plus entries of the earlier store. It reads every index, so it is for reports and tests, not for a hot path.</summary>
    /// <returns>The count.</returns>
    public long GetEntryCount() => _store.CountEntries() + LegacyEntries().LongCount();

    /// <summary>Test seam: closes this instance's pack, as the end of its process would (the store stays usable).</summary>
    internal void CloseWriter() => _store.Dispose();

    /// <summary>
    /// Keeps the cache within <see cref="FeatureCacheOptions.MaxBytes"/>: when it is over, removes entries until it is
    /// within <see cref="TrimTarget"/> of the limit, so that a full cache is not trimmed again on the next run. Entries of
    /// the earlier one-file-per-entry store go first; then whole packs, least recently used first (a read marks its pack
    /// as used), except this process's own pack and packs that another live process is still writing. Entries of a removed
    /// pack that this process read or wrote are copied into its own pack first, while they fit within the target, so
    /// what a run just used survives its own trim. Also merges small packs when there are many (one per process that
    /// wrote). The check costs a listing of the packs (a few dozen files), however many entries they hold.
    /// </summary>
    /// <returns>The number of entries deleted.</returns>
    public int Trim()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return 0;
        }

        _store.Compact();
        if (Options.MaxBytes == 0)
        {
            return 0;
        }

        var packs = _store.List().Sum(p => p.Bytes);
        var legacy = HasLegacyEntries() ? EstimateLegacySize() : 0;
        if (packs + legacy <= Options.MaxBytes)
        {
            return 0;
        }

        var target = (long)(Options.MaxBytes * TrimTarget);
        var deleted = 0;
        if (legacy > 0)
        {
            foreach (var entry in LegacyEntries().ToList())
            {
                if (TryDelete(entry.FullName))
                {
                    legacy -= entry.Length;
                    deleted++;
                }
            }

            legacy = Math.Max(legacy, 0);
        }

        if (packs + legacy > target)
        {
            deleted += _store.Evict(packs + legacy, target);
        }

        return deleted;
    }

    /// <summary>
    /// The size of the earlier store's entries, estimated from entry folders taken in a random order until at least
    /// <see cref="SampleEntries"/> entries are seen (exact when that takes every folder).
    /// </summary>
    /// <param name="random">Orders the folders; by default <see cref="Random.Shared"/>.</param>
    internal long EstimateLegacySize(Random? random = null)
    {
        var folders = System.IO.Directory.Exists(Directory) ? LegacyFolders().ToArray() : [];
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

    /// <summary>Deletes every entry: the packs this process can (not those another live process is writing) and the earlier store's entries.</summary>
    /// <returns>The number of entries deleted.</returns>
    public int Clear()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return 0;
        }

        var deleted = _store.Clear();
        foreach (var folder in LegacyFolders())
        {
            foreach (var file in folder.EnumerateFiles())
            {
                if ((file.Name.EndsWith(".bin", StringComparison.Ordinal) || file.Name.EndsWith(".tmp", StringComparison.Ordinal)) && TryDelete(file.FullName) && file.Name.EndsWith(".bin", StringComparison.Ordinal))
                {
                    deleted++;
                }
            }
        }

        return deleted;
    }

    /// <summary>Where the earlier one-file-per-entry store kept the entry of <paramref name="key"/>.</summary>
    internal string PathOf(string key) => Path.Combine(Directory, key[..2], key + ".bin");

    /// <summary>Deletes a file; <see langword="false"/> when it cannot be (in use, not ours, gone).</summary>
    internal static bool TryDelete(string path)
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

    /// <summary>What binds an entry to its key: an entry copied or filed under another key fails this check.</summary>
    private static byte[] KeyHash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    private IEnumerable<FileInfo> LegacyEntries() =>
        System.IO.Directory.Exists(Directory) ? LegacyFolders().SelectMany(d => d.EnumerateFiles("*.bin")) : [];
}
