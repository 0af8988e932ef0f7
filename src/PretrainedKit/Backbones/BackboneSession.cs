using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;

namespace PretrainedKit.Backbones;

/// <summary>
/// One ONNX Runtime session over a backbone. The preprocessing (colour order and mean subtraction) is done in C#
/// with the mean read once from the backbone's preprocessing model, so each image costs exactly one ONNX run.
/// </summary>
/// <threadsafety><see cref="Run"/> and <see cref="Preprocess"/> are safe from many threads at once; ONNX Runtime sessions are thread-safe.</threadsafety>
internal sealed class BackboneSession : IDisposable
{
    private static readonly ConcurrentDictionary<(string Path, long Length, DateTime Modified), string> HashCache = new();

    private readonly object _gate = new();
    private readonly Func<InferenceSession> _openLatency;
    private readonly Func<InferenceSession>? _openThroughput;
    private InferenceSession? _latency;
    private InferenceSession? _throughput;
    private readonly float[]? _negativeMean; // CHW, in the backbone's channel order (BGR), already negated; null for per-channel normalisation.
    private readonly float[] _channelScale; // Per-channel normalisation: tensor = pixel * scale + offset, in the backbone's channel order.
    private readonly float[] _channelOffset;
    private readonly int[] _sourceChannel; // Which RGB byte feeds each tensor channel.
    private readonly long[] _inputShape;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;

    private BackboneSession(Backbone backbone, string modelPath, string weightsSha256, Func<InferenceSession> openLatency, Func<InferenceSession>? openThroughput, float[]? negativeMean, FeatureLayout layout)
    {
        _openLatency = openLatency;
        _openThroughput = openThroughput;
        ConcurrentRuns = openThroughput is null ? 1 : ThroughputRuns;
        var definition = backbone.Definition;
        _sourceChannel = definition.ChannelOrder == ChannelOrder.Bgr ? [2, 1, 0] : [0, 1, 2];
        _channelScale = [.. definition.Std.Select(std => definition.Scale / std)];
        _channelOffset = [.. definition.Mean.Zip(definition.Std, (mean, std) => -mean / std)];
        Backbone = backbone;
        ModelPath = modelPath;
        WeightsSha256 = weightsSha256;
        _negativeMean = negativeMean;
        _inputShape = [1, 3, backbone.InputHeight, backbone.InputWidth];
        _inputNames = [backbone.InputName];
        Layout = layout;
        _outputNames = layout != FeatureLayout.Pooled ? backbone.Stages.Select(s => s.OutputName).ToArray() : [backbone.OutputName];
        FeatureSize = layout != FeatureLayout.Pooled ? MultiStagePooling.FeatureSize(backbone.Stages, layout) : backbone.FeatureSize;
    }

    /// <summary>
    /// Gets how many images the feature pipeline runs at once. On the CPU that is one run per core (at most
    /// <see cref="MaxConcurrentRuns"/>), each on one ONNX Runtime thread of a second session kept for throughput; with the
    /// CUDA execution provider, or on one core, it is 1 and the latency session is used.
    /// </summary>
    public int ConcurrentRuns { get; }

    /// <summary>The most concurrent single-image runs the throughput session takes; beyond it each run gets more threads.</summary>
    public const int MaxConcurrentRuns = 8;

    private static int ThroughputRuns => Math.Min(Environment.ProcessorCount, MaxConcurrentRuns);

    /// <summary>Gets which features the session computes.</summary>
    public FeatureLayout Layout { get; }

    /// <summary>Gets the length of one image's feature vector in <see cref="Layout"/>.</summary>
    public int FeatureSize { get; }

    public Backbone Backbone { get; }

    public string ModelPath { get; }

    public string WeightsSha256 { get; }

    /// <summary>Gets minus the backbone's mean image (CHW, BGR), as added by <see cref="Preprocess"/>; used by the ONNX export.</summary>
    public ReadOnlySpan<float> NegativeMean => _negativeMean;

    public int TensorLength => 3 * Backbone.InputWidth * Backbone.InputHeight;

    /// <summary>Opens the backbone for single-image latency (all cores on each run) and, on a multi-core CPU, for throughput.</summary>
    /// <param name="backbone">The backbone.</param>
    /// <param name="logger">Receives the device line.</param>
    /// <param name="layout">Which features to compute.</param>
    /// <param name="forFeaturizing">Opens the throughput session now and the latency session on first use (training featurises first); otherwise the other way round.</param>
    public static BackboneSession Open(Backbone backbone, Microsoft.Extensions.Logging.ILogger? logger = null, FeatureLayout layout = FeatureLayout.Pooled, bool forFeaturizing = false)
    {
        var modelPath = backbone.ResolveModelPath();
        var preprocessPath = backbone.ResolvePreprocessPath();
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
            cuda = ExecutionProviders.TryAddCuda(probe, logger); // Logs the device (or why the CPU is used) once, here.
        }

        var extraOutputs = layout != FeatureLayout.Pooled ? backbone.Stages.Select(s => s.OutputName).ToList() : null;
        InferenceSession OpenSession(int threads, bool useCuda)
        {
            using var options = new SessionOptions
            {
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                IntraOpNumThreads = threads,
                InterOpNumThreads = 1,
            };
            if (useCuda)
            {
                options.AppendExecutionProvider_CUDA(0);
            }

            return BackboneCheck.OpenChecked(backbone, modelPath, options, extraOutputs);
        }

