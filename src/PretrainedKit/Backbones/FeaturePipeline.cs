using System.Diagnostics;
using System.Threading.Channels;
using PretrainedKit.Data;
using PretrainedKit.Imaging;

namespace PretrainedKit.Backbones;

/// <summary>The features of a list of images: one vector per image, or <see langword="null"/> where the image was skipped.</summary>
internal sealed record FeatureResult(float[]?[] Features, IReadOnlyList<InvalidImageException> Errors)
{
    public IReadOnlyList<SkippedImage> Skipped { get; } = Errors.Select(e => new SkippedImage(e.Path ?? string.Empty, e.Reason, e.Message)).ToList();
}

/// <summary>
/// Reads, decodes and normalises images on a background worker while the backbone runs, with a bounded queue between
/// them so that memory stays flat however many images there are.
/// </summary>
internal static class FeaturePipeline
{
    private const int QueueCapacity = 8;

    public static async Task<FeatureResult> RunAsync(
        BackboneSession session,
        IReadOnlyList<string> paths,
        ImagePreprocessingOptions image,
        Action<int, int, TimeSpan?>? progress,
        CancellationToken cancellationToken)
    {
        var features = new float[]?[paths.Count];
        var skipped = new List<InvalidImageException>();
        if (paths.Count == 0)
        {
            return new FeatureResult(features, skipped);
        }

        var backbone = session.Backbone;
        var queue = Channel.CreateBounded<(int Index, float[]? Tensor, InvalidImageException? Error)>(
            new BoundedChannelOptions(QueueCapacity) { SingleReader = true, SingleWriter = true });

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var producerToken = stop.Token;
        var producer = Task.Run(
            async () =>
            {
                try
                {
                    var rgb = new byte[backbone.InputWidth * backbone.InputHeight * 3];
                    for (var i = 0; i < paths.Count; i++)
                    {
                        producerToken.ThrowIfCancellationRequested();
                        float[]? tensor = null;
                        InvalidImageException? error = null;
                        try
                        {
                            var bytes = ImageDecoder.ReadFile(paths[i]);
                            ImageDecoder.DecodeNormalized(bytes, paths[i], image, backbone.InputWidth, backbone.InputHeight, rgb);
                            tensor = new float[session.TensorLength];
                            session.Preprocess(rgb, tensor);
                        }
                        catch (InvalidImageException ex)
                        {
                            error = ex;
                        }

                        await queue.Writer.WriteAsync((i, tensor, error), producerToken).ConfigureAwait(false);
                    }

                    queue.Writer.Complete();
                }
                catch (Exception ex)
                {
                    queue.Writer.Complete(ex);
                }
            },
            CancellationToken.None);

        var stopwatch = Stopwatch.StartNew();
        var done = 0;
        try
        {
            await foreach (var item in queue.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (item.Error is not null)
                {
                    skipped.Add(item.Error);
                }
                else
                {
                    var vector = new float[backbone.FeatureSize];
                    session.Run(item.Tensor!, vector);
                    features[item.Index] = vector;
                }

                done++;
                var eta = done < paths.Count ? TimeSpan.FromTicks(stopwatch.Elapsed.Ticks / done * (paths.Count - done)) : TimeSpan.Zero;
                progress?.Invoke(done, paths.Count, eta);
            }
        }
        finally
        {
            // Stops the producer if the consumer ended early (cancellation or a failure) and waits for it, so no
            // background work outlives the call.
            await stop.CancelAsync().ConfigureAwait(false);
            await producer.ConfigureAwait(false);
        }

        return new FeatureResult(features, skipped);
    }
}
