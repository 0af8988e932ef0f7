using Microsoft.ML.OnnxRuntime;

namespace PretrainedKit.Backbones;

/// <summary>
/// One ONNX Runtime session over a backbone: a preprocessed input tensor in, the image's features out. Each image is
/// one run on the static-shape model, which on the CPU is faster than batched runs on a symbolic-batch copy and gives
/// bit-identical results per image (see bench/ for the measurements).
/// </summary>
/// <threadsafety><see cref="Run"/> is safe from many threads at once (ONNX Runtime sessions are thread-safe).</threadsafety>
internal sealed class BackboneSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly long[] _inputShape;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;

    internal BackboneSession(BackboneRuntime runtime, InferenceSession session)
    {
        Runtime = runtime;
        _session = session;
        _inputShape = [1, 3, runtime.Backbone.InputHeight, runtime.Backbone.InputWidth];
        _inputNames = [runtime.Backbone.InputName];
        _outputNames = [.. runtime.OutputNames];
    }

    /// <summary>Gets the runtime the session was opened from.</summary>
    public BackboneRuntime Runtime { get; }

    /// <summary>Runs the backbone on one preprocessed tensor and writes its features.</summary>
    /// <param name="tensor">At least <see cref="BackboneRuntime.TensorLength"/> values (a pooled array may be longer).</param>
    /// <param name="features">Receives <see cref="BackboneRuntime.FeatureSize"/> values.</param>
    public void Run(float[] tensor, Span<float> features)
    {
        var runtime = Runtime;
        using var runOptions = new RunOptions();
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, tensor.AsMemory(0, runtime.TensorLength), _inputShape);
        using var outputs = _session.Run(runOptions, _inputNames, [input], _outputNames);
        var target = features[..runtime.FeatureSize];
        if (runtime.Layout != FeatureLayout.Pooled)
        {
            MultiStagePooling.Pool(runtime.Backbone.Stages, outputs.Select(o => o.GetTensorDataAsSpan<float>().ToArray()).ToArray(), 1, target, runtime.Layout);
        }
        else
        {
            outputs[0].GetTensorDataAsSpan<float>()[..runtime.FeatureSize].CopyTo(target);
        }
    }

    /// <summary>Frees the native session and gives its memory back to the operating system (see <see cref="Internal.NativeHeap"/>).</summary>
    public void Dispose()
    {
        _session.Dispose();
        Internal.NativeHeap.ReleaseFreedMemory();
    }
}
