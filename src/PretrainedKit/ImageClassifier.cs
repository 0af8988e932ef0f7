using Microsoft.Extensions.Logging;
using PretrainedKit.Backbones;

namespace PretrainedKit;

/// <summary>The entry point: <c>ImageClassifier.Create().FromFolder("photos").TrainAsync()</c>, and <see cref="Load"/> for saved models.</summary>
public static class ImageClassifier
{
    /// <summary>Starts configuring a classifier with the default options.</summary>
    /// <returns>A new builder.</returns>
    public static ImageClassifierBuilder Create() => new();

    /// <summary>Reads a model saved with <see cref="ImageClassifierModel.Save"/>.</summary>
    /// <param name="path">The model file.</param>
    /// <param name="backbone">The backbone to use; by default the known one named in the file.</param>
    /// <param name="logger">Where to log; by default nowhere.</param>
    /// <param name="featureCache">The feature cache that evaluation and batch prediction read and write; by default <see cref="Caching.FeatureCacheOptions.Default"/>, the same cache training uses.</param>
    /// <returns>The model.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="Serialization.ModelFormatException">The file is corrupt or foreign.</exception>
    /// <exception cref="BackboneNotFoundException">The backbone's files are not installed.</exception>
    public static ImageClassifierModel Load(string path, Backbone? backbone = null, ILogger? logger = null, Caching.FeatureCacheOptions? featureCache = null) => ImageClassifierModel.Load(path, backbone, logger, featureCache);
}
