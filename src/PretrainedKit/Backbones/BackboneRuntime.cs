using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace PretrainedKit.Backbones;

/// <summary>Which kind of work an ONNX Runtime session over the backbone is opened for.</summary>
internal enum SessionProfile
{
    /// <summary>One image at a time as fast as possible: every core in each run, or the GPU.</summary>
    Latency,

    /// <summary>Many images: one single-thread run per core, so that no core waits for another inside an operator.</summary>
    Throughput,
}

/// <summary>
/// A backbone made ready to run: its files found, its weights hashed, its preprocessing tables read and the device
/// chosen. It converts decoded pixels into the backbone's input tensor (<see cref="Preprocess"/>) and opens sessions
/// (<see cref="OpenSession"/>) that turn tensors into features. It decodes nothing.
/// </summary>
/// <threadsafety>Immutable; every member is safe from many threads at once.</threadsafety>
internal sealed class BackboneRuntime
{
    /// <summary>The most concurrent single-image runs a throughput session takes; beyond it each run gets more threads.</summary>
    public const int MaxConcurrentRuns = 8;

    private const int MaxCachedHashes = 16;
    private static readonly Dictionary<(string Path, long Length, DateTime Modified), string> HashCache = [];

    private readonly float[]? _negativeMean; // CHW, in the backbone's channel order (BGR), already negated; null for per-channel normalisation.
    private readonly float[] _channelScale; // Per-channel normalisation: tensor = pixel * scale + offset, in the backbone's channel order.
    private readonly float[] _channelOffset;
    private readonly int[] _sourceChannel; // Which RGB byte feeds each tensor channel.
    private readonly IReadOnlyList<string>? _extraOutputs;
    private readonly Lazy<Onnx.Proto.ModelProto>? _int8Graph;

