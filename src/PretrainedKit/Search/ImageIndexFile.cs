using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using PretrainedKit.Backbones;
using PretrainedKit.Imaging;
using PretrainedKit.Internal;
using PretrainedKit.Models;

namespace PretrainedKit.Search;

/// <summary>What an index file says about itself, besides the numbers.</summary>
internal sealed record ImageIndexManifest
{
    public const string FormatName = "PretrainedKit.ImageIndex";

    /// <summary>The newest format version this library writes; Load accepts it and every older one.</summary>
    public const int CurrentFormatVersion = 1;

    public string Format { get; init; } = FormatName;

    public int FormatVersion { get; init; } = CurrentFormatVersion;

    public string? LibraryVersion { get; init; }

    public DateTimeOffset CreatedUtc { get; init; }

    public required string BackboneId { get; init; }

    public required string WeightsSha256 { get; init; }

    public FeatureLayout FeatureLayout { get; init; }

    public required string Background { get; init; }

    public ResizeMode ResizeMode { get; init; }

    public long MaxPixels { get; init; }

    /// <summary>Gets the head's scaling kind, or <see langword="null"/> for raw features (then no scaling numbers follow).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public FeatureNormalization? Scaling { get; init; }

    /// <summary>Gets the digest of the int8 backbone whose embeddings these are, or <see langword="null"/> for float features.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Int8Digest { get; init; }

    public int Count { get; init; }

    public int Dimension { get; init; }

    public required IReadOnlyList<string> Paths { get; init; }
}

/// <summary>
/// The index file, one binary file read back defensively (the rules of the model file): the magic <c>PKINDEX1</c>, the
/// manifest's length and its JSON, the scaling's means and factors (when the manifest names a scaling), the embeddings
/// (float32, row-major), and the SHA-256 of everything before it. Load bounds the size before reading, checks the checksum
/// before parsing, then the format version, every count against the bytes present, every path, and that every number is
/// finite and every embedding has length 1. Only numbers and names are read back, never types.
/// </summary>
internal static class ImageIndexFile
{
    /// <summary>The largest index file read: the largest byte array .NET allocates (just under 2 GiB: about a million 512-float embeddings with their paths).</summary>
    public static readonly long MaxFileBytes = Array.MaxLength;

    private const int MaxManifestBytes = 512 * 1024 * 1024;
    private const int MaxDimension = 1 << 20;
    private static readonly byte[] Magic = "PKINDEX1"u8.ToArray();

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Writes the index atomically.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="index">The index.</param>
    /// <param name="beforeCommit">Test seam: runs with the temporary file's path before the rename.</param>
    public static void Save(string path, ImageIndex index, Action<string>? beforeCommit = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(index);
        var target = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(target)!;
        if (Directory.Exists(target))
        {
            throw new IOException($"Cannot save the index to '{target}': it is a folder. Give a file path such as '{Path.Combine(target, "images.pkindex")}'.");
        }

        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Cannot save the index to '{target}': the folder '{directory}' does not exist. Create it first.");
        }

