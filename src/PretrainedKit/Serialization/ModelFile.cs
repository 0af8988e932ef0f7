using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using PretrainedKit.Backbones;
using PretrainedKit.Imaging;
using PretrainedKit.Internal;
using PretrainedKit.Models;

namespace PretrainedKit.Serialization;

/// <summary>What a model file holds, besides the head's numbers.</summary>
internal sealed record ModelManifest
{
    public const string FormatName = "PretrainedKit.ImageClassifier";

    /// <summary>
    /// The newest format version this library writes. Load accepts this version and every older one. Version 2 adds what
    /// a version-1 reader would silently get wrong (L2 normalisation, test-time augmentation, the grid feature layout);
    /// version 3 adds the kernel head; version 4 the int8 backbone (its calibration); version 5 a kernel head whose
    /// centres are stored as 16-bit floats (more than 800 centres). A model that uses none of them is still written as
    /// version 1, so older PretrainedKit versions keep reading it.
    /// </summary>
    public const int CurrentFormatVersion = 5;

    public string Format { get; init; } = FormatName;

    public int FormatVersion { get; init; } = 1;

    public string? LibraryVersion { get; init; }

    public DateTimeOffset CreatedUtc { get; init; }

    public required BackboneManifest Backbone { get; init; }

    public required ImageManifest Image { get; init; }

    public required IReadOnlyList<string> Classes { get; init; }

    public required HeadManifest Head { get; init; }

    /// <summary>Gets how features are scaled before the head; absent in files written before it existed (all standardised).</summary>
    public FeatureNormalization Normalization { get; init; } = FeatureNormalization.Standardize;

    /// <summary>Gets the views averaged per prediction; absent in files written before it existed (none).</summary>
    public TestTimeAugmentation TestTimeAugmentation { get; init; } = TestTimeAugmentation.None;

    /// <summary>Gets the head's calibration temperature; absent in files written before calibration existed, which are uncalibrated (1).</summary>
    public double Temperature { get; init; } = 1;

    /// <summary>Gets the "unknown" threshold on the top probability; absent (never unknown) in older files and in models trained without a precision target.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public float? UnknownThreshold { get; init; }
}

internal sealed record BackboneManifest(
    string Id,
    string WeightsSha256,
    int FeatureSize,
    int InputWidth,
    int InputHeight,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] CustomBackboneManifest? Custom = null)
{
    /// <summary>Gets the feature layout; absent in files written before it existed, which all used <see cref="Backbones.FeatureLayout.Pooled"/>.</summary>
    public Backbones.FeatureLayout FeatureLayout { get; init; } = Backbones.FeatureLayout.Pooled;

    /// <summary>Gets the arithmetic of the backbone; absent in files written before int8 existed, which are all float, and not written for float (so that float manifests stay as they were).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public Backbones.Precision Precision { get; init; } = Backbones.Precision.Float32;

    /// <summary>Gets the int8 calibration (present exactly when <see cref="Precision"/> is int8): with the weights, it decides the int8 graph.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Int8Manifest? Int8 { get; init; }
}

internal sealed record Int8Manifest(Onnx.QuantizedTypes Types, int ImageCount, IReadOnlyList<Int8RangeManifest> Ranges)
{
    /// <summary>
    /// Gets the percentile the ranges were clipped at; absent for plain (min, max) ranges, as in every file written before
    /// clipping existed. It needs no new format version: the graph is built from the ranges alone, so a version-4 reader
    /// builds the same graph.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Percentile { get; init; }
}

internal sealed record Int8RangeManifest(string Value, float Min, float Max);

internal sealed record ImageManifest(string Background, ResizeMode ResizeMode, long MaxPixels);

internal sealed record HeadManifest(string Kind, string Entry, string Sha256);

/// <summary>What a model file holds, as read: the manifest and the head it describes.</summary>
/// <param name="Manifest">The manifest.</param>
/// <param name="Head">The head, checked against the manifest.</param>
internal sealed record StoredModel(ModelManifest Manifest, HeadDefinition Head);