    private BackboneRuntime(Backbone backbone, string modelPath, string weightsSha256, float[]? negativeMean, FeatureLayout layout, bool usesCuda, Int8Calibration? int8 = null)
    {
        var definition = backbone.Definition;
        _sourceChannel = definition.ChannelOrder == ChannelOrder.Bgr ? [2, 1, 0] : [0, 1, 2];
        _channelScale = [.. definition.Std.Select(std => definition.Scale / std)];
        _channelOffset = [.. definition.Mean.Zip(definition.Std, (mean, std) => -mean / std)];
        _negativeMean = negativeMean;
        _extraOutputs = layout != FeatureLayout.Pooled ? backbone.Stages.Select(s => s.OutputName).ToList() : null;
        Backbone = backbone;
        ModelPath = modelPath;
        WeightsSha256 = weightsSha256;
        Layout = layout;
        UsesCuda = usesCuda;
        OutputNames = layout != FeatureLayout.Pooled ? backbone.Stages.Select(s => s.OutputName).ToArray() : [backbone.OutputName];
        FeatureSize = layout != FeatureLayout.Pooled ? MultiStagePooling.FeatureSize(backbone.Stages, layout) : backbone.FeatureSize;
        ConcurrentRuns = usesCuda || ThroughputRuns < 2 ? 1 : ThroughputRuns;
        Int8 = int8;
        _int8Graph = int8 is null ? null : new Lazy<Onnx.Proto.ModelProto>(() => Int8Backbone.Build(modelPath, int8), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Gets the arithmetic the sessions run in.</summary>
    public Precision Precision => Int8 is null ? Precision.Float32 : Precision.Int8;

    /// <summary>Gets the calibration of the int8 graph, or <see langword="null"/> for float.</summary>
    public Int8Calibration? Int8 { get; }

    /// <summary>Gets the int8 graph (built on first use), or <see langword="null"/> for float.</summary>
    public Onnx.Proto.ModelProto? Int8Graph => _int8Graph?.Value;

    /// <summary>Gets the backbone.</summary>
    public Backbone Backbone { get; }

    /// <summary>Gets the ONNX file that is run.</summary>
    public string ModelPath { get; }

    /// <summary>Gets the SHA-256 of <see cref="ModelPath"/>.</summary>
    public string WeightsSha256 { get; }

    /// <summary>Gets which features the sessions compute.</summary>
    public FeatureLayout Layout { get; }

    /// <summary>Gets the length of one image's feature vector in <see cref="Layout"/>.</summary>
    public int FeatureSize { get; }

    /// <summary>Gets a value indicating whether latency sessions run on the CUDA execution provider.</summary>
    public bool UsesCuda { get; }

    /// <summary>
    /// Gets how many images a many-image run featurises at once: one per core (at most <see cref="MaxConcurrentRuns"/>) on
    /// a throughput session, or 1 on the latency session when there is one core or a GPU.
    /// </summary>
    public int ConcurrentRuns { get; }

    /// <summary>Gets a value indicating whether many-image runs use a <see cref="SessionProfile.Throughput"/> session.</summary>
    public bool HasThroughputProfile => ConcurrentRuns > 1;

    /// <summary>Gets the names of the outputs each run reads.</summary>
    public IReadOnlyList<string> OutputNames { get; }

    /// <summary>Gets minus the backbone's mean image (CHW, BGR), as added by <see cref="Preprocess"/>; used by the ONNX export.</summary>
    public ReadOnlySpan<float> NegativeMean => _negativeMean;

    /// <summary>Gets the number of values in one input tensor (3 x height x width).</summary>
    public int TensorLength => 3 * Backbone.InputWidth * Backbone.InputHeight;

    /// <summary>Gets the number of bytes of one decoded RGB image at the backbone's input size.</summary>
    public int RgbLength => TensorLength;

    private static int ThroughputRuns => Math.Min(Environment.ProcessorCount, MaxConcurrentRuns);

    /// <summary>Finds, hashes and reads the backbone's files and chooses the device (logged once, here).</summary>
    /// <param name="backbone">The backbone.</param>
    /// <param name="layout">Which features to compute.</param>
    /// <param name="logger">Receives the device line.</param>
    /// <returns>The runtime.</returns>
    public static BackboneRuntime Open(Backbone backbone, FeatureLayout layout, ILogger? logger)
    {
        var modelPath = backbone.ResolveModelPath();
        var preprocessPath = backbone.ResolvePreprocessPath();
        foreach (var file in new[] { modelPath, preprocessPath })
        {
            // Judged again here, for known backbones too and for files swapped since FromOnnx: a pipe would hang the hash.
            if (file is not null && Internal.FileGuard.Problem(file, Backbone.MaxOnnxFileBytes) is { } problem)
            {
                throw new ArgumentException($"The backbone file '{file}' of {backbone} cannot be used: {problem} Reinstall the backbone's package or give the path of a real .onnx file.", nameof(backbone));
            }
        }

        var hash = ComputeWeightsHash(modelPath);
        var negativeMean = preprocessPath is null ? null : ReadNegativeMean(backbone, preprocessPath);

        if (!Enum.IsDefined(layout))
        {
            throw new ArgumentOutOfRangeException(nameof(layout), layout, "Unknown feature layout.");
        }

        if (layout != FeatureLayout.Pooled && backbone.Stages.Count == 0)
        {
            throw new NotSupportedException($"The backbone {backbone} declares no stage outputs, so multi-stage features are not available. Use FeatureLayout.Pooled.");
        }

        bool cuda;
        using (var probe = new SessionOptions())
        {
            cuda = ExecutionProviders.TryAddCuda(probe, logger);
        }

        return new BackboneRuntime(backbone, modelPath, hash, negativeMean, layout, cuda);
    }

    /// <summary>The same backbone, run as the int8 graph of <paramref name="calibration"/> (its weights hash is still the float file's).</summary>
    /// <param name="calibration">The calibration.</param>
    /// <returns>The int8 runtime; its sessions run on the CPU.</returns>
    public BackboneRuntime WithInt8(Int8Calibration calibration)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        calibration.Validate();
        return new BackboneRuntime(Backbone, ModelPath, WeightsSha256, _negativeMean, Layout, usesCuda: false, calibration);
    }

    /// <summary>The same backbone with another feature layout (and the same precision).</summary>
    /// <param name="layout">The layout.</param>
    /// <param name="logger">Receives the device line.</param>
    /// <returns>The runtime.</returns>
    public BackboneRuntime WithLayout(FeatureLayout layout, ILogger? logger)
    {
        var opened = Open(Backbone, layout, logger);
        return Int8 is null ? opened : opened.WithInt8(Int8);
    }

    /// <summary>Opens (and checks against the backbone's definition) one ONNX Runtime session for the given kind of work.</summary>
    /// <param name="profile">Latency: all cores (or the GPU) per run. Throughput: a share of the cores per run, for <see cref="ConcurrentRuns"/> runs at once.</param>
    /// <returns>The session; the caller disposes it.</returns>
    public BackboneSession OpenSession(SessionProfile profile)
    {
        var throughput = profile == SessionProfile.Throughput && HasThroughputProfile;
        var threads = throughput ? Math.Max(1, Environment.ProcessorCount / ThroughputRuns) : Environment.ProcessorCount;
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
        };
        if (UsesCuda && !throughput)
        {
            options.AppendExecutionProvider_CUDA(0);
        }

        return new BackboneSession(this, BackboneCheck.OpenChecked(Backbone, ModelPath, options, _extraOutputs, Int8Graph));
    }

