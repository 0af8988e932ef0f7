using Microsoft.Extensions.DependencyInjection;

namespace PretrainedKit.DependencyInjection;

/// <summary>Adds named models to the <see cref="ImageClassifierPool"/> registered by <c>AddImageClassifierPool</c>.</summary>
/// <threadsafety>Use it while configuring services, from one thread; the pool reads the list once, when it is created.</threadsafety>
public sealed class ImageClassifierPoolBuilder
{
    private readonly List<KeyValuePair<string, string>> _models = [];

    internal ImageClassifierPoolBuilder(IServiceCollection services) => Services = services;

    /// <summary>Gets the services this builder adds to.</summary>
    public IServiceCollection Services { get; }

    internal IReadOnlyList<KeyValuePair<string, string>> Models => _models;

    /// <summary>Adds a model under a name; it is loaded when first used.</summary>
    /// <param name="modelName">The name to pass to <see cref="ImageClassifierPool.Predict(string, string, int)"/>.</param>
    /// <param name="filePath">The model file (relative paths are resolved against the current directory now).</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentException">The name is empty or already used.</exception>
    public ImageClassifierPoolBuilder FromFile(string modelName, string filePath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelName);
        ArgumentException.ThrowIfNullOrWhiteSpace(filePath);
        if (_models.Any(m => m.Key == modelName))
        {
            throw new ArgumentException($"The model name '{modelName}' is already registered; give each model its own name.", nameof(modelName));
        }

        _models.Add(new(modelName, Path.GetFullPath(filePath)));
        return this;
    }
}