/// <summary>The model file: a zip archive with <c>manifest.json</c> and <c>head.bin</c>. Only numbers and names are read back, never types.</summary>
internal static class ModelFile
{
    public const string ManifestEntry = "manifest.json";
    public const string HeadEntry = "head.bin";
    public const string LinearHeadKind = "linear-softmax";
    public const string KernelHeadKind = "rbf-kernel-ridge";
    public const string HalfKernelHeadKind = "rbf-kernel-ridge-f16";
    private const long MaxEntryBytes = 256L * 1024 * 1024;
    private const long MaxCompressionRatio = 200;
    private static readonly byte[] HeadMagic = "PKHEAD01"u8.ToArray();
    private static readonly byte[] KernelHeadMagic = "PKHEAD02"u8.ToArray();
    private static readonly byte[] HalfKernelHeadMagic = "PKHEAD03"u8.ToArray();

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>The manifest that describes a model definition (the head's checksum is added by <c>Save</c>).</summary>
    /// <param name="definition">The model.</param>
    /// <param name="headSha256">The SHA-256 of the serialised head.</param>
    /// <returns>The manifest.</returns>
    public static ModelManifest Describe(ModelDefinition definition, string headSha256)
    {
        var backbone = definition.Backbone;
        var manifest = new ModelManifest
        {
            LibraryVersion = LibraryVersion.Informational,
            CreatedUtc = DateTimeOffset.UtcNow,
            Backbone = new BackboneManifest(backbone.Id, definition.WeightsSha256, definition.FeatureSize, backbone.InputWidth, backbone.InputHeight, ModelBackbone.Describe(backbone)) { FeatureLayout = definition.FeatureLayout, Precision = definition.Precision, Int8 = Int8Of(definition.Int8) },
            Image = new ImageManifest(definition.Image.Background.ToString(), definition.Image.ResizeMode, definition.Image.MaxPixels),
            Classes = definition.Classes,
            Head = new HeadManifest(KindOf(definition.Head), HeadEntry, headSha256),
            Normalization = definition.Head.Scaling.Kind,
            TestTimeAugmentation = definition.TestTimeAugmentation,
            Temperature = definition.Temperature,
            UnknownThreshold = definition.UnknownThreshold,
        };
        return manifest with { FormatVersion = RequiredVersion(manifest) };
    }

    /// <summary>Writes the model definition atomically (see <see cref="AtomicFile"/>): a failed save leaves the previous file intact.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="definition">The model.</param>
    /// <param name="beforeCommit">Test seam: runs with the temporary file's path after it is written and before the rename.</param>
    /// <param name="wrapStream">Test seam: wraps the temporary file's stream (to inject a full disk or a pause mid-write).</param>
    public static void Save(string path, ModelDefinition definition, Action<string>? beforeCommit = null, Func<Stream, Stream>? wrapStream = null)
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

        if (File.Exists(target) && File.GetAttributes(target).HasFlag(FileAttributes.ReadOnly))
        {
            // A rename would replace a read-only file on Linux and macOS; honour the read-only mark on every platform.
            throw new IOException($"Cannot save the model to '{target}': the existing file is read-only. Make it writable or save to another path. The file is unchanged.");
        }

        Save(target, Describe(definition, string.Empty), definition.Head, beforeCommit, wrapStream);
    }

    /// <summary>Writes a manifest and its head atomically; the head's kind, checksum and the format version are set from the head.</summary>
    /// <param name="target">The absolute path of the target file.</param>
    /// <param name="manifest">The manifest.</param>
    /// <param name="head">The head.</param>
    /// <param name="beforeCommit">Test seam: runs with the temporary file's path after it is written and before the rename.</param>
    /// <param name="wrapStream">Test seam: wraps the temporary file's stream.</param>
    internal static void Save(string target, ModelManifest manifest, HeadDefinition head, Action<string>? beforeCommit = null, Func<Stream, Stream>? wrapStream = null)
    {
        var headBytes = SerializeHead(head);
        manifest = manifest with { Head = new HeadManifest(KindOf(head), HeadEntry, Sha256(headBytes)) };
        manifest = manifest with { FormatVersion = RequiredVersion(manifest) };
        try
        {
            AtomicFile.Write(
                target,
                output =>
                {
                    using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
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
                },
                beforeCommit,
                wrapStream);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Could not save the model to '{target}': {ex.Message} The previous file, if any, is unchanged.", ex);
        }
    }