    /// <summary>The SHA-256 of a backbone file, remembered per path, size and time stamp (for the last few files only).</summary>
    /// <param name="modelPath">The file.</param>
    /// <returns>The lower-case hexadecimal hash.</returns>
    public static string ComputeWeightsHash(string modelPath)
    {
        var info = new FileInfo(modelPath);
        var key = (info.FullName, info.Length, info.LastWriteTimeUtc);
        lock (HashCache)
        {
            if (HashCache.TryGetValue(key, out var known))
            {
                return known;
            }
        }

        string hash;
        using (var stream = File.OpenRead(key.FullName))
        {
            hash = Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
        }

        lock (HashCache)
        {
            if (HashCache.Count >= MaxCachedHashes)
            {
                HashCache.Clear(); // Bounded: a process that opens many backbone files re-hashes some of them instead of growing.
            }

            HashCache[key] = hash;
        }

        return hash;
    }

    /// <summary>Converts interleaved RGB bytes (HWC) to the backbone's input tensor (CHW, in its channel order, normalised).</summary>
    /// <param name="rgb">The decoded image at the backbone's input size.</param>
    /// <param name="tensor">Receives <see cref="TensorLength"/> values.</param>
    public void Preprocess(ReadOnlySpan<byte> rgb, Span<float> tensor)
    {
        var plane = Backbone.InputWidth * Backbone.InputHeight;
        if (_negativeMean is null || Backbone.Definition.ChannelOrder != ChannelOrder.Bgr)
        {
            PreprocessGeneral(rgb, tensor, plane);
            return;
        }

        if (rgb.Length < 3 * plane || tensor.Length < 3 * plane)
        {
            throw new ArgumentException($"Expected {plane} RGB pixels and room for a {3 * plane}-value tensor.");
        }

        // Unchecked reads and writes within the lengths checked above: this loop runs for every image.
        ref var pixel = ref MemoryMarshal.GetReference(rgb);
        ref var mean = ref MemoryMarshal.GetArrayDataReference(_negativeMean);
        ref var blue = ref MemoryMarshal.GetReference(tensor);
        ref var green = ref Unsafe.Add(ref blue, plane);
        ref var red = ref Unsafe.Add(ref green, plane);
        for (var p = 0; p < plane; p++)
        {
            ref var source = ref Unsafe.Add(ref pixel, 3 * p);
            Unsafe.Add(ref blue, p) = Unsafe.Add(ref source, 2) + Unsafe.Add(ref mean, p);
            Unsafe.Add(ref green, p) = Unsafe.Add(ref source, 1) + Unsafe.Add(ref mean, plane + p);
            Unsafe.Add(ref red, p) = source + Unsafe.Add(ref mean, (2 * plane) + p);
        }
    }

    /// <summary>Custom backbones: a mean image in RGB order, or per-channel <c>pixel * scale + offset</c> in either order.</summary>
    private void PreprocessGeneral(ReadOnlySpan<byte> rgb, Span<float> tensor, int plane)
    {
        for (var c = 0; c < 3; c++)
        {
            var source = _sourceChannel[c];
            var output = tensor.Slice(c * plane, plane);
            if (_negativeMean is not null)
            {
                var mean = _negativeMean.AsSpan(c * plane, plane);
                for (var p = 0; p < plane; p++)
                {
                    output[p] = rgb[(p * 3) + source] + mean[p];
                }
            }
            else
            {
                var scale = _channelScale[c];
                var offset = _channelOffset[c];
                for (var p = 0; p < plane; p++)
                {
                    output[p] = (rgb[(p * 3) + source] * scale) + offset;
                }
            }
        }
    }

    private static float[] ReadNegativeMean(Backbone backbone, string preprocessPath)
    {
        // The package's preprocessing model is Split -> Concat(B, G, R) -> Sub(MeanImage). Running it once on a zero
        // image yields -MeanImage in BGR order, which is all the C# preprocessing needs.
        using var session = new InferenceSession(preprocessPath);
        var length = 3 * backbone.InputWidth * backbone.InputHeight;
        var zeros = new float[length];
        using var input = OrtValue.CreateTensorValueFromMemory(zeros, [1, 3, backbone.InputHeight, backbone.InputWidth]);
        var inputName = session.InputMetadata.Keys.Single();
        var outputName = session.OutputMetadata.Keys.Single();
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, [inputName], [input], [outputName]);
        var mean = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        if (mean.Length != length)
        {
            throw new ArgumentException($"The preprocessing model '{preprocessPath}' returns {mean.Length} values for a {backbone.InputWidth}x{backbone.InputHeight} image, not {length} (3 x height x width). Give a preprocessing model with the backbone's input shape, or none.");
        }

        return mean;
    }
}
