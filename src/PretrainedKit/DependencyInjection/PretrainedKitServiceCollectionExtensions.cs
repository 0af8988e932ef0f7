using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using PretrainedKit;
using PretrainedKit.DependencyInjection;

// Extension methods on IServiceCollection conventionally live in this namespace, so that they need no extra using.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers PretrainedKit models in a dependency-injection container (for example an ASP.NET Core app).</summary>
public static class PretrainedKitServiceCollectionExtensions
{
    /// <summary>
    /// Registers one <see cref="ImageClassifierModel"/> as a singleton, loaded from <paramref name="modelPath"/> when it is
    /// first resolved and disposed with the container. The model is thread-safe: inject it anywhere and call
    /// <see cref="ImageClassifierModel.Predict(string, int)"/> from any request.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="modelPath">The model file (relative paths are resolved against the current directory now).</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddImageClassifier(this IServiceCollection services, string modelPath)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        var full = Path.GetFullPath(modelPath);
        services.AddSingleton(sp => ImageClassifier.Load(full, logger: sp.GetService<ILoggerFactory>()?.CreateLogger(typeof(ImageClassifierModel).FullName!)));
        return services;
    }

    /// <summary>
    /// Registers an <see cref="ImageClassifierPool"/> singleton that serves named models, in the style of ML.NET's
    /// <c>AddPredictionEnginePool</c>. Add models with <see cref="ImageClassifierPoolBuilder.FromFile(string, string, bool, bool)"/>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <returns>A builder to add models with.</returns>
    public static ImageClassifierPoolBuilder AddImageClassifierPool(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.Where(d => d.ServiceType == typeof(ImageClassifierPoolBuilder) && d.ImplementationInstance is not null)
            .Select(d => (ImageClassifierPoolBuilder)d.ImplementationInstance!)
            .FirstOrDefault();
        if (builder is null)
        {
            builder = new ImageClassifierPoolBuilder(services);
            services.AddSingleton(builder);
        }

        services.TryAddSingleton(sp => new ImageClassifierPool(
            sp.GetRequiredService<ImageClassifierPoolBuilder>().Models,
            sp.GetService<ILoggerFactory>()?.CreateLogger(typeof(ImageClassifierModel).FullName!)));
        return builder;
    }
}
