using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using PretrainedKit.Imaging;
using PretrainedKit.Training;

namespace PretrainedKit.Serialization;

/// <summary>What a model file holds, besides the head's numbers.</summary>
internal sealed record ModelManifest
{
    public const string FormatName = "PretrainedKit.ImageClassifier";

    /// <summary>The format version this library writes. Load accepts this version and every older one.</summary>
    public const int CurrentFormatVersion = 1;

    public string Format { get; init; } = FormatName;

    public int FormatVersion { get; init; } = CurrentFormatVersion;

    public string? LibraryVersion { get; init; }

    public DateTimeOffset CreatedUtc { get; init; }

    public required BackboneManifest Backbone { get; init; }

    public required ImageManifest Image { get; init; }

    public required IReadOnlyList<string> Classes { get; init; }

    public required HeadManifest Head { get; init; }
}

internal sealed record BackboneManifest(
    string Id,
    string WeightsSha256,
    int FeatureSize,
    int InputWidth,
    int InputHeight,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] CustomBackboneManifest? Custom = null);

internal sealed record ImageManifest(string Background, ResizeMode ResizeMode, long MaxPixels);

internal sealed record HeadManifest(string Kind, string Entry, string Sha256);

/// <summary>The model file: a zip archive with <c>manifest.json</c> and <c>head.bin</c>. Only numbers and names are read back, never types.</summary>
internal static class ModelFile
{
    public const string ManifestEntry = "manifest.json";
    public const string HeadEntry = "head.bin";
    public const string LinearHeadKind = "linear-softmax";
    private const long MaxEntryBytes = 256L * 1024 * 1024;
    private const long MaxCompressionRatio = 200;
    private static readonly byte[] HeadMagic = "PKHEAD01"u8.ToArray();

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Writes the model to a temporary file next to <paramref name="path"/>, then renames it over the target.</summary>
    public static void Save(string path, ModelManifest manifest, LinearHead head, Action<string>? beforeCommit = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var target = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(target)!;
        if (Directory.Exists(target))
        {
            throw new IOException($"Cannot save the model to '{target}': it is a folder. Give a file path such as '{Path.Combine(target, "model.pkmodel")}'.");
        }

        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Cannot save the model to '{target}': the folder '{directory}' does not exist. Create it first.");
        }

        var headBytes = SerializeHead(head);
        manifest = manifest with { Head = new HeadManifest(LinearHeadKind, HeadEntry, Sha256(headBytes)) };
        var temp = Path.Combine(directory, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
                {
                    var entry = zip.CreateEntry(ManifestEntry, CompressionLevel.Optimal);
                    using (var s = entry.Open())
                    {
                        JsonSerializer.Serialize(s, manifest, Json);
                    }

                    entry = zip.CreateEntry(HeadEntry, CompressionLevel.Optimal);
                    using (var s = entry.Open())
                    {
                        s.Write(headBytes);
                    }
                }

                stream.Flush(flushToDisk: true);
            }

