using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Imaging;

namespace PretrainedKit.Backbones;

/// <summary>
/// The features of a list of images: per image, one vector per requested view (in the order asked), or
/// <see langword="null"/> where the image was skipped.
/// </summary>
internal sealed record FeatureResult(float[][]?[] Views, IReadOnlyList<InvalidImageException> Errors, int CacheHits)
{
    public IReadOnlyList<SkippedImage> Skipped { get; } = Errors.Select(e => new SkippedImage(e.Path ?? string.Empty, e.Reason, e.Message)).ToList();

    /// <summary>Gets the first view's features per image (the original image unless other views were asked for).</summary>
    public float[]?[] Features { get; } = Views.Select(v => v?[0]).ToArray();
}

/// <summary>
/// Reads, hashes, decodes and normalises images on background workers while consumers run the backbone, one per
/// <see cref="BackboneSession.ConcurrentRuns"/>. A bounded queue between them and pooled tensor buffers keep memory flat
/// however many images there are.
/// Features found in the <see cref="FeatureCache"/> skip decoding and the backbone altogether.
/// </summary>
internal static class FeaturePipeline
{
    /// <summary>How many decoded images (or views) may wait for the backbone: it bounds the pipeline's memory.</summary>
    public const int DefaultQueueLength = 16;

    private static readonly ImageView[] OriginalOnly = [ImageView.Original];

    /// <summary>
    /// Describes everything besides the image bytes that decides a feature vector, for the cache key. The leading version
    /// changes whenever decoding gives other pixels (v3: the resampler for mild shrinking, within one level of v2's), so
    /// features cached by an older version are never mixed with new ones.
    /// </summary>
    public static string CacheContext(BackboneSession session, ImagePreprocessingOptions image, ImageView view = ImageView.Original)
    {
        var context = string.Create(
            CultureInfo.InvariantCulture,
            $"v3|{session.Backbone.Id}|{session.WeightsSha256}|{session.Layout}|{session.Backbone.OutputName}|{session.Backbone.InputWidth}x{session.Backbone.InputHeight}|{image.Background}|{image.ResizeMode}|{image.MaxPixels}");
        return view == ImageView.Original ? context : $"{context}|view={view}";
    }

