using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PretrainedKit;
using PretrainedKit.Internal;

namespace PretrainedKit.DependencyInjection;

/// <summary>
/// Named models for an application, in the style of ML.NET's <c>PredictionEnginePool</c>: register models with
/// <c>services.AddImageClassifierPool().FromFile(name, path)</c>, inject this class, and call
/// <see cref="Predict(string, string, int)"/> with the model's name. Each model is loaded on first use (or ahead of it, with
/// <see cref="PooledModelOptions.WarmUp"/>) and shared; unlike ML.NET's prediction engines, an
/// <see cref="ImageClassifierModel"/> is itself thread-safe, so there are no per-thread engines to rent and return.
/// </summary>
/// <remarks>
/// A model registered with <see cref="PooledModelOptions.WatchForChanges"/> is reloaded in the background when its file is
/// replaced: the new model takes over atomically, calls in flight finish on the old one, and the old one is disposed after
/// the last of them. A file that does not load is logged (with the reason) and raises <see cref="ModelReloadFailed"/>; the
/// old model keeps serving. <see cref="ModelReloaded"/> and <see cref="GetGeneration"/> tell when a reload happened.
/// </remarks>
/// <threadsafety>
/// Every member is safe to call from many threads at once. The container disposes the pool: watching stops, and every loaded
/// model is disposed once the calls in flight on it have finished. Events are raised on a thread-pool thread.
/// </threadsafety>
public sealed class ImageClassifierPool : IDisposable
{
    private readonly Dictionary<string, Entry> _models;
    private readonly ILogger _logger;
    private int _disposed;

    /// <summary>Initializes a new instance of the <see cref="ImageClassifierPool"/> class with models read once, on first use.</summary>
    /// <param name="models">Model names and their files.</param>
    /// <param name="logger">Where the models log; may be <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">A name is empty or given twice.</exception>
    public ImageClassifierPool(IEnumerable<KeyValuePair<string, string>> models, ILogger? logger = null)
        : this((models ?? throw new ArgumentNullException(nameof(models))).Select(m => new PooledModelOptions { ModelName = m.Key, FilePath = m.Value }), logger)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ImageClassifierPool"/> class; watching and warm-up start now.</summary>
    /// <param name="models">The models, each with its options.</param>
    /// <param name="logger">Where the models and reloads log; may be <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">A name or path is empty, a name is given twice, or an option is out of range.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder of a watched model does not exist.</exception>
    /// <exception cref="IOException">A watched model's folder cannot be watched (for example, the system's limit of file watchers is reached).</exception>
    public ImageClassifierPool(IEnumerable<PooledModelOptions> models, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        _logger = logger ?? NullLogger.Instance;
        _models = new Dictionary<string, Entry>(StringComparer.Ordinal);
        try
        {
            foreach (var options in models)
            {
                ArgumentNullException.ThrowIfNull(options);
                options.Validate();
                if (_models.ContainsKey(options.ModelName))
                {
                    throw new ArgumentException($"The model name '{options.ModelName}' is registered twice; give each model its own name.", nameof(models));
                }

                _models.Add(options.ModelName, new Entry(this, options with { FilePath = Path.GetFullPath(options.FilePath) }));
            }
        }
        catch
        {
            DisposeEntries();
            throw;
        }

        try
        {
            foreach (var entry in _models.Values)
            {
                entry.Start();
            }
        }
        catch
        {
            DisposeEntries();
            throw;
        }
    }

    /// <summary>Occurs after a watched model was replaced by the new contents of its file.</summary>
    public event EventHandler<ModelReloadEventArgs>? ModelReloaded;

    /// <summary>Occurs after the new contents of a watched model's file could not be loaded; the previous model keeps serving.</summary>
    public event EventHandler<ModelReloadEventArgs>? ModelReloadFailed;

    /// <summary>Gets the registered model names.</summary>
    public IReadOnlyCollection<string> ModelNames => _models.Keys;