    /// <summary>
    /// Turns what a file holds into a model definition for the backbone it resolved to, checking that the backbone fits
    /// the file (id, input size) and that the image settings are valid.
    /// </summary>
    /// <param name="path">The model file, for messages.</param>
    /// <param name="stored">What the file holds.</param>
    /// <param name="backbone">The backbone to use.</param>
    /// <returns>The definition.</returns>
    public static ModelDefinition Define(string path, StoredModel stored, Backbone backbone)
    {
        var manifest = stored.Manifest;
        if (backbone.Id != manifest.Backbone.Id)
        {
            throw new ModelFormatException(path, $"the model was made with the backbone '{manifest.Backbone.Id}', not '{backbone.Id}'.", null);
        }

        if (backbone.InputWidth != manifest.Backbone.InputWidth || backbone.InputHeight != manifest.Backbone.InputHeight)
        {
            throw new ModelFormatException(path, "the backbone's input or feature size in the file does not match the installed backbone.", null);
        }

        ImagePreprocessingOptions image;
        try
        {
            image = new ImagePreprocessingOptions { Background = RgbColor.Parse(manifest.Image.Background), ResizeMode = manifest.Image.ResizeMode, MaxPixels = manifest.Image.MaxPixels };
            image.Validate();
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            throw new ModelFormatException(path, $"the image settings are invalid: {ex.Message}", ex);
        }

        return new ModelDefinition
        {
            Backbone = backbone,
            WeightsSha256 = manifest.Backbone.WeightsSha256,
            FeatureLayout = manifest.Backbone.FeatureLayout,
            Int8 = Int8Of(path, manifest.Backbone),
            Image = image,
            Classes = manifest.Classes,
            Head = stored.Head,
            TestTimeAugmentation = manifest.TestTimeAugmentation,
            Temperature = manifest.Temperature,
            UnknownThreshold = manifest.UnknownThreshold,
        };
    }

