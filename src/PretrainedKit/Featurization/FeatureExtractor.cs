using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Threading.Channels;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Imaging;

namespace PretrainedKit.Featurization;

/// <summary>
/// The featurisation layer: images (files or bytes) in, one feature vector per requested view out. Training,
/// evaluation, prediction, the report and the ML.NET featurizer all come through here, and nothing else decodes an image
/// for the backbone.
/// </summary>
/// <remarks>
/// <para>Two paths, chosen by the call and never switched mid-run:</para>
/// <list type="bullet">
/// <item><see cref="Extract"/> (one image, as <c>Predict</c> needs it): the <see cref="SessionProfile.Latency"/> session,
/// every core (or the GPU) on each run.</item>
/// <item><see cref="ExtractAsync"/> (many images): one pass in which each image is read once (its file judged and its
/// size bounded), hashed for the cache, and decoded (which checks its header first) only when a view is missing from the cache, and run on the <see cref="SessionProfile.Throughput"/>
/// session, one single-thread run per core while decoding workers fill a bounded queue. On one core or a GPU the
/// latency session serves this path too.</item>
/// </list>
/// <para>Each session is opened on first use and kept until <see cref="Dispose"/>.</para>
/// </remarks>
/// <threadsafety>Every member is safe from many threads at once, except <see cref="Dispose"/>, which the owner calls once no call is in flight.</threadsafety>
internal sealed class FeatureExtractor : IDisposable
{
    /// <summary>How many decoded images (or views) may wait for the backbone: it bounds the pass's memory.</summary>
    public const int DefaultQueueLength = 16;

    private static readonly ImageView[] OriginalOnly = [ImageView.Original];

    private readonly object _gate = new();
    private BackboneSession? _latency;
    private BackboneSession? _throughput;

    /// <summary>Initializes a new instance of the <see cref="FeatureExtractor"/> class.</summary>
    /// <param name="runtime">The backbone, ready to run.</param>
    /// <param name="image">How images are decoded and normalised.</param>
    /// <param name="cache">The feature cache for many-image passes, or <see langword="null"/>.</param>
    public FeatureExtractor(BackboneRuntime runtime, ImagePreprocessingOptions image, FeatureCache? cache = null)
    {
        Runtime = runtime;
        Image = image;
        Cache = cache;
    }

    /// <summary>Gets the backbone runtime.</summary>
    public BackboneRuntime Runtime { get; }

    /// <summary>Gets how images are decoded and normalised.</summary>
    public ImagePreprocessingOptions Image { get; }

    /// <summary>Gets the feature cache of many-image passes, or <see langword="null"/>.</summary>
    public FeatureCache? Cache { get; }

    /// <summary>Gets the length of one view's feature vector.</summary>
    public int FeatureSize => Runtime.FeatureSize;

    /// <summary>
    /// Describes everything besides the image bytes that decides a feature vector, for the cache key. The leading version
    /// changes whenever decoding gives other pixels (v3: the resampler for mild shrinking), so features cached by an older
    /// version are never mixed with new ones.
    /// </summary>
    /// <param name="runtime">The backbone.</param>
    /// <param name="image">The image options.</param>
    /// <param name="view">The view.</param>
    /// <returns>The context string.</returns>
    public static string CacheContext(BackboneRuntime runtime, ImagePreprocessingOptions image, ImageView view = ImageView.Original)
    {
        var context = string.Create(
            CultureInfo.InvariantCulture,
            $"v3|{runtime.Backbone.Id}|{runtime.WeightsSha256}|{runtime.Layout}|{runtime.Backbone.OutputName}|{runtime.Backbone.InputWidth}x{runtime.Backbone.InputHeight}|{image.Background}|{image.ResizeMode}|{image.MaxPixels}");
        if (runtime.Int8 is { } int8)
        {
            context = $"{context}|int8={int8.Digest}"; // Float keys are unchanged: their features are too.
        }

        return view == ImageView.Original ? context : $"{context}|view={view}";
    }

    /// <summary>Opens the session that the first calls will need now, so that a bad backbone fails here rather than on first use.</summary>
    /// <param name="profile">The session to open.</param>
    public void Warm(SessionProfile profile) => _ = profile == SessionProfile.Latency ? LatencySession() : ManySession();

