using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Imaging;

namespace PretrainedKit.Backbones;

/// <summary>The features of a list of images: one vector per image, or <see langword="null"/> where the image was skipped.</summary>
internal sealed record FeatureResult(float[]?[] Features, IReadOnlyList<InvalidImageException> Errors, int CacheHits)
{
    public IReadOnlyList<SkippedImage> Skipped { get; } = Errors.Select(e => new SkippedImage(e.Path ?? string.Empty, e.Reason, e.Message)).ToList();
}

/// <summary>
/// Reads, hashes, decodes and normalises images on background workers while the backbone runs batches on the calling
/// thread. A bounded queue between them and pooled tensor buffers keep memory flat however many images there are.
/// Features found in the <see cref="FeatureCache"/> skip decoding and the backbone altogether.
/// </summary>
internal static class FeaturePipeline
{
    /// <summary>Images per backbone run. On CPU, batches mainly save per-call overhead; results are identical to single runs.</summary>
    public const int DefaultBatchSize = 8;

    /// <summary>Describes everything besides the image bytes that decides a feature vector, for the cache key.</summary>
    public static string CacheContext(BackboneSession session, ImagePreprocessingOptions image) =>
        string.Create(
            CultureInfo.InvariantCulture,
            $"v2|{session.Backbone.Id}|{session.WeightsSha256}|{session.Layout}|{session.Backbone.OutputName}|{session.Backbone.InputWidth}x{session.Backbone.InputHeight}|{image.Background}|{image.ResizeMode}|{image.MaxPixels}");

    public static async Task<FeatureResult> RunAsync(
        BackboneSession session,
        IReadOnlyList<string> paths,
        ImagePreprocessingOptions image,
        Action<int, int, TimeSpan?>? progress,
        CancellationToken cancellationToken,
        FeatureCache? cache = null,
        int batchSize = DefaultBatchSize)
    {
        var features = new float[]?[paths.Count];
        var errors = new List<InvalidImageException>();
        if (paths.Count == 0)
        {
            return new FeatureResult(features, errors, 0);
        }

        var backbone = session.Backbone;
        var tensorLength = session.TensorLength;
        var context = cache is null ? string.Empty : CacheContext(session, image);
        // Decoding costs about 2 ms against the backbone's 30 ms per image on a 2-core machine; one worker per core also
        // serves cache hits (I/O and hashing only) quickly. Measured in bench/PretrainedKit.Benchmarks.
        var workers = Environment.ProcessorCount;
        var queue = Channel.CreateBounded<Item>(new BoundedChannelOptions(2 * batchSize) { SingleReader = true, SingleWriter = workers == 1 });
        var pool = ArrayPool<float>.Shared;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = stop.Token;
        var next = -1;

        async Task Produce()
        {
            var rgb = new byte[backbone.InputWidth * backbone.InputHeight * 3];
            int index;
            while ((index = Interlocked.Increment(ref next)) < paths.Count)
            {
                token.ThrowIfCancellationRequested();
                Item item;
                try
                {
                    var bytes = ImageDecoder.ReadFile(paths[index]);
                    var key = cache is null ? null : FeatureCache.ComputeKey(bytes, context);
                    if (key is not null && cache!.TryRead(key, session.FeatureSize) is { } cached)
                    {
                        item = new Item(index, null, cached, null, null);
                    }
                    else
                    {
                        ImageDecoder.DecodeNormalized(bytes, paths[index], image, backbone.InputWidth, backbone.InputHeight, rgb);
                        var tensor = pool.Rent(tensorLength);
                        session.Preprocess(rgb, tensor);
                        item = new Item(index, tensor, null, key, null);
                    }
                }
                catch (InvalidImageException ex)
                {
                    item = new Item(index, null, null, null, ex);
                }

                await queue.Writer.WriteAsync(item, token).ConfigureAwait(false);
            }
        }

        var producers = Enumerable.Range(0, workers).Select(_ => Task.Run(Produce, CancellationToken.None)).ToArray();
        var completion = Task.WhenAll(producers).ContinueWith(
            t => queue.Writer.TryComplete(t.Exception?.InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException)),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

        var stopwatch = Stopwatch.StartNew();
        var done = 0;
        var hits = 0;
        var batch = new float[batchSize * tensorLength];
        var batchOutput = new float[batchSize * session.FeatureSize];
        var pending = new List<Item>(batchSize);

        void Report()
        {
            var eta = done < paths.Count ? TimeSpan.FromTicks(stopwatch.Elapsed.Ticks / done * (paths.Count - done)) : TimeSpan.Zero;
            progress?.Invoke(done, paths.Count, eta);
        }

        void Flush()
        {
            if (pending.Count == 0)
            {
                return;
            }

            token.ThrowIfCancellationRequested();
            session.RunBatch(batch, pending.Count, batchOutput);
            for (var b = 0; b < pending.Count; b++)
            {
                var vector = batchOutput.AsSpan(b * session.FeatureSize, session.FeatureSize).ToArray();
                features[pending[b].Index] = vector;
                if (pending[b].Key is { } key)
                {
                    cache!.TryWrite(key, vector);
                }

                done++;
                Report();
            }

            pending.Clear();
        }

        try
        {
            var reader = queue.Reader;
            while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var item))
                {
                    token.ThrowIfCancellationRequested();
                    if (item.Error is not null)
                    {
                        errors.Add(item.Error);
                        done++;
                        Report();
                    }
                    else if (item.Cached is not null)
                    {
                        features[item.Index] = item.Cached;
                        hits++;
                        done++;
                        Report();
                    }
                    else
                    {
                        item.Tensor.AsSpan(0, tensorLength).CopyTo(batch.AsSpan(pending.Count * tensorLength));
                        pool.Return(item.Tensor!);
                        pending.Add(item);
                        if (pending.Count == batchSize)
                        {
                            Flush();
                        }
                    }
                }

                // Nothing more is ready right now: run what we have instead of waiting (keeps the backbone busy).
                Flush();
            }

            Flush();
            cancellationToken.ThrowIfCancellationRequested();
        }
        finally
        {
            // Stops the producers if the consumer ended early (cancellation or a failure) and waits for them, so no
            // background work outlives the call; tensors still queued go back to the pool.
            await stop.CancelAsync().ConfigureAwait(false);
            await completion.ConfigureAwait(false);
            while (queue.Reader.TryRead(out var left))
            {
                if (left.Tensor is not null)
                {
                    pool.Return(left.Tensor);
                }
            }
        }

        if (cache is not null && cache.Options.MaxBytes > 0 && paths.Count - hits > 0)
        {
            cache.Trim();
        }

        errors.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return new FeatureResult(features, errors, hits);
    }

    private sealed record Item(int Index, float[]? Tensor, float[]? Cached, string? Key, InvalidImageException? Error);
}
