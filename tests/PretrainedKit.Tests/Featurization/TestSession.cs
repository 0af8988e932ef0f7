using Microsoft.Extensions.Logging;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;

namespace PretrainedKit.Tests.Featurization;

/// <summary>
/// The featurisation layer as the tests use it: a backbone runtime plus a <see cref="FeatureExtractor"/> with the
/// default image options (single images on the latency session, many-image passes through <see cref="RunAsync"/>).
/// </summary>
internal sealed class TestSession : IDisposable
{
    private readonly FeatureExtractor _extractor;
    private readonly BackboneSession _latency;

    private TestSession(BackboneRuntime runtime)
    {
        Runtime = runtime;
        _extractor = new FeatureExtractor(runtime, ImagePreprocessingOptions.Default);
        _latency = runtime.OpenSession(SessionProfile.Latency);
    }

    public BackboneRuntime Runtime { get; }

    public Backbone Backbone => Runtime.Backbone;

    public int FeatureSize => Runtime.FeatureSize;

    public int TensorLength => Runtime.TensorLength;

    public int ConcurrentRuns => Runtime.ConcurrentRuns;

    public string WeightsSha256 => Runtime.WeightsSha256;

    public FeatureLayout Layout => Runtime.Layout;

    public static TestSession Open(Backbone backbone, ILogger? logger = null, FeatureLayout layout = FeatureLayout.Pooled) =>
        new(BackboneRuntime.Open(backbone, layout, logger));

    public void Preprocess(ReadOnlySpan<byte> rgb, Span<float> tensor) => Runtime.Preprocess(rgb, tensor);

    public string ModelPath => Runtime.ModelPath;

    public void Run(float[] tensor, Span<float> features) => _latency.Run(tensor, features);

    /// <summary>Runs tensors laid end to end, one run each on the latency session, writing features end to end.</summary>
    public void RunBatch(float[] tensors, int count, Span<float> features)
    {
        for (var i = 0; i < count; i++)
        {
            _latency.Run(tensors.AsSpan(i * TensorLength, TensorLength).ToArray(), features.Slice(i * FeatureSize, FeatureSize));
        }
    }

    /// <summary>One image, one view, through the latency path (as Predict and the ML.NET featurizer do).</summary>
    public float[] ExtractFeatures(byte[] bytes, string? path, ImagePreprocessingOptions image)
    {
        using var extractor = image == ImagePreprocessingOptions.Default ? null : new FeatureExtractor(Runtime, image);
        return (extractor ?? _extractor).Extract(new ImageInput(path, bytes), [ImageView.Original])[0];
    }

    /// <summary>A many-image pass through a new extractor (so each call opens its sessions as a training run does).</summary>
    public static async Task<FeatureSet> RunAsync(
        TestSession session,
        IReadOnlyList<string> paths,
        ImagePreprocessingOptions image,
        Action<int, int, TimeSpan?>? progress,
        CancellationToken cancellationToken,
        FeatureCache? cache = null,
        int queueLength = FeatureExtractor.DefaultQueueLength,
        Func<int, IReadOnlyList<ImageView>>? viewsOf = null)
    {
        using var extractor = new FeatureExtractor(session.Runtime, image, cache);
        return await extractor.ExtractAsync(paths.Select(ImageInput.FromFile).ToList(), viewsOf, progress, cancellationToken, queueLength).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _latency.Dispose();
        _extractor.Dispose();
    }
}

/// <summary>Scoring helpers for heads trained in tests.</summary>
internal static class HeadTestExtensions
{
    /// <summary>Uncalibrated probabilities (temperature 1) of one feature vector.</summary>
    public static float[] Probabilities(this PretrainedKit.Models.HeadDefinition head, float[] features) =>
        PretrainedKit.Models.ModelDefinition.Softmax(head.Logits(features), 1);
}