    /// <summary>Decodes an image and renders its original view into a tensor without running the backbone: a warm-up of the decoder and resampler.</summary>
    /// <param name="input">The image.</param>
    /// <exception cref="InvalidImageException">The image cannot be read or decoded.</exception>
    public void Render(ImageInput input)
    {
        var bytes = input.ReadBytes();
        var renderer = new ViewRenderer(Runtime, Image);
        renderer.Decode(bytes, input.Path);
        renderer.Render(bytes, input.Path, ImageView.Original, new float[Runtime.TensorLength]);
    }

    /// <summary>Computes the features of several views of one image, decoding it once (the latency path).</summary>
    /// <param name="input">The image.</param>
    /// <param name="views">The views, in order.</param>
    /// <returns>One vector per view.</returns>
    /// <exception cref="InvalidImageException">The image cannot be read or decoded.</exception>
    public float[][] Extract(ImageInput input, IReadOnlyList<ImageView> views)
    {
        var bytes = input.ReadBytes();
        var session = LatencySession();
        var renderer = new ViewRenderer(Runtime, Image);
        renderer.Decode(bytes, input.Path); // A bad image fails before the tensor is allocated.
        var tensor = new float[Runtime.TensorLength];
        var result = new float[views.Count][];
        for (var v = 0; v < views.Count; v++)
        {
            renderer.Render(bytes, input.Path, views[v], tensor);
            result[v] = new float[FeatureSize];
            session.Run(tensor, result[v]);
        }

        return result;
    }