    /// <summary>Gets how many times a model has been loaded: 0 before its first load, 1 after it, one more after each successful reload.</summary>
    /// <param name="modelName">The model's name.</param>
    /// <returns>The generation of the model serving now.</returns>
    /// <exception cref="KeyNotFoundException">No model has that name.</exception>
    public int GetGeneration(string modelName) => Find(modelName).Generation;

    /// <summary>
    /// Gets a model by name, loading it on first use. For a model registered with
    /// <see cref="PooledModelOptions.WatchForChanges"/>, the returned instance is disposed after a reload (once the calls in
    /// flight through the pool end); call the pool's <c>Predict</c>, or hold a <see cref="Rent"/> lease, to be safe across reloads.
    /// </summary>
    /// <param name="modelName">The name given to <c>FromFile</c>.</param>
    /// <returns>The shared model. Do not dispose it: the pool owns it.</returns>
    /// <exception cref="KeyNotFoundException">No model has that name.</exception>
    /// <exception cref="FileNotFoundException">The model file does not exist.</exception>
    /// <exception cref="Serialization.ModelFormatException">The model file is not usable.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public ImageClassifierModel GetModel(string modelName)
    {
        var loaded = Acquire(modelName);
        loaded.Release();
        return loaded.Model;
    }

    /// <summary>
    /// Takes the current model of a name for as long as the lease is held: a reload meanwhile does not dispose it. Dispose the
    /// lease when done (a <see langword="using"/> block).
    /// </summary>
    /// <param name="modelName">The model's name.</param>
    /// <returns>The lease, with the model and its generation.</returns>
    /// <exception cref="KeyNotFoundException">No model has that name.</exception>
    /// <exception cref="FileNotFoundException">The model file does not exist.</exception>
    /// <exception cref="Serialization.ModelFormatException">The model file is not usable.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public PooledModelLease Rent(string modelName) => new(Acquire(modelName));

    /// <summary>Classifies an image file with the named model.</summary>
    /// <param name="modelName">The model's name.</param>
    /// <param name="path">The image file.</param>
    /// <param name="topK">How many classes to return.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="KeyNotFoundException">No model has that name.</exception>
    /// <exception cref="Imaging.InvalidImageException">The image cannot be used; the message names it.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public Prediction Predict(string modelName, string path, int topK = ImageClassifierModel.DefaultTopK) =>
        Use(modelName, model => model.Predict(path, topK));

    /// <summary>Classifies an image read from a stream (for example an uploaded file) with the named model.</summary>
    /// <param name="modelName">The model's name.</param>
    /// <param name="stream">The image bytes; read to the end, not closed.</param>
    /// <param name="topK">How many classes to return.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="KeyNotFoundException">No model has that name.</exception>
    /// <exception cref="Imaging.InvalidImageException">The image cannot be used.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public Prediction Predict(string modelName, Stream stream, int topK = ImageClassifierModel.DefaultTopK) =>
        Use(modelName, model => model.Predict(stream, topK));

    /// <summary>Classifies an image read asynchronously from a stream (for example an ASP.NET Core request body) with the named model.</summary>
    /// <param name="modelName">The model's name.</param>
    /// <param name="stream">The image bytes; read to the end, not closed.</param>
    /// <param name="topK">How many classes to return.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="KeyNotFoundException">No model has that name.</exception>
    /// <exception cref="Imaging.InvalidImageException">The image cannot be used, or the stream holds more than <see cref="Imaging.ImageLimits.MaxFileBytes"/>.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public Task<Prediction> PredictAsync(string modelName, Stream stream, int topK = ImageClassifierModel.DefaultTopK, CancellationToken cancellationToken = default) =>
        PredictAsyncCore(Acquire(modelName), stream, topK, cancellationToken);

    /// <summary>Runs one call on the named model, holding it so that a reload cannot dispose it mid-call.</summary>
    private T Use<T>(string modelName, Func<ImageClassifierModel, T> call)
    {
        var loaded = Acquire(modelName);
        try
        {
            return call(loaded.Model);
        }
        finally
        {
            loaded.Release();
        }
    }

