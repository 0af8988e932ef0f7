using System.Buffers.Binary;
using System.Collections.Concurrent;

namespace PretrainedKit.Caching;

/// <summary>
/// The feature cache's store: append-only pack files with an index beside each, so that a lookup costs the same at a
/// million entries as at ten thousand (one dictionary probe and one read of a file that is already open in the page
/// cache) and a run's overhead does not grow with the number of entries (a folder listing of a few dozen packs).
/// </summary>
/// <remarks>
/// <para>
/// Layout: <c>packs/NAME.pack</c> holds entry records (each exactly a format-2 entry of <see cref="FeatureCache"/>: magic,
/// feature count, SHA-256 of the key, features, SHA-256 checksum) one after the other; <c>packs/NAME.idx</c> holds one
/// 40-byte record per entry (the SHA-256 of the key, then the entry's offset in the pack, little-endian). A writer owns
/// its pack: one per process and folder, appended to only by that process, so several processes (and machines sharing the
/// folder) never write to one file. The index is only a hint: every read checks the entry's key hash and checksum, so a
/// torn tail (a crash mid-append), a stale index record or a forged one is a miss, never wrong features.
/// </para>
/// <para>
/// A writer holds its pack open with a shared lock (<see cref="FileShare.Read"/>) for as long as it appends to it; evicting
/// or compacting a pack takes the exclusive lock first, so a pack that a live process still writes is never removed.
/// </para>
/// </remarks>
internal sealed class PackStore : IDisposable
{
    /// <summary>The subfolder of the cache folder that holds the packs.</summary>
    internal const string PacksFolder = "packs";

    /// <summary>The length of one index record: the key's SHA-256 and the entry's offset.</summary>
    internal const int IndexRecordLength = 32 + 8;

    /// <summary>How many packs there may be before <see cref="Compact"/> merges the smallest ones.</summary>
    internal const int MaxPacks = 64;

    private const long MaxPackBytes = 64L << 20;

    private static readonly ConcurrentDictionary<string, PackStore> Stores = new(StringComparer.Ordinal);

    private readonly object _gate = new();
    private readonly Dictionary<ulong, Location> _index = [];
    private readonly Dictionary<string, Pack> _packs = new(StringComparer.Ordinal);

    // Every pack this process has seen, by number: the index refers to packs by number, so that it holds no object
    // reference and the garbage collector never scans it (a million entries would otherwise cost every collection).
    private readonly List<Pack> _numbered = [];
    private readonly HashSet<ulong> _used = [];
    private readonly long _packCap;
    private bool _loaded;
    private long _lastRefresh;
    private Pack? _own;
    private FileStream? _ownData;
    private FileStream? _ownIndex;

    /// <summary>Initializes a new instance of the <see cref="PackStore"/> class. Use <see cref="For"/> outside tests.</summary>
    /// <param name="directory">The cache folder.</param>
    /// <param name="maxBytes">The cache's size limit (0: none); a pack is closed at a sixteenth of it, so that eviction is fine-grained.</param>
    internal PackStore(string directory, long maxBytes)
    {
        Directory = Path.Combine(directory, PacksFolder);
        _packCap = maxBytes > 0 ? Math.Clamp(maxBytes / 16, 1L << 16, MaxPackBytes) : MaxPackBytes;
    }

    /// <summary>Gets the packs folder.</summary>
    internal string Directory { get; }

    /// <summary>The one store of a cache folder in this process (its index is loaded once, and one pack is written).</summary>
    /// <param name="directory">The absolute cache folder.</param>
    /// <param name="maxBytes">The cache's size limit.</param>
    /// <returns>The store.</returns>
    internal static PackStore For(string directory, long maxBytes) => Stores.GetOrAdd(directory, d => new PackStore(d, maxBytes));