    /// <summary>
    /// Computes the features of many images in one pass (the throughput path): each image is read once, looked up in the
    /// cache and decoded (header checked first) only when a view is missing; bad images are collected, never thrown.
    /// </summary>
    /// <param name="inputs">The images.</param>
    /// <param name="viewsOf">The views of the image at an index (at least one); by default the original only.</param>
    /// <param name="progress">Receives (views done, views in all, estimated time left), one call at a time.</param>
    /// <param name="cancellationToken">Stops the pass within the runs in flight.</param>
    /// <param name="queueLength">How many tensors may wait for the backbone.</param>
    /// <param name="hashContent">Whether to fill <see cref="FeatureSet.ContentHashes"/> even without a cache (with one, the
    /// hash the cache key needs is kept anyway); inspection and leakage checks ask for it, predictions do not.</param>
    /// <returns>The features and the bad images.</returns>
    public async Task<FeatureSet> ExtractAsync(
        IReadOnlyList<ImageInput> inputs,
        Func<int, IReadOnlyList<ImageView>>? viewsOf,
        Action<int, int, TimeSpan?>? progress,
        CancellationToken cancellationToken,
        int queueLength = DefaultQueueLength,
        bool hashContent = false)
    {
        viewsOf ??= _ => OriginalOnly;
        var views = new IReadOnlyList<ImageView>[inputs.Count];
        var features = new float[][]?[inputs.Count];
        var total = 0;
        for (var i = 0; i < inputs.Count; i++)
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
        var errorsByImage = new InvalidImageException?[inputs.Count];
        var hashes = new byte[]?[inputs.Count];
        if (inputs.Count == 0)
        {
            return new FeatureSet(features, errors, 0);
        }

        var session = ManySession();
        var cache = Cache;
        var tensorLength = Runtime.TensorLength;
        var contexts = cache is null ? null : views.SelectMany(v => v).Distinct().ToDictionary(v => v, v => CacheContext(Runtime, Image, v));

        // One decoding worker per core: decoding is cheap next to the backbone, and the workers also serve cache hits.
        var workers = Environment.ProcessorCount;
        var consumerCount = Runtime.ConcurrentRuns;
        var queue = Channel.CreateBounded<Item>(new BoundedChannelOptions(queueLength) { SingleReader = consumerCount <= 1, SingleWriter = workers == 1 });
        var pool = ArrayPool<float>.Shared;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = stop.Token;
        var next = -1;

        var stopwatch = Stopwatch.StartNew();
        var done = 0;
        var hits = 0;
        var gate = new object(); // Guards done, hits, errors and the progress callback.

        void Count(int count, bool hit)
        {
            lock (gate)
            {
                done += count;
                hits += hit ? count : 0;
                var eta = done < total ? TimeSpan.FromTicks(stopwatch.Elapsed.Ticks / done * (total - done)) : TimeSpan.Zero;
                progress?.Invoke(done, total, eta);
            }
        }

        async Task Produce()
        {
            var renderer = new ViewRenderer(Runtime, Image);
            int index;
            while ((index = Interlocked.Increment(ref next)) < inputs.Count)
            {
                token.ThrowIfCancellationRequested();
                var items = new List<Item>(views[index].Count);
                var input = inputs[index];
                var hitViews = 0;
                try
                {
                    var bytes = input.ReadBytes();
                    // Hashed once, and only when needed: the cache keys of all views and the content hash.
                    var digest = cache is not null || hashContent ? SHA256.HashData(bytes) : null;
                    hashes[index] = digest;
                    var keys = cache is null ? null : FeatureCache.KeysFromDigest(digest, views[index].Select(v => contexts![v]).ToList());
                    renderer.Reset();
                    for (var v = 0; v < views[index].Count; v++)
                    {
                        var key = keys?[v];
                        if (key is not null && cache!.TryRead(key, FeatureSize) is { } cached)
                        {
                            features[index]![v] = cached; // A hit needs no backbone, so it skips the queue.
                            hitViews++;
                            continue;
                        }

                        var tensor = pool.Rent(tensorLength);
                        try
                        {
                            renderer.Render(bytes, input.Path, views[index][v], tensor, token);
                        }
                        catch
                        {
                            pool.Return(tensor);
                            throw;
                        }

                        items.Add(new Item(index, v, tensor, key, null));
                    }

                    // Every view cached: no decode is needed, and no check either. The key binds these exact bytes to this
                    // exact context (image options and MaxPixels included), under which they passed every check before.
                }
                catch (InvalidImageException ex)
                {
                    foreach (var made in items.Where(i => i.Tensor is not null))
                    {
                        pool.Return(made.Tensor!);
                    }

                    items.Clear();
                    items.Add(new Item(index, 0, null, null, ex));
                    hitViews = 0; // The error item counts every view of the image.
                }

                if (hitViews > 0)
                {
                    Count(hitViews, hit: true);
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

        // Each consumer runs the backbone on one image at a time, straight from the producer's tensor.
        async Task Consume()
        {
            var output = new float[FeatureSize];
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

                        errorsByImage[item.Index] = item.Error;

                        features[item.Index] = null;
                        Count(views[item.Index].Count, hit: false);
                    }
                    else
                    {
                        try
                        {
                            session.Run(item.Tensor!, output);
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

        var consumers = Enumerable.Range(0, consumerCount).Select(_ => Task.Run(ConsumeOrStopAll, CancellationToken.None)).ToArray();
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
            // Stops the producers if the consumers ended early and waits for them, so no background work outlives the
            // call; tensors still queued go back to the pool.
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
        return new FeatureSet(features, errors, hits) { ErrorsByImage = errorsByImage, ContentHashes = hashes };
    }

    /// <summary>Frees the sessions. The owner calls it once no call is in flight.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _throughput?.Dispose();
            _latency?.Dispose();
            _throughput = _latency = null;
        }
    }

    private BackboneSession LatencySession()
    {
        lock (_gate)
        {
            return _latency ??= Runtime.OpenSession(SessionProfile.Latency);
        }
    }

    /// <summary>The session of many-image passes: the throughput session, or the latency session where there is no throughput profile.</summary>
    private BackboneSession ManySession()
    {
        if (!Runtime.HasThroughputProfile)
        {
            return LatencySession();
        }

        lock (_gate)
        {
            return _throughput ??= Runtime.OpenSession(SessionProfile.Throughput);
        }
    }

    /// <summary>A tensor for the backbone, or an image that failed (then every view of it is counted done).</summary>
    private sealed record Item(int Index, int View, float[]? Tensor, string? Key, InvalidImageException? Error);
}
