namespace PretrainedKit.DependencyInjection;

/// <summary>
/// One model of an <see cref="ImageClassifierPool"/>: its name, its file, and whether the pool reloads it when the file is
/// replaced (as ML.NET's <c>PredictionEnginePool</c> does with <c>FromFile(..., watchForChanges: true)</c>) and warms it up.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record PooledModelOptions
{
    /// <summary>The default <see cref="ReloadDelay"/>: 500 milliseconds.</summary>
    public static readonly TimeSpan DefaultReloadDelay = TimeSpan.FromMilliseconds(500);

    /// <summary>Gets the name to pass to <see cref="ImageClassifierPool.Predict(string, string, int)"/>.</summary>
    public required string ModelName { get; init; }

    /// <summary>Gets the model file (made absolute when the pool is created).</summary>
    public required string FilePath { get; init; }

    /// <summary>
    /// Gets whether the pool watches the model file and reloads it in the background when it is written, replaced (a save
    /// writes a temporary file and renames it over the model) or deleted and created again. Only a file that loads replaces
    /// the model; a broken one is logged and the previous model keeps serving. Calls in flight finish on the previous
    /// model, which is disposed after the last of them.
    /// </summary>
    /// <value>The default is <see langword="false"/>: the file is read once, on first use.</value>
    public bool WatchForChanges { get; init; }

    /// <summary>
    /// Gets whether the model is loaded and warmed up (see the <c>warmUp</c> parameter of <see cref="ImageClassifierModel.Load"/>)
    /// in the background as soon as the pool is created, instead of on first use, so that the first request does not pay for
    /// loading; a request that arrives earlier waits for that load. Reloaded models are warmed up before they serve too.
    /// </summary>
    /// <value>The default is <see langword="false"/>: loaded, without warm-up, by the first call that needs it.</value>
    public bool WarmUp { get; init; }

    /// <summary>
    /// Gets how long the file must stay quiet after a change before it is reloaded, so that a save that touches it several
    /// times (or a delete followed by a create) leads to one reload.
    /// </summary>
    /// <value>The default is <see cref="DefaultReloadDelay"/>.</value>
    public TimeSpan ReloadDelay { get; init; } = DefaultReloadDelay;

    /// <summary>Checks every option.</summary>
    /// <exception cref="ArgumentException">The name or path is empty, or the delay is negative or longer than a minute.</exception>
    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(ModelName);
        ArgumentException.ThrowIfNullOrWhiteSpace(FilePath);
        if (ReloadDelay < TimeSpan.Zero || ReloadDelay > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentException($"PooledModelOptions.ReloadDelay of model '{ModelName}' must be from 0 to 1 minute, not {ReloadDelay}.");
        }
    }
}

/// <summary>What happened when an <see cref="ImageClassifierPool"/> tried to reload a watched model.</summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed class ModelReloadEventArgs : EventArgs
{
    /// <summary>Initializes a new instance of the <see cref="ModelReloadEventArgs"/> class.</summary>
    /// <param name="modelName">The model's name in the pool.</param>
    /// <param name="filePath">The absolute path of the model file.</param>
    /// <param name="generation">The generation serving after the attempt.</param>
    /// <param name="error">Why the file was not loaded, or <see langword="null"/> when it was.</param>
    public ModelReloadEventArgs(string modelName, string filePath, int generation, Exception? error)
    {
        ModelName = modelName;
        FilePath = filePath;
        Generation = generation;
        Error = error;
    }

    /// <summary>Gets the model's name in the pool.</summary>
    public string ModelName { get; }

    /// <summary>Gets the absolute path of the model file.</summary>
    public string FilePath { get; }

    /// <summary>Gets the generation of the model serving now: 1 for the first load, one more for each successful reload (see <see cref="ImageClassifierPool.GetGeneration"/>).</summary>
    public int Generation { get; }

    /// <summary>Gets why the new file was not loaded (the previous model keeps serving), or <see langword="null"/> when it replaced the model.</summary>
    public Exception? Error { get; }
}
