using Microsoft.Extensions.Logging;
using PretrainedKit;

namespace PretrainedKit.DependencyInjection;

/// <summary>
/// Named models for an application, in the style of ML.NET's <c>PredictionEnginePool</c>: register models with
/// <c>services.AddImageClassifierPool().FromFile(name, path)</c>, inject this class, and call
/// <see cref="Predict(string, string, int)"/> with the model's name. Each model is loaded on first use and shared;
/// unlike ML.NET's prediction engines, an <see cref="ImageClassifierModel"/> is itself thread-safe, so there are no
/// per-thread engines to rent and return.
/// </summary>
/// <threadsafety>Every member is safe to call from many threads at once. The container disposes the pool, and with it every loaded model.</threadsafety>
public sealed class ImageClassifierPool : IDisposable
{
    private readonly Dictionary<string, Lazy<ImageClassifierModel>> _models;
    private readonly ILogger? _logger;
    private int _disposed;

    /// <summary>Initializes a new instance of the <see cref="ImageClassifierPool"/> class.</summary>
    /// <param name="models">Model names and their files.</param>
    /// <param name="logger">Where the models log; may be <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">A name is empty or given twice.</exception>
    public ImageClassifierPool(IEnumerable<KeyValuePair<string, string>> models, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        _logger = logger;
        _models = new Dictionary<string, Lazy<ImageClassifierModel>>(StringComparer.Ordinal);
        foreach (var (name, path) in models)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(name);
            ArgumentException.ThrowIfNullOrWhiteSpace(path);
            var full = Path.GetFullPath(path);
            if (!_models.TryAdd(name, new Lazy<ImageClassifierModel>(() => ImageClassifier.Load(full, logger: _logger), LazyThreadSafetyMode.ExecutionAndPublication)))
            {
                throw new ArgumentException($"The model name '{name}' is registered twice; give each model its own name.", nameof(models));
            }
        }
    }

    /// <summary>Gets the registered model names.</summary>
    public IReadOnlyCollection<string> ModelNames => _models.Keys;

    /// <summary>Gets a model by name, loading it on first use.</summary>
    /// <param name="modelName">The name given to <c>FromFile</c>.</param>
    /// <returns>The shared model. Do not dispose it: the pool owns it.</returns>
    /// <exception cref="KeyNotFoundException">No model has that name.</exception>
    /// <exception cref="FileNotFoundException">The model file does not exist.</exception>
    /// <exception cref="Serialization.ModelFormatException">The model file is not usable.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public ImageClassifierModel GetModel(string modelName)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!_models.TryGetValue(modelName, out var model))
        {
            throw new KeyNotFoundException($"No image classifier is registered under the name '{modelName}' (registered: {string.Join(", ", _models.Keys)}). Add it with AddImageClassifierPool().FromFile(\"{modelName}\", path).");
        }

        return model.Value;
    }

    /// <summary>Classifies an image file with the named model.</summary>
    /// <param name="modelName">The model's name.</param>
    /// <param name="path">The image file.</param>
    /// <param name="topK">How many classes to return.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="KeyNotFoundException">No model has that name.</exception>
    /// <exception cref="Imaging.InvalidImageException">The image cannot be used; the message names it.</exception>
    public Prediction Predict(string modelName, string path, int topK = ImageClassifierModel.DefaultTopK) => GetModel(modelName).Predict(path, topK);

    /// <summary>Classifies an image read from a stream (for example an uploaded file) with the named model.</summary>
    /// <param name="modelName">The model's name.</param>
    /// <param name="stream">The image bytes; read to the end, not closed.</param>
    /// <param name="topK">How many classes to return.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="KeyNotFoundException">No model has that name.</exception>
    /// <exception cref="Imaging.InvalidImageException">The image cannot be used.</exception>
    public Prediction Predict(string modelName, Stream stream, int topK = ImageClassifierModel.DefaultTopK) => GetModel(modelName).Predict(stream, topK);

    /// <summary>Classifies an image read asynchronously from a stream (for example an ASP.NET Core request body) with the named model.</summary>
    /// <param name="modelName">The model's name.</param>
    /// <param name="stream">The image bytes; read to the end, not closed.</param>
    /// <param name="topK">How many classes to return.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="KeyNotFoundException">No model has that name.</exception>
    /// <exception cref="Imaging.InvalidImageException">The image cannot be used, or the stream holds more than <see cref="Imaging.ImageLimits.MaxFileBytes"/>.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<Prediction> PredictAsync(string modelName, Stream stream, int topK = ImageClassifierModel.DefaultTopK, CancellationToken cancellationToken = default) =>
        GetModel(modelName).PredictAsync(stream, topK, cancellationToken);

    /// <summary>Disposes every model that was loaded.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var model in _models.Values.Where(m => m.IsValueCreated))
        {
            model.Value.Dispose();
        }
    }
}
