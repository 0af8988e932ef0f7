using Microsoft.Extensions.DependencyInjection;

namespace PretrainedKit.DependencyInjection;

/// <summary>Adds named models to the <see cref="ImageClassifierPool"/> registered by <c>AddImageClassifierPool</c>.</summary>
/// <threadsafety>Use it while configuring services, from one thread; the pool reads the list once, when it is created.</threadsafety>
public sealed class ImageClassifierPoolBuilder
{
    private readonly List<PooledModelOptions> _models = [];

    internal ImageClassifierPoolBuilder(IServiceCollection services) => Services = services;

    /// <summary>Gets the services this builder adds to.</summary>
    public IServiceCollection Services { get; }

    internal IReadOnlyList<PooledModelOptions> Models => _models;

    /// <summary>Adds a model under a name; it is loaded when first used (or ahead of it, with <paramref name="warmUp"/>).</summary>
    /// <param name="modelName">The name to pass to <see cref="ImageClassifierPool.Predict(string, string, int)"/>.</param>
    /// <param name="filePath">The model file (relative paths are resolved against the current directory now).</param>
    /// <param name="watchForChanges">Whether to reload the model in the background when its file is replaced, as ML.NET's <c>FromFile(..., watchForChanges: true)</c> does; see <see cref="PooledModelOptions.WatchForChanges"/>.</param>
    /// <param name="warmUp">Whether to load and warm up the model as soon as the pool is created; see <see cref="PooledModelOptions.WarmUp"/>.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentException">The name is empty or already used.</exception>
    public ImageClassifierPoolBuilder FromFile(string modelName, string filePath, bool watchForChanges = false, bool warmUp = false) =>
        FromFile(new PooledModelOptions { ModelName = modelName, FilePath = filePath, WatchForChanges = watchForChanges, WarmUp = warmUp });

    /// <summary>Adds a model with all its options at once.</summary>
    /// <param name="options">The model's name, file, and whether it is watched and warmed up.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentException">The name or path is empty, the name is already used, or an option is out of range.</exception>
    public ImageClassifierPoolBuilder FromFile(PooledModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (_models.Any(m => m.ModelName == options.ModelName))
        {
            throw new ArgumentException($"The model name '{options.ModelName}' is already registered; give each model its own name.", nameof(options));
        }

        _models.Add(options with { FilePath = Path.GetFullPath(options.FilePath) });
        return this;
    }
}