        var space = index.Space;
        var manifest = new ImageIndexManifest
        {
            LibraryVersion = LibraryVersion.Informational,
            CreatedUtc = DateTimeOffset.UtcNow,
            BackboneId = space.BackboneId,
            WeightsSha256 = space.WeightsSha256,
            FeatureLayout = space.Layout,
            Background = space.Image.Background.ToString(),
            ResizeMode = space.Image.ResizeMode,
            MaxPixels = space.Image.MaxPixels,
            Scaling = space.Scaling?.Kind,
            Int8Digest = space.Int8Digest,
            Count = index.Count,
            Dimension = index.Dimension,
            Paths = index.Paths,
        };
        var manifestBytes = JsonSerializer.SerializeToUtf8Bytes(manifest, Json);
        try
        {
            AtomicFile.Write(
                target,
                output =>
                {
                    using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    void Put(ReadOnlySpan<byte> bytes)
                    {
                        hash.AppendData(bytes);
                        output.Write(bytes);
                    }

                    Span<byte> length = stackalloc byte[4];
                    Put(Magic);
                    BinaryPrimitives.WriteInt32LittleEndian(length, manifestBytes.Length);
                    Put(length);
                    Put(manifestBytes);
                    if (space.Scaling is { } scaling)
                    {
                        Put(Bytes(scaling.Mean));
                        Put(Bytes(scaling.Scale));
                    }

                    var vectors = index.Vectors.Span;
                    const int Chunk = 1 << 16;
                    for (var start = 0; start < vectors.Length; start += Chunk)
                    {
                        Put(Bytes(vectors.Slice(start, Math.Min(Chunk, vectors.Length - start))));
                    }

                    output.Write(hash.GetHashAndReset());
                },
                beforeCommit);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Could not save the index to '{target}': {ex.Message} The previous file, if any, is unchanged.", ex);
        }
    }

    /// <summary>Reads and checks an index file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The index.</returns>
    public static ImageIndex Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"The index file '{full}' does not exist. Build one first (pretrainedkit index DIR --out FILE).", full);
        }

        if (FileGuard.Problem(full, MaxFileBytes) is { } problem)
        {
            throw new ImageIndexFormatException(full, problem + " Give the path of an index file saved by PretrainedKit.", null);
        }

        byte[] bytes;
        using (var stream = File.OpenRead(full))
        {
            bytes = FileGuard.ReadBounded(stream, MaxFileBytes, stream.Length)
                ?? throw new ImageIndexFormatException(full, $"the file is larger than {FileGuard.Mib(MaxFileBytes)}, more than any index PretrainedKit writes.", null);
        }

        return Parse(full, bytes);
    }

    /// <summary>Checks and parses the bytes of an index file.</summary>
    /// <param name="path">The file, for messages.</param>
    /// <param name="bytes">Its content.</param>
    /// <returns>The index.</returns>
    internal static ImageIndex Parse(string path, byte[] bytes)
    {
        ImageIndexFormatException Corrupt(string detail) => new(path, detail, null);
        if (bytes.Length < Magic.Length + 4 + 32 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            throw Corrupt("the file does not start like a PretrainedKit index (magic PKINDEX1): it is not an index, or it is truncated.");
        }

        var body = bytes.AsSpan(0, bytes.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - 32)))
        {
            throw Corrupt("the checksum does not match: the file is corrupt, truncated or was altered. Rebuild the index.");
        }

        var manifestLength = BinaryPrimitives.ReadInt32LittleEndian(body[Magic.Length..]);
        var at = Magic.Length + 4;
        if (manifestLength <= 0 || manifestLength > MaxManifestBytes || manifestLength > body.Length - at)
        {
            throw Corrupt($"the manifest length {manifestLength} does not fit the file.");
        }

        ImageIndexManifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<ImageIndexManifest>(body.Slice(at, manifestLength), Json) ?? throw Corrupt("the manifest is empty.");
        }
        catch (JsonException ex)
        {
            throw new ImageIndexFormatException(path, $"the manifest is not valid: {ex.Message}", ex);
        }

        at += manifestLength;
        if (manifest.Format != ImageIndexManifest.FormatName)
        {
            throw Corrupt($"the manifest's format is '{manifest.Format}', not '{ImageIndexManifest.FormatName}'.");
        }

        if (manifest.FormatVersion < 1)
        {
            throw Corrupt($"the file has format version {manifest.FormatVersion}, which no PretrainedKit ever wrote (versions start at 1). Rebuild the index.");
        }

        if (manifest.FormatVersion > ImageIndexManifest.CurrentFormatVersion)
        {
            throw Corrupt($"the file has format version {manifest.FormatVersion}, but this PretrainedKit reads versions 1 to {ImageIndexManifest.CurrentFormatVersion}. Update PretrainedKit to load it.");
        }

        if (manifest.Paths is null || string.IsNullOrEmpty(manifest.BackboneId) || string.IsNullOrEmpty(manifest.WeightsSha256) || manifest.Background is null)
        {
            throw Corrupt("the manifest lacks a required field (backbone, weights, image options or paths).");
        }

        if (manifest.Dimension < 1 || manifest.Dimension > MaxDimension || manifest.Count < 0 || manifest.Paths.Count != manifest.Count)
        {
            throw Corrupt($"the manifest's sizes do not agree ({manifest.Count} embeddings of {manifest.Dimension} values, {manifest.Paths.Count} paths).");
        }

        if (manifest.Paths.Any(p => string.IsNullOrEmpty(p) || !Path.IsPathFullyQualified(p) || p.Contains('\0', StringComparison.Ordinal)))
        {
            throw Corrupt("a path in the manifest is empty or not absolute.");
        }

        if (!Enum.IsDefined(manifest.FeatureLayout) || !Enum.IsDefined(manifest.ResizeMode) || (manifest.Scaling is { } kind && !Enum.IsDefined(kind)))
        {
            throw Corrupt("the manifest names a feature layout, resize mode or scaling this PretrainedKit does not know.");
        }

        ImagePreprocessingOptions image;
        try
        {
            image = new ImagePreprocessingOptions { Background = RgbColor.Parse(manifest.Background), ResizeMode = manifest.ResizeMode, MaxPixels = manifest.MaxPixels };
            image.Validate();
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            throw new ImageIndexFormatException(path, $"the image settings are invalid: {ex.Message}", ex);
        }

        var dimension = manifest.Dimension;
        long expected = (manifest.Scaling is null ? 0 : 2L * dimension) + ((long)manifest.Count * dimension);
        if (expected * sizeof(float) != body.Length - at)
        {
            throw Corrupt($"the file holds {body.Length - at} bytes of numbers, but the manifest describes {expected * sizeof(float)}.");
        }

        FeatureScaling? scaling = null;
        if (manifest.Scaling is { } scalingKind)
        {
            var mean = Floats(body.Slice(at, dimension * sizeof(float)));
            at += dimension * sizeof(float);
            var scale = Floats(body.Slice(at, dimension * sizeof(float)));
            at += dimension * sizeof(float);
            if (!mean.All(float.IsFinite) || !scale.All(float.IsFinite))
            {
                throw Corrupt("the scaling holds a value that is not a finite number.");
            }

            scaling = new FeatureScaling(scalingKind, mean, scale);
        }

        var vectors = Floats(body[at..]);
        for (var i = 0; i < manifest.Count; i++)
        {
            var row = vectors.AsSpan(i * dimension, dimension);
            double norm = 0;
            foreach (var v in row)
            {
                if (!float.IsFinite(v))
                {
                    throw Corrupt($"the embedding of '{manifest.Paths[i]}' holds a value that is not a finite number.");
                }

                norm += (double)v * v;
            }

            if (Math.Abs(norm - 1) > 1e-3 && norm != 0)
            {
                throw Corrupt($"the embedding of '{manifest.Paths[i]}' does not have length 1 (squared length {norm:G4}).");
            }
        }

        var space = new EmbeddingSpace(manifest.BackboneId, manifest.WeightsSha256, manifest.FeatureLayout, image, scaling, manifest.Int8Digest);
        return new ImageIndex(space, [.. manifest.Paths], vectors, dimension, [], 0);
    }

    private static ReadOnlySpan<byte> Bytes(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * sizeof(float)];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
        }

        return bytes;
    }

    private static float[] Floats(ReadOnlySpan<byte> bytes)
    {
        var values = new float[bytes.Length / sizeof(float)];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * sizeof(float))..]);
        }

        return values;
    }
}