    public static async Task<FeatureResult> RunAsync(
        BackboneSession session,
        IReadOnlyList<string> paths,
        ImagePreprocessingOptions image,
        Action<int, int, TimeSpan?>? progress,
        CancellationToken cancellationToken,
        FeatureCache? cache = null,
        int queueLength = DefaultQueueLength,
        Func<int, IReadOnlyList<ImageView>>? viewsOf = null)
    {
        viewsOf ??= _ => OriginalOnly;
        var views = new IReadOnlyList<ImageView>[paths.Count];
        var features = new float[][]?[paths.Count];
        var total = 0;
        for (var i = 0; i < paths.Count; i++)
        {
            views[i] = viewsOf(i);
            if (views[i].Count == 0)
            {
                throw new ArgumentException("Every image needs at least one view.", nameof(viewsOf));
            }

            features[i] = new float[views[i].Count][];
            total += views[i].Count;
        }

        var errors = new List<InvalidImageException>();
        if (paths.Count == 0)
        {
            return new FeatureResult(features, errors, 0);
        }

        var backbone = session.Backbone;
        var tensorLength = session.TensorLength;
        var contexts = new Dictionary<ImageView, string>();
        if (cache is not null)
        {
            foreach (var view in views.SelectMany(v => v).Distinct())
            {
                contexts[view] = CacheContext(session, image, view);
            }
        }

        // Decoding costs about 2 ms against the backbone's 30 ms per image on a 2-core machine; one worker per core also
        // serves cache hits (I/O and hashing only) quickly. Measured in bench/PretrainedKit.Benchmarks.
        var workers = Environment.ProcessorCount;
        var queue = Channel.CreateBounded<Item>(new BoundedChannelOptions(queueLength) { SingleReader = session.ConcurrentRuns <= 1, SingleWriter = workers == 1 });
        var pool = ArrayPool<float>.Shared;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = stop.Token;
        var next = -1;

        async Task Produce()
        {
            var rgb = new byte[backbone.InputWidth * backbone.InputHeight * 3];
            var viewRgb = new byte[rgb.Length];
            int index;
            while ((index = Interlocked.Increment(ref next)) < paths.Count)
            {
                token.ThrowIfCancellationRequested();
                var items = new List<Item>(views[index].Count);
                try
                {
                    var bytes = ImageDecoder.ReadFile(paths[index]);
                    var keys = cache is null ? null : FeatureCache.ComputeKeys(bytes, views[index].Select(v => contexts[v]).ToList()); // The file is hashed once for all views.
                    var decoded = false;
                    for (var v = 0; v < views[index].Count; v++)
                    {
                        var view = views[index][v];
                        var key = keys?[v];
                        if (key is not null && cache!.TryRead(key, session.FeatureSize) is { } cached)
                        {
                            items.Add(new Item(index, v, null, cached, null, null));
                            continue;
                        }

                        if (!decoded)
                        {
                            ImageDecoder.DecodeNormalized(bytes, paths[index], image, backbone.InputWidth, backbone.InputHeight, rgb, token);
                            decoded = true;
                        }

                        var tensor = pool.Rent(tensorLength);
                        if (view == ImageView.Original)
                        {
                            session.Preprocess(rgb, tensor);
                        }
                        else
                        {
                            ImageViews.Apply(view, rgb, viewRgb, backbone.InputWidth, backbone.InputHeight);
                            session.Preprocess(viewRgb, tensor);
                        }

                        items.Add(new Item(index, v, tensor, null, key, null));
                    }
                }
                catch (InvalidImageException ex)
                {
                    foreach (var made in items.Where(i => i.Tensor is not null))
                    {
                        pool.Return(made.Tensor!);
                    }

                    items.Clear();
                    items.Add(new Item(index, 0, null, null, null, ex));
                }

                foreach (var item in items)
                {
                    await queue.Writer.WriteAsync(item, token).ConfigureAwait(false);
                }
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
        var concurrent = session.ConcurrentRuns > 1;
        var gate = new object(); // Guards done, hits, errors and the progress callback when several consumers run.

        void Count(int items, bool hit)
        {
            lock (gate)
            {
                done += items;
                hits += hit ? items : 0;
                var eta = done < total ? TimeSpan.FromTicks(stopwatch.Elapsed.Ticks / done * (total - done)) : TimeSpan.Zero;
                progress?.Invoke(done, total, eta);
            }
        }

        // Each consumer runs the backbone on one image at a time, straight from the producer's tensor (the backbone runs
        // image by image anyway, see BackboneSession.RunBatch, so gathering batches only copied tensors). With a session
        // made for throughput (one ONNX Runtime thread per run), one consumer per core keeps every core busy with whole
        // images: no core waits for another inside an operator, so a producer that takes a core for a moment delays one
        // image instead of stalling both threads.
        async Task Consume()
        {
            var output = new float[session.FeatureSize];
            var reader = queue.Reader;
            while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var item))
                {
                    token.ThrowIfCancellationRequested();
                    if (item.Error is not null)
                    {
                        lock (gate)
                        {
                            errors.Add(item.Error);
                        }

                        features[item.Index] = null;
                        Count(views[item.Index].Count, hit: false);
                    }
                    else if (item.Cached is not null)
                    {
                        features[item.Index]![item.View] = item.Cached;
                        Count(1, hit: true);
                    }
                    else
                    {
                        try
                        {
                            session.RunBatch(item.Tensor!, 1, output, throughput: concurrent);
                        }
                        finally
                        {
                            pool.Return(item.Tensor!);
                        }

                        var vector = output.ToArray();
                        features[item.Index]![item.View] = vector;
                        if (item.Key is { } key)
                        {
                            cache!.TryWrite(key, vector);
                        }

                        Count(1, hit: false);
                    }
                }
            }
        }

        async Task ConsumeOrStopAll()
        {
            try
            {
                await Consume().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }

        var consumers = Enumerable.Range(0, session.ConcurrentRuns).Select(_ => Task.Run(ConsumeOrStopAll, CancellationToken.None)).ToArray();
        try
        {
            try
            {
                await Task.WhenAll(consumers).ConfigureAwait(false);
            }
            catch
            {
                // One consumer failed and the others were stopped with it: report the failure, not their cancellation.
                var failure = consumers.Where(c => c.IsFaulted).SelectMany(c => c.Exception!.InnerExceptions).FirstOrDefault(e => e is not OperationCanceledException);
                if (failure is not null && !cancellationToken.IsCancellationRequested)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
                }

                throw;
            }

            cancellationToken.ThrowIfCancellationRequested();
        }
        finally
        {
            // Stops the producers if the consumers ended early (cancellation or a failure) and waits for them, so no
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

        if (cache is not null && cache.Options.MaxBytes > 0 && total - hits > 0)
        {
            cache.Trim();
        }

        errors.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return new FeatureResult(features, errors, hits);
    }

    private sealed record Item(int Index, int View, float[]? Tensor, float[]? Cached, string? Key, InvalidImageException? Error);
}