    /// <summary>Reads and checks a model file: only numbers and names are read back, never types.</summary>
    /// <param name="path">The model file.</param>
    /// <returns>The manifest and the head.</returns>
    public static StoredModel Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"The model file '{full}' does not exist. Train one first (pretrainedkit train DATA_DIR --model FILE).", full);
        }

        if (Internal.FileGuard.Problem(full, 2 * MaxEntryBytes) is { } problem) // A pipe or device would hang the read; two entries of at most MaxEntryBytes each.
        {
            throw new ModelFormatException(full, problem + " Give the path of a model file saved by PretrainedKit.", null);
        }

        try
        {
            using var stream = File.OpenRead(full);
            using var zip = new ZipArchive(stream, ZipArchiveMode.Read);
            byte[]? manifestBytes = null;
            byte[]? headBytes = null;
            foreach (var entry in zip.Entries)
            {
                CheckEntry(full, entry, manifestBytes is not null, headBytes is not null);
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
            var head = DeserializeHead(full, headBytes, manifest.Head.Kind, manifest.Backbone.FeatureSize, manifest.Classes.Count, manifest.Normalization);
            return new StoredModel(manifest, head);
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

    /// <summary>The oldest format version that can hold everything <paramref name="manifest"/> uses.</summary>
    internal static int RequiredVersion(ModelManifest manifest) =>
        manifest.Head?.Kind == HalfKernelHeadKind ? 5
        : manifest.Backbone.Precision != Backbones.Precision.Float32 ? 4
        : manifest.Head?.Kind == KernelHeadKind ? 3
        : manifest.Normalization == FeatureNormalization.L2ThenStandardize
        || manifest.TestTimeAugmentation != TestTimeAugmentation.None
        || manifest.Backbone.FeatureLayout == Backbones.FeatureLayout.MultiStageGrid
            ? 2
            : 1;

    private static Int8Manifest? Int8Of(Int8Calibration? calibration) =>
        calibration is null ? null : new Int8Manifest(calibration.Types, calibration.ImageCount, [.. calibration.Ranges.Select(r => new Int8RangeManifest(r.Value, r.Min, r.Max))])
        {
            Percentile = calibration.Percentile < 100 ? calibration.Percentile : null,
        };

    private static Int8Calibration? Int8Of(string path, BackboneManifest backbone)
    {
        if (backbone.Precision == Backbones.Precision.Float32)
        {
            return null;
        }

        if (backbone.Int8 is not { Ranges: not null } int8)
        {
            throw new ModelFormatException(path, "the model's backbone is int8, but the file holds no int8 calibration. Re-train the model.", null);
        }

        var calibration = new Int8Calibration([.. int8.Ranges.Select(r => new Int8Range(r?.Value ?? string.Empty, r?.Min ?? float.NaN, r?.Max ?? float.NaN))], int8.Types, int8.ImageCount)
        {
            Percentile = int8.Percentile ?? 100,
        };
        try
        {
            calibration.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new ModelFormatException(path, $"the int8 calibration is invalid: {ex.Message}", ex);
        }

        return calibration;
    }

    private static void Check(string path, ModelManifest manifest, byte[] headBytes)
    {
        if (manifest.Format != ModelManifest.FormatName)
        {
            throw new ModelFormatException(path, $"the manifest's format is '{manifest.Format}', not '{ModelManifest.FormatName}'.", null);
        }

        if (manifest.FormatVersion < 1)
        {
            throw new ModelFormatException(path, $"the file has format version {manifest.FormatVersion}, which no PretrainedKit ever wrote (versions start at 1): the file is corrupt or was altered. Re-save or re-train the model.", null);
        }

        if (manifest.FormatVersion > ModelManifest.CurrentFormatVersion)
        {
            throw new ModelFormatException(path, $"the file has format version {manifest.FormatVersion}, but this PretrainedKit reads versions 1 to {ModelManifest.CurrentFormatVersion}. Update PretrainedKit to load it.", null);
        }

        if (manifest.Backbone is null || manifest.Image is null || manifest.Head is null || manifest.Classes is null)
        {
            throw new ModelFormatException(path, "the manifest lacks a required section (backbone, image, classes or head).", null);
        }

        if (string.IsNullOrWhiteSpace(manifest.Backbone.Id) || string.IsNullOrWhiteSpace(manifest.Backbone.WeightsSha256) || manifest.Image.Background is null)
        {
            throw new ModelFormatException(path, "the manifest lacks the backbone's id, its weights hash or the background colour.", null);
        }

        if (manifest.Classes.Count < 2 || manifest.Classes.Any(string.IsNullOrWhiteSpace) || manifest.Classes.Distinct(StringComparer.Ordinal).Count() != manifest.Classes.Count)
        {
            throw new ModelFormatException(path, "the class names are invalid: at least two distinct, non-empty names are required.", null);
        }

        if (!Enum.IsDefined(manifest.Normalization) || !Enum.IsDefined(manifest.TestTimeAugmentation) || !Enum.IsDefined(manifest.Backbone.FeatureLayout) || !Enum.IsDefined(manifest.Backbone.Precision))
        {
            throw new ModelFormatException(path, "the manifest names a feature layout, normalisation or test-time augmentation this version of PretrainedKit does not know. Update PretrainedKit to load it.", null);
        }

        if (manifest.FormatVersion < RequiredVersion(manifest))
        {
            throw new ModelFormatException(path, $"the manifest says format version {manifest.FormatVersion} but uses settings of version {RequiredVersion(manifest)}: the file was altered. Re-save or re-train the model.", null);
        }

        if (manifest.Head.Kind is not (LinearHeadKind or KernelHeadKind or HalfKernelHeadKind))
        {
            throw new ModelFormatException(path, $"the head kind '{manifest.Head.Kind}' is not known to this version of PretrainedKit.", null);
        }

        if (!(manifest.Temperature > 0) || double.IsInfinity(manifest.Temperature))
        {
            throw new ModelFormatException(path, $"the calibration temperature {manifest.Temperature} is not a finite number above 0: the file is corrupt. Re-train the model.", null);
        }

        if (manifest.UnknownThreshold is { } threshold && !(threshold >= 0 && threshold <= 1))
        {
            throw new ModelFormatException(path, $"the unknown threshold {threshold} is not a probability from 0 to 1: the file is corrupt. Re-train the model.", null);
        }

        if (!string.Equals(Sha256(headBytes), manifest.Head.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new ModelFormatException(path, "the head's checksum does not match the manifest: the file is corrupt.", null);
        }
    }

    /// <summary>
    /// Refuses entries that a model file never holds and that archive tools would treat dangerously: absolute or
    /// parent-relative names, duplicates, folders, links and other non-regular files, and encrypted entries.
    /// </summary>
    private static void CheckEntry(string path, ZipArchiveEntry entry, bool haveManifest, bool haveHead)
    {
        var name = entry.FullName;
        if (name.Length == 0 || name[0] is '/' or '\\' || name.Contains(':', StringComparison.Ordinal) || name.Contains('\\', StringComparison.Ordinal)
            || name.Split('/').Any(part => part is ".." or "."))
        {
            throw new ModelFormatException(path, $"the archive holds an entry with an unsafe name '{name}' (absolute, or with '..' or a drive). A PretrainedKit model holds only {ManifestEntry} and {HeadEntry}; this file was altered or is not a model.", null);
        }

        if (name.EndsWith('/'))
        {
            throw new ModelFormatException(path, $"the archive holds a folder entry '{name}'. A PretrainedKit model holds only the files {ManifestEntry} and {HeadEntry}.", null);
        }

        // The upper 16 bits of the external attributes hold the Unix file mode when the archive was made on Unix.
        var unixType = (entry.ExternalAttributes >> 16) & 0xF000;
        if (unixType is not (0 or 0x8000))
        {
            var kind = unixType == 0xA000 ? "a symbolic link" : unixType == 0x4000 ? "a folder" : $"a special file (mode {unixType:X4})";
            throw new ModelFormatException(path, $"the entry '{name}' is {kind}, not a regular file. A PretrainedKit model holds only regular files; this file was altered or is not a model.", null);
        }

        if (entry.IsEncrypted)
        {
            throw new ModelFormatException(path, $"the entry '{name}' is encrypted. PretrainedKit never writes encrypted entries; this file was altered or is not a model.", null);
        }

        if ((name == ManifestEntry && haveManifest) || (name == HeadEntry && haveHead))
        {
            throw new ModelFormatException(path, $"the archive holds '{name}' twice; a model file was altered to hide a second copy. Re-save or re-train the model.", null);
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

    /// <summary>The manifest's name for a head's kind (and so its stored form).</summary>
    private static string KindOf(HeadDefinition head) =>
        head is KernelHeadDefinition kernel ? (kernel.StoresHalfCentres ? HalfKernelHeadKind : KernelHeadKind) : LinearHeadKind;

    private static byte[] SerializeHead(HeadDefinition head)
    {
        // Linear: magic, d, k, mean, scale, W (k x d), b.
        // Kernel: magic, d, m, k, gamma, mean, scale, centres (m x d), W (k x m), b; with the half magic the centres
        // are 16-bit floats (2 bytes each), everything else as before.
        var d = head.FeatureSize;
        var k = head.ClassCount;
        var kernel = head as KernelHeadDefinition;
        var half = kernel is { StoresHalfCentres: true };
        var m = kernel?.Centres.Length ?? 0;
        var magic = kernel is null ? HeadMagic : half ? HalfKernelHeadMagic : KernelHeadMagic;
        var header = magic.Length + (kernel is null ? 8 : 16);
        var values = (2L * d) + (kernel is null ? ((long)k * d) + k : ((long)k * m) + k);
        var bytes = new byte[header + (4 * values) + ((half ? 2L : 4L) * m * d)];
        magic.CopyTo(bytes, 0);
        var offset = magic.Length;
        void WriteInt(int value)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(offset), value);
            offset += 4;
        }

        void Write(float[] values)
        {
            foreach (var v in values)
            {
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(offset), v);
                offset += 4;
            }
        }

        WriteInt(d);
        if (kernel is not null)
        {
            WriteInt(m);
        }

        WriteInt(k);
        if (kernel is not null)
        {
            Write([kernel.Gamma]);
        }

        Write(head.Scaling.Mean);
        Write(head.Scaling.Scale);
        foreach (var centre in kernel?.Centres ?? [])
        {
            if (!half)
            {
                Write(centre);
                continue;
            }

            foreach (var v in centre)
            {
                BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(offset), (Half)v);
                offset += 2;
            }
        }

        foreach (var row in head.Weights)
        {
            Write(row);
        }

        Write(head.Biases);
        return bytes;
    }

    private static HeadDefinition DeserializeHead(string path, byte[] bytes, string kind, int featureSize, int classCount, FeatureNormalization normalization)
    {
        var isKernel = kind is KernelHeadKind or HalfKernelHeadKind;
        var half = kind == HalfKernelHeadKind;
        var magic = half ? HalfKernelHeadMagic : isKernel ? KernelHeadMagic : HeadMagic;
        var header = magic.Length + (isKernel ? 16 : 8);
        if (bytes.Length < header || !bytes.AsSpan(0, magic.Length).SequenceEqual(magic))
        {
            throw new ModelFormatException(path, "the head data is not recognised.", null);
        }

        var d = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(magic.Length));
        var m = isKernel ? BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(magic.Length + 4)) : 0;
        var k = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(magic.Length + (isKernel ? 8 : 4)));
        var values = (2L * d) + (isKernel ? ((long)k * m) + k : ((long)k * d) + k);
        if (d != featureSize || k != classCount || m < 0 || (isKernel && m == 0) || (half && m <= KernelHeadDefinition.FullPrecisionCentres) || bytes.Length != header + (4L * values) + ((half ? 2L : 4L) * m * d))
        {
            throw new ModelFormatException(path, $"the head's size ({k} classes x {d} features{(isKernel ? $", {m} kernel centres" : string.Empty)}, {bytes.Length:N0} bytes) does not match the manifest ({classCount} classes x {featureSize} features).", null);
        }

        var offset = header;
        // Values are 32-bit floats, or 16-bit ones for the centres of a half-precision kernel head.
        float[] Read(int n, bool asHalf = false)
        {
            var values = new float[n];
            for (var i = 0; i < n; i++)
            {
                values[i] = asHalf ? (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan(offset)) : BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(offset));
                offset += asHalf ? 2 : 4;
            }

            if (values.Any(v => !float.IsFinite(v)))
            {
                throw new ModelFormatException(path, "the head holds a non-finite number: the file is corrupt.", null);
            }

            return values;
        }

        var gamma = isKernel ? BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(header - 4)) : 0f;
        if (isKernel && !(gamma > 0 && float.IsFinite(gamma)))
        {
            throw new ModelFormatException(path, $"the kernel width {gamma} is not a finite number above 0: the file is corrupt.", null);
        }

        var scaling = new FeatureScaling(normalization, Read(d), Read(d));
        var centres = new float[m][];
        for (var i = 0; i < m; i++)
        {
            centres[i] = Read(d, half);
        }

        var inputs = isKernel ? m : d;
        var weights = new float[k][];
        for (var c = 0; c < k; c++)
        {
            weights[c] = Read(inputs);
        }

        var biases = Read(k);
        return isKernel ? new KernelHeadDefinition(scaling, centres, gamma, weights, biases) : new LinearHeadDefinition(scaling, weights, biases);
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();
}