            beforeCommit?.Invoke(temp); // Lets tests fail a save at its most delicate point.
            File.Move(temp, target, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new IOException($"Could not save the model to '{target}': {ex.Message} The previous file, if any, is unchanged.", ex);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public static (ModelManifest Manifest, LinearHead Head) Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"The model file '{full}' does not exist. Train one first (pretrainedkit train DATA_DIR --model FILE).", full);
        }

        try
        {
            using var stream = File.OpenRead(full);
            using var zip = new ZipArchive(stream, ZipArchiveMode.Read);
            byte[]? manifestBytes = null;
            byte[]? headBytes = null;
            foreach (var entry in zip.Entries)
            {
                switch (entry.FullName)
                {
                    case ManifestEntry:
                        manifestBytes = ReadEntry(full, entry);
                        break;
                    case HeadEntry:
                        headBytes = ReadEntry(full, entry);
                        break;
                    default:
                        throw new ModelFormatException(full, $"the archive holds an unexpected entry '{entry.FullName}'. A PretrainedKit model holds only {ManifestEntry} and {HeadEntry}; this file was altered or is not a model.", null);
                }
            }

            if (manifestBytes is null || headBytes is null)
            {
                throw new ModelFormatException(full, $"the archive lacks {(manifestBytes is null ? ManifestEntry : HeadEntry)}; it is not a PretrainedKit model file.", null);
            }

            var manifest = JsonSerializer.Deserialize<ModelManifest>(manifestBytes, Json)
                ?? throw new ModelFormatException(full, "the manifest is empty.", null);
            Check(full, manifest, headBytes);
            var head = DeserializeHead(full, headBytes, manifest.Backbone.FeatureSize, manifest.Classes.Count);
            return (manifest, head);
        }
        catch (ModelFormatException)
        {
            throw;
        }
        catch (InvalidDataException ex)
        {
            throw new ModelFormatException(full, $"the file is not a valid model archive (corrupt or truncated): {ex.Message} Re-save or re-train the model.", ex);
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException(full, $"the manifest is not valid: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is EndOfStreamException or ArgumentException or NotSupportedException)
        {
            throw new ModelFormatException(full, $"the file is corrupt: {ex.Message}", ex);
        }
    }

    private static void Check(string path, ModelManifest manifest, byte[] headBytes)
    {
        if (manifest.Format != ModelManifest.FormatName)
        {
            throw new ModelFormatException(path, $"the manifest's format is '{manifest.Format}', not '{ModelManifest.FormatName}'.", null);
        }

        if (manifest.FormatVersion < 1 || manifest.FormatVersion > ModelManifest.CurrentFormatVersion)
        {
            throw new ModelFormatException(path, $"the file has format version {manifest.FormatVersion}, but this PretrainedKit reads versions 1 to {ModelManifest.CurrentFormatVersion}. Update PretrainedKit to load it.", null);
        }

        if (manifest.Backbone is null || manifest.Image is null || manifest.Head is null || manifest.Classes is null)
        {
            throw new ModelFormatException(path, "the manifest lacks a required section (backbone, image, classes or head).", null);
        }

        if (manifest.Classes.Count < 2 || manifest.Classes.Any(string.IsNullOrWhiteSpace) || manifest.Classes.Distinct(StringComparer.Ordinal).Count() != manifest.Classes.Count)
        {
            throw new ModelFormatException(path, "the class names are invalid: at least two distinct, non-empty names are required.", null);
        }

        if (manifest.Head.Kind != LinearHeadKind)
        {
            throw new ModelFormatException(path, $"the head kind '{manifest.Head.Kind}' is not known to this version of PretrainedKit.", null);
        }

        if (!string.Equals(Sha256(headBytes), manifest.Head.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new ModelFormatException(path, "the head's checksum does not match the manifest: the file is corrupt.", null);
        }
    }

    private static byte[] ReadEntry(string path, ZipArchiveEntry entry)
    {
        if (entry.Length > MaxEntryBytes || (entry.CompressedLength > 0 && entry.Length / entry.CompressedLength > MaxCompressionRatio) || (entry.CompressedLength == 0 && entry.Length > 0))
        {
            throw new ModelFormatException(path, $"the entry '{entry.FullName}' is oversized or over-compressed ({entry.Length:N0} bytes from {entry.CompressedLength:N0}); refusing to expand it.", null);
        }

        using var s = entry.Open();
        var buffer = new byte[entry.Length];
        s.ReadExactly(buffer);
        if (s.ReadByte() != -1)
        {
            throw new ModelFormatException(path, $"the entry '{entry.FullName}' is longer than its header says.", null);
        }

        return buffer;
    }

    private static byte[] SerializeHead(LinearHead head)
    {
        var d = head.FeatureSize;
        var k = head.ClassCount;
        var bytes = new byte[HeadMagic.Length + 8 + (4 * ((2 * d) + (k * d) + k))];
        HeadMagic.CopyTo(bytes, 0);
        var offset = HeadMagic.Length;
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(offset), d);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(offset + 4), k);
        offset += 8;
        void Write(float[] values)
        {
            foreach (var v in values)
            {
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(offset), v);
                offset += 4;
            }
        }

        Write(head.Mean);
        Write(head.Scale);
        foreach (var row in head.Weights)
        {
            Write(row);
        }

        Write(head.Biases);
        return bytes;
    }

    private static LinearHead DeserializeHead(string path, byte[] bytes, int featureSize, int classCount)
    {
        if (bytes.Length < HeadMagic.Length + 8 || !bytes.AsSpan(0, HeadMagic.Length).SequenceEqual(HeadMagic))
        {
            throw new ModelFormatException(path, "the head data is not recognised.", null);
        }

        var d = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(HeadMagic.Length));
        var k = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(HeadMagic.Length + 4));
        if (d != featureSize || k != classCount || bytes.Length != HeadMagic.Length + 8 + (4L * ((2L * d) + ((long)k * d) + k)))
        {
            throw new ModelFormatException(path, $"the head's size ({k} classes x {d} features) does not match the manifest ({classCount} classes x {featureSize} features).", null);
        }

        var offset = HeadMagic.Length + 8;
        float[] Read(int n)
        {
            var values = new float[n];
            for (var i = 0; i < n; i++)
            {
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(offset));
                offset += 4;
            }

            if (values.Any(v => !float.IsFinite(v)))
            {
                throw new ModelFormatException(path, "the head holds a non-finite number: the file is corrupt.", null);
            }

            return values;
        }

        var mean = Read(d);
        var scale = Read(d);
        var weights = new float[k][];
        for (var c = 0; c < k; c++)
        {
            weights[c] = Read(d);
        }

        var biases = Read(k);
        return new LinearHead(mean, scale, weights, biases);
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // The temporary file is left for the user to remove; the error being reported matters more.
        }
        catch (UnauthorizedAccessException)
        {
            // Same as above.
        }
    }
}