        // Latency: one run at a time on all cores (or the GPU). Throughput: whole images in parallel, one ONNX Runtime
        // thread each. Inside one run, the threads of a parallel operator wait for each other, so any core taken by
        // decoding stalls them all; separate runs only slow the run whose core was taken. Measured on 2 cores
        // (bench/PretrainedKit.Benchmarks): cold featurisation went from 0.80x to 0.95x raw ORT at batch 1 / batch 8 this way.
        InferenceSession OpenLatency() => OpenSession(Environment.ProcessorCount, cuda);
        InferenceSession OpenThroughput() => OpenSession(Math.Max(1, Environment.ProcessorCount / ThroughputRuns), useCuda: false);

        // Only one of the two sessions is open at first, so memory holds one copy of the weights while images are featurised.
        var result = new BackboneSession(backbone, modelPath, hash, OpenLatency, cuda || ThroughputRuns < 2 ? null : OpenThroughput, negativeMean, layout);
        if (forFeaturizing && result._openThroughput is not null)
        {
            result.ThroughputSession();
        }
        else
        {
            result.LatencySession();
        }

        return result;
    }

    /// <summary>The SHA-256 of a backbone file, cached per path, size and time stamp.</summary>
    public static string ComputeWeightsHash(string modelPath)
    {
        var info = new FileInfo(modelPath);
        return HashCache.GetOrAdd((info.FullName, info.Length, info.LastWriteTimeUtc), key =>
        {
            using var stream = File.OpenRead(key.Path);
            return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
        });
    }

    /// <summary>Converts interleaved RGB bytes (HWC) to the backbone's input tensor (CHW, BGR, mean subtracted).</summary>
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

        // Unchecked reads and writes within the lengths checked above: this runs for every image, and bounds checks made
        // the loop 2x slower.
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

    /// <summary>Runs the backbone on one preprocessed tensor and writes the features.</summary>
    public void Run(float[] tensor, Span<float> features) => RunBatch(tensor, 1, features);

    /// <summary>Decodes, normalises and preprocesses one encoded image and runs the backbone on it: the single-image path used by Predict and the ML.NET featurizer.</summary>
    public float[] ExtractFeatures(byte[] bytes, string? path, Imaging.ImagePreprocessingOptions image) =>
        ExtractFeatures(bytes, path, image, [Imaging.ImageView.Original])[0];

    /// <summary>Like <see cref="ExtractFeatures(byte[], string?, Imaging.ImagePreprocessingOptions)"/>, for several views of the image (decoded once).</summary>
    public float[][] ExtractFeatures(byte[] bytes, string? path, Imaging.ImagePreprocessingOptions image, IReadOnlyList<Imaging.ImageView> views)
    {
        var rgb = new byte[Backbone.InputWidth * Backbone.InputHeight * 3];
        Imaging.ImageDecoder.DecodeNormalized(bytes, path, image, Backbone.InputWidth, Backbone.InputHeight, rgb);
        var viewRgb = views.Any(v => v != Imaging.ImageView.Original) ? new byte[rgb.Length] : rgb;
        var tensor = new float[TensorLength];
        var result = new float[views.Count][];
        for (var v = 0; v < views.Count; v++)
        {
            if (views[v] == Imaging.ImageView.Original)
            {
                Preprocess(rgb, tensor);
            }
            else
            {
                Imaging.ImageViews.Apply(views[v], rgb, viewRgb, Backbone.InputWidth, Backbone.InputHeight);
                Preprocess(viewRgb, tensor);
            }

            result[v] = new float[FeatureSize];
            Run(tensor, result[v]);
        }

        return result;
    }

    /// <summary>
    /// Runs the backbone on <paramref name="count"/> preprocessed tensors laid end to end and writes their features end to
    /// end. Each image is one ONNX Runtime run on the static-shape model: on CPU that is faster than one batched run on a
    /// symbolic-batch copy (measured in bench/PretrainedKit.Benchmarks), and it gives bit-identical results per image.
    /// </summary>
    /// <param name="tensors">The tensors.</param>
    /// <param name="count">How many tensors.</param>
    /// <param name="features">Receives the features.</param>
    /// <param name="throughput">Runs on the throughput session (called from <see cref="ConcurrentRuns"/> threads at once).</param>
    public void RunBatch(float[] tensors, int count, Span<float> features, bool throughput = false)
    {
        var session = throughput && _openThroughput is not null ? ThroughputSession() : LatencySession();
        using var runOptions = new RunOptions();
        for (var i = 0; i < count; i++)
        {
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, tensors.AsMemory(i * TensorLength, TensorLength), _inputShape);
            using var outputs = session.Run(runOptions, _inputNames, [input], _outputNames);
            var target = features.Slice(i * FeatureSize, FeatureSize);
            if (Layout != FeatureLayout.Pooled)
            {
                MultiStagePooling.Pool(Backbone.Stages, outputs.Select(o => o.GetTensorDataAsSpan<float>().ToArray()).ToArray(), 1, target, Layout);
            }
            else
            {
                outputs[0].GetTensorDataAsSpan<float>()[..FeatureSize].CopyTo(target);
            }
        }
    }

    /// <summary>
    /// Closes the throughput session and opens the latency session: training calls it once its images are featurised, so
    /// the model it returns holds one session. Not to be called while runs are in flight.
    /// </summary>
    public void SwitchToLatency()
    {
        lock (_gate)
        {
            _throughput?.Dispose();
            _throughput = null;
        }

        LatencySession();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _throughput?.Dispose();
            _latency?.Dispose();
            _throughput = _latency = null;
        }
    }

    private InferenceSession LatencySession()
    {
        lock (_gate)
        {
            return _latency ??= _openLatency();
        }
    }

    private InferenceSession ThroughputSession()
    {
        lock (_gate)
        {
            return _throughput ??= _openThroughput!();
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