    private static async Task<Prediction> PredictAsyncCore(Loaded loaded, Stream stream, int topK, CancellationToken cancellationToken)
    {
        try
        {
            return await loaded.Model.PredictAsync(stream, topK, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            loaded.Release();
        }
    }

    /// <summary>Stops watching, and disposes every loaded model once the calls in flight on it have finished.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        DisposeEntries();
    }

    private void DisposeEntries()
    {
        foreach (var entry in _models.Values)
        {
            entry.Dispose();
        }
    }

    private Entry Find(string modelName)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        if (!_models.TryGetValue(modelName, out var entry))
        {
            throw new KeyNotFoundException($"No image classifier is registered under the name '{modelName}' (registered: {string.Join(", ", _models.Keys)}). Add it with AddImageClassifierPool().FromFile(\"{modelName}\", path).");
        }

        return entry;
    }

    private Loaded Acquire(string modelName)
    {
        var entry = Find(modelName);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return entry.Acquire();
    }

    /// <summary>A loaded model and the number of its users: the pool holds one reference while the model serves, each call one more.</summary>
    internal sealed class Loaded
    {
        private int _references = 1;

        public Loaded(ImageClassifierModel model, int generation)
        {
            Model = model;
            Generation = generation;
        }

        public ImageClassifierModel Model { get; }

        public int Generation { get; }

        /// <summary>Adds a user, unless the model has already been retired and released by everyone.</summary>
        public bool TryAddReference()
        {
            var seen = Volatile.Read(ref _references);
            while (seen > 0)
            {
                var before = Interlocked.CompareExchange(ref _references, seen + 1, seen);
                if (before == seen)
                {
                    return true;
                }

                seen = before;
            }

            return false;
        }

        /// <summary>Removes a user; the last one out disposes the model.</summary>
        public void Release()
        {
            if (Interlocked.Decrement(ref _references) == 0)
            {
                Model.Dispose();
            }
        }
    }

    /// <summary>One named model: the one serving now, and the watcher that replaces it.</summary>
    private sealed class Entry : IDisposable
    {
        private readonly ImageClassifierPool _pool;
        private readonly PooledModelOptions _options;
        private readonly object _gate = new();
        private Loaded? _current;
        private int _generation;
        private bool _disposed;
        private FileSystemWatcher? _watcher;
        private Timer? _timer;

        public Entry(ImageClassifierPool pool, PooledModelOptions options)
        {
            _pool = pool;
            _options = options;
            if (options.WatchForChanges)
            {
                var folder = Path.GetDirectoryName(options.FilePath)!;
                if (!Directory.Exists(folder))
                {
                    throw new DirectoryNotFoundException($"The folder of model '{options.ModelName}' does not exist, so it cannot be watched for changes: {folder}. Create it, or register the model without watchForChanges.");
                }

                _timer = new Timer(_ => Reload(), null, Timeout.Infinite, Timeout.Infinite);
                _watcher = new FileSystemWatcher(folder)
                {
                    NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                    IncludeSubdirectories = false,
                };

                // A save renames a temporary file over the model (Renamed, to our name); a copy writes it (Created, Changed).
                // A deletion alone changes nothing: the model keeps serving until a file is there again.
                _watcher.Created += (_, e) => OnFileEvent(e.FullPath);
                _watcher.Changed += (_, e) => OnFileEvent(e.FullPath);
                _watcher.Renamed += (_, e) => OnFileEvent(e.FullPath);
                _watcher.Error += (_, e) => Log.WatchFailed(_pool._logger, e.GetException(), options.ModelName, options.FilePath, e.GetException().Message);
            }
        }

        public int Generation => Volatile.Read(ref _generation);

        /// <summary>Starts watching, and the background load of a model registered with warm-up.</summary>
        public void Start()
        {
            if (_watcher is not null)
            {
                _watcher.EnableRaisingEvents = true;
            }

            if (_options.WarmUp)
            {
                _ = Task.Run(() =>
                {
                    try
                    {
                        _ = LoadFirst();
                    }
                    catch (ObjectDisposedException)
                    {
                        // The pool was disposed before the load began.
                    }
                    catch (Exception ex) when (ex is not OutOfMemoryException)
                    {
                        Log.PreloadFailed(_pool._logger, ex, _options.ModelName, _options.FilePath, ex.Message);
                    }
                });
            }
        }

        /// <summary>The model serving now, with one more user; release it when done.</summary>
        public Loaded Acquire()
        {
            while (true)
            {
                var current = Volatile.Read(ref _current) ?? LoadFirst();
                if (current.TryAddReference())
                {
                    return current;
                }

                // Retired between the read and the reference: a reload has already put its successor in place.
            }
        }

        public void Dispose()
        {
            _watcher?.Dispose();
            _timer?.Dispose();
            Loaded? last;
            lock (_gate)
            {
                _disposed = true;
                last = _current;
                Volatile.Write(ref _current, null);
            }

            last?.Release();
        }

        private ImageClassifierModel Load() => ImageClassifier.Load(_options.FilePath, logger: _pool._logger, warmUp: _options.WarmUp);

        private Loaded LoadFirst()
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, typeof(ImageClassifierPool));
                if (_current is null)
                {
                    var model = Load();
                    Volatile.Write(ref _current, new Loaded(model, Interlocked.Increment(ref _generation)));
                }

                return _current!;
            }
        }

        private void OnFileEvent(string path)
        {
            if (!string.Equals(path, _options.FilePath, StringComparison.Ordinal))
            {
                return;
            }

            try
            {
                _timer?.Change(_options.ReloadDelay, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // The pool is being disposed.
            }
        }

        /// <summary>Loads the new file and swaps it in, then tells the subscribers.</summary>
        private void Reload()
        {
            var args = ReloadLocked();
            if (args is not null)
            {
                (args.Error is null ? _pool.ModelReloaded : _pool.ModelReloadFailed)?.Invoke(_pool, args);
            }
        }

        /// <summary>One reload at a time, never during disposal; <see langword="null"/> when there was nothing to reload.</summary>
        private ModelReloadEventArgs? ReloadLocked()
        {
            lock (_gate)
            {
                if (_disposed || _current is null)
                {
                    return null; // Not loaded yet: the first call reads the newest file anyway.
                }

                ImageClassifierModel fresh;
                try
                {
                    fresh = Load();
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    Log.ModelReloadFailed(_pool._logger, ex, _options.ModelName, _options.FilePath, ex.Message);
                    return new ModelReloadEventArgs(_options.ModelName, _options.FilePath, Generation, ex);
                }

                var next = new Loaded(fresh, Interlocked.Increment(ref _generation));
                var previous = Interlocked.Exchange(ref _current, next);
                previous?.Release(); // Disposed now, or by the last call still running on it.
                Log.ModelReloaded(_pool._logger, _options.ModelName, _options.FilePath, next.Generation);
                return new ModelReloadEventArgs(_options.ModelName, _options.FilePath, next.Generation, null);
            }
        }
    }
}

/// <summary>
/// A model taken from an <see cref="ImageClassifierPool"/> with <see cref="ImageClassifierPool.Rent"/>: a reload does not
/// dispose it while the lease is held. Dispose the lease when done.
/// </summary>
/// <threadsafety>The model is thread-safe; dispose the lease once, after the last use.</threadsafety>
public sealed class PooledModelLease : IDisposable
{
    private ImageClassifierPool.Loaded? _loaded;

    internal PooledModelLease(ImageClassifierPool.Loaded loaded)
    {
        _loaded = loaded;
        Model = loaded.Model;
        Generation = loaded.Generation;
    }

    /// <summary>Gets the model; do not dispose it, and do not use it after the lease.</summary>
    public ImageClassifierModel Model { get; }

    /// <summary>Gets the generation of the model (see <see cref="ImageClassifierPool.GetGeneration"/>).</summary>
    public int Generation { get; }

    /// <summary>Returns the model to the pool; if it has been replaced meanwhile and this was its last user, it is disposed.</summary>
    public void Dispose() => Interlocked.Exchange(ref _loaded, null)?.Release();
}