    /// <summary>Closes this process's pack (the store stays usable: a later write starts a new pack).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            CloseOwnPack();
        }
    }

    /// <summary>Reads the entry whose key hash is <paramref name="keyHash"/>.</summary>
    /// <param name="keyHash">The SHA-256 of the key.</param>
    /// <param name="length">The expected number of features.</param>
    /// <returns>The entry's bytes (checked), or <see langword="null"/>.</returns>
    internal byte[]? TryRead(byte[] keyHash, int length)
    {
        var id = BinaryPrimitives.ReadUInt64LittleEndian(keyHash);
        Location location;
        Pack pack;
        lock (_gate)
        {
            if (!_index.TryGetValue(id, out location))
            {
                // Written by another process since this one looked? Look again, at most once a second.
                if (!RefreshIfDue() || !_index.TryGetValue(id, out location))
                {
                    return null;
                }
            }

            pack = _numbered[location.Pack];
        }

        var bytes = new byte[FeatureCache.EntryLength(length)];
        if (!ReadAt(pack, location.Offset, bytes) || !FeatureCache.IsEntryOf(bytes, keyHash, length))
        {
            lock (_gate)
            {
                if (_index.TryGetValue(id, out var now) && now == location)
                {
                    _index.Remove(id); // Stale, torn or forged: a miss from now on, and the next write replaces it.
                }
            }

            return null;
        }

        var stamp = DateTime.UtcNow;
        var touch = false;
        lock (_gate)
        {
            _used.Add(id);
            if (stamp - pack.Touched > FeatureCache.RecencyResolution)
            {
                pack.Touched = stamp;
                touch = true;
            }
        }

        if (touch)
        {
            // The pack was used: evicted after packs used less recently. At most once per resolution per pack.
            TryTouch(IndexPath(pack.Name), stamp);
        }

        return bytes;
    }

    /// <summary>Appends an entry to this process's pack.</summary>
    /// <param name="keyHash">The SHA-256 of the key.</param>
    /// <param name="entry">The entry's bytes.</param>
    /// <returns>Whether it was written.</returns>
    internal bool TryWrite(byte[] keyHash, byte[] entry)
    {
        var id = BinaryPrimitives.ReadUInt64LittleEndian(keyHash);
        lock (_gate)
        {
            EnsureLoaded();
            for (var attempt = 0; attempt < 2; attempt++)
            {
                try
                {
                    if (_own is null || _ownData is null || _ownIndex is null || _ownData.Length + entry.Length > _packCap)
                    {
                        OpenOwnPack();
                    }

                    var offset = _ownData!.Length;
                    _ownData.Write(entry);
                    var record = new byte[IndexRecordLength];
                    keyHash.CopyTo(record, 0);
                    BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(32), offset);
                    _ownIndex!.Write(record);
                    _own!.IndexBytesRead += IndexRecordLength;
                    _index[id] = new Location(_own.Number, offset);
                    _used.Add(id);
                    return true;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    CloseOwnPack(); // A full disk or a pack taken away: the next attempt starts a new pack.
                }
            }

            return false;
        }
    }

    /// <summary>Lists the packs on disk: name, total bytes of pack and index, last use (the index's time stamp).</summary>
    /// <returns>The packs.</returns>
    internal List<(string Name, long Bytes, DateTime LastUsed)> List()
    {
        var result = new List<(string, long, DateTime)>();
        if (!System.IO.Directory.Exists(Directory))
        {
            return result;
        }

        foreach (var index in new DirectoryInfo(Directory).EnumerateFiles("*.idx"))
        {
            var data = new FileInfo(Path.ChangeExtension(index.FullName, ".pack"));
            result.Add((Path.GetFileNameWithoutExtension(index.Name), index.Length + (data.Exists ? data.Length : 0), index.LastWriteTimeUtc));
        }

        return result;
    }

    /// <summary>Gets the number of distinct entries on disk (an entry written twice, by two processes, counts once).</summary>
    /// <returns>The count.</returns>
    internal long CountEntries()
    {
        var keys = new HashSet<UInt128>();
        if (System.IO.Directory.Exists(Directory))
        {
            foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*.idx"))
            {
                byte[] records;
                try
                {
                    records = File.ReadAllBytes(file);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    continue;
                }

                for (var at = 0; at + IndexRecordLength <= records.Length; at += IndexRecordLength)
                {
                    keys.Add(BinaryPrimitives.ReadUInt128LittleEndian(records.AsSpan(at)));
                }
            }
        }

        return keys.Count;
    }

    /// <summary>
    /// Removes the least recently used packs (this process's own pack and packs that a live process writes excepted) until
    /// the store is within <paramref name="target"/> bytes. The entries of a removed pack that this process read or wrote
    /// are first copied into its own pack, while they fit in what the removals free below the target, so what a run used
    /// survives its own trim.
    /// </summary>
    /// <param name="total">The store's size now, in bytes.</param>
    /// <param name="target">The size to get down to.</param>
    /// <returns>The number of entries removed (index records of removed packs, less those kept).</returns>
    internal int Evict(long total, long target)
    {
        var ordered = List().OrderBy(p => p.LastUsed).ThenBy(p => p.Name, StringComparer.Ordinal).ToList();
        var next = 0;
        var remaining = total;
        var chosen = new Queue<(string Name, long Bytes)>();
        void Choose()
        {
            while (remaining > target && next < ordered.Count)
            {
                var (name, bytes, _) = ordered[next++];
                if (!IsOwn(name))
                {
                    chosen.Enqueue((name, bytes));
                    remaining -= bytes;
                }
            }
        }

        Choose();
        var keep = Math.Max(0, target - remaining);
        var removed = 0;
        while (chosen.TryDequeue(out var pack))
        {
            if (TryRemovePack(pack.Name, ref keep, out var entries, out var kept))
            {
                removed += entries - kept;
            }
            else
            {
                remaining += pack.Bytes; // In use by a live process: take the next least recently used instead.
                Choose();
            }
        }

        return removed;
    }

    /// <summary>
    /// When there are more than <see cref="MaxPacks"/> packs (one per process that wrote, so many short runs leave many
    /// small ones), merges the smallest into this process's pack until half that many are left.
    /// </summary>
    /// <returns>The number of packs merged away.</returns>
    internal int Compact()
    {
        var packs = List();
        if (packs.Count <= MaxPacks)
        {
            return 0;
        }

        var merged = 0;
        foreach (var (name, _, _) in packs.OrderBy(p => p.Bytes).ThenBy(p => p.Name, StringComparer.Ordinal).Take(packs.Count - (MaxPacks / 2)))
        {
            var keep = long.MaxValue;
            if (TryRemovePack(name, ref keep, out _, out _, everything: true))
            {
                merged++;
            }
        }

        return merged;
    }

    /// <summary>Deletes every pack this process can (its own included: it starts a new one), and forgets the index.</summary>
    /// <returns>The number of index records deleted.</returns>
    internal int Clear()
    {
        lock (_gate)
        {
            CloseOwnPack();
            var deleted = 0;
            if (System.IO.Directory.Exists(Directory))
            {
                foreach (var file in System.IO.Directory.EnumerateFiles(Directory))
                {
                    var length = new FileInfo(file).Length;
                    if (FeatureCache.TryDelete(file) && file.EndsWith(".idx", StringComparison.Ordinal))
                    {
                        deleted += (int)(length / IndexRecordLength);
                    }
                }
            }

            _index.Clear();
            _packs.Clear();
            _numbered.Clear();
            _used.Clear();
            _loaded = false;
            return deleted;
        }
    }

    private bool TryRemovePack(string name, ref long keep, out int entries, out int kept, bool everything = false)
    {
        entries = 0;
        kept = 0;
        if (IsOwn(name))
        {
            return false;
        }

        FileStream data;
        try
        {
            // The exclusive lock: fails while a live process still appends to this pack (or reads it this instant).
            data = new FileStream(DataPath(name), FileMode.Open, FileAccess.Read, FileShare.None);
        }
        catch (FileNotFoundException)
        {
            return FeatureCache.TryDelete(IndexPath(name)); // An index without its pack: nothing to read in it.
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        using (data)
        {
            byte[] index;
            try
            {
                index = File.ReadAllBytes(IndexPath(name));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return false;
            }

            entries = index.Length / IndexRecordLength;
            for (var i = 0; i < entries; i++)
            {
                var keyHash = index.AsSpan(i * IndexRecordLength, 32).ToArray();
                var id = BinaryPrimitives.ReadUInt64LittleEndian(keyHash);
                bool wanted;
                lock (_gate)
                {
                    wanted = everything || _used.Contains(id);
                }

                if (!wanted)
                {
                    continue;
                }

                var offset = BinaryPrimitives.ReadInt64LittleEndian(index.AsSpan((i * IndexRecordLength) + 32));
                var entry = ReadEntry(data.SafeFileHandle, offset, keyHash);
                if (entry is not null && entry.Length <= keep && TryWrite(keyHash, entry))
                {
                    keep -= entry.Length;
                    kept++;
                }
            }

            // The index goes first: a reader that still finds the pack finds no record pointing into it.
            if (!FeatureCache.TryDelete(IndexPath(name)))
            {
                return false;
            }

            FeatureCache.TryDelete(DataPath(name));
        }

        lock (_gate)
        {
            _packs.Remove(name);
        }

        return true;
    }

    /// <summary>Reads one entry of unknown length at <paramref name="offset"/> (its header says the length), checked.</summary>
    private static byte[]? ReadEntry(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset, byte[] keyHash)
    {
        var header = new byte[FeatureCache.HeaderLength];
        if (offset < 0 || RandomAccess.Read(handle, header, offset) != header.Length)
        {
            return null;
        }

        var count = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8));
        if (count <= 0 || count > FeatureCache.MaxFeatures)
        {
            return null;
        }

        var entry = new byte[FeatureCache.EntryLength(count)];
        return RandomAccess.Read(handle, entry, offset) == entry.Length && FeatureCache.IsEntryOf(entry, keyHash, count) ? entry : null;
    }

    private static bool ReadAt(Pack pack, long offset, byte[] buffer)
    {
        try
        {
            using var handle = File.OpenHandle(pack.DataPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return offset >= 0 && RandomAccess.Read(handle, buffer, offset) == buffer.Length;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false; // Gone (evicted by another process) or being evicted right now: a miss.
        }
    }

    private void EnsureLoaded()
    {
        if (!_loaded)
        {
            _loaded = true;
            Refresh();
        }
    }

    private bool RefreshIfDue()
    {
        if (_loaded && Environment.TickCount64 - _lastRefresh < 1000)
        {
            return false;
        }

        _loaded = true;
        Refresh();
        return true;
    }

    /// <summary>Reads the index records that this process has not read yet (new packs, and what grew since).</summary>
    private void Refresh()
    {
        _lastRefresh = Environment.TickCount64;
        if (!System.IO.Directory.Exists(Directory))
        {
            return;
        }

        // In name order, which is the order packs were started in: where two packs hold one key, the later one wins (a
        // recomputed entry replaces the one it was recomputed for).
        foreach (var file in new DirectoryInfo(Directory).EnumerateFiles("*.idx").OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            var name = Path.GetFileNameWithoutExtension(file.Name);
            if (!_packs.TryGetValue(name, out var pack))
            {
                pack = Add(name, file.LastWriteTimeUtc);
            }

            var whole = file.Length / IndexRecordLength * IndexRecordLength; // A torn last record is left for later.
            if (whole <= pack.IndexBytesRead)
            {
                continue;
            }

            var records = new byte[whole - pack.IndexBytesRead];
            try
            {
                using var handle = File.OpenHandle(file.FullName, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                if (RandomAccess.Read(handle, records, pack.IndexBytesRead) != records.Length)
                {
                    continue;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            for (var at = 0; at < records.Length; at += IndexRecordLength)
            {
                var id = BinaryPrimitives.ReadUInt64LittleEndian(records.AsSpan(at));
                _index[id] = new Location(pack.Number, BinaryPrimitives.ReadInt64LittleEndian(records.AsSpan(at + 32)));
            }

            pack.IndexBytesRead = whole;
        }
    }

    private void OpenOwnPack()
    {
        CloseOwnPack();
        System.IO.Directory.CreateDirectory(Directory);
        var name = $"{DateTime.UtcNow:yyyyMMdd'T'HHmmssfffffff}-{Environment.ProcessId}-{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}";
        var pack = Add(name, DateTime.UtcNow);

        // Unbuffered appends: each entry and each index record is one write, visible to readers as soon as it returns.
        // Not flushed to the disk: a record lost in a crash is only recomputed, and a torn one fails its checksum.
        _ownData = new FileStream(pack.DataPath, FileMode.CreateNew, FileAccess.Write, FileShare.Read | FileShare.Delete, bufferSize: 0);
        _ownIndex = new FileStream(IndexPath(name), FileMode.CreateNew, FileAccess.Write, FileShare.Read | FileShare.Delete, bufferSize: 0);
        _own = pack;
    }

    private void CloseOwnPack()
    {
        _ownData?.Dispose();
        _ownIndex?.Dispose();
        _ownData = null;
        _ownIndex = null;
        _own = null;
    }

    private Pack Add(string name, DateTime touched)
    {
        var pack = new Pack(name, DataPath(name), _numbered.Count) { Touched = touched };
        _numbered.Add(pack);
        _packs[name] = pack;
        return pack;
    }

    private bool IsOwn(string name)
    {
        lock (_gate)
        {
            return _own?.Name == name;
        }
    }

    private string DataPath(string name) => Path.Combine(Directory, name + ".pack");

    private string IndexPath(string name) => Path.Combine(Directory, name + ".idx");

    private static void TryTouch(string path, DateTime now)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, now);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not worth failing a read over; the pack may just be evicted sooner.
        }
    }

    private sealed class Pack(string name, string dataPath, int number)
    {
        public int Number { get; } = number;

        public string Name { get; } = name;

        public string DataPath { get; } = dataPath;

        public long IndexBytesRead { get; set; }

        public DateTime Touched { get; set; }
    }

    private readonly record struct Location(int Pack, long Offset);
}
