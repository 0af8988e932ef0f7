using PretrainedKit.Interop;

// ML.NET's own extension packages put their catalog extensions in this namespace, so that they show up on
// mlContext.Transforms without another using directive.
namespace Microsoft.ML;

/// <summary>PretrainedKit's additions to <see cref="TransformsCatalog"/>.</summary>
public static class PretrainedKitCatalog
{
    /// <summary>
    /// Adds a column of pretrained backbone features (512 floats for ResNet18) computed from a column of image file paths;
    /// see <see cref="ImageFeaturizer.CreateEstimator"/>.
    /// </summary>
    /// <param name="catalog">The transforms catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="featurizer">An open featurizer; keep it alive while the fitted transformer is used.</param>
    /// <param name="outputColumnName">The new features column.</param>
    /// <param name="inputColumnName">The column of image file paths.</param>
    /// <returns>The estimator.</returns>
    public static IEstimator<ITransformer> FeaturizeImages(this TransformsCatalog catalog, ImageFeaturizer featurizer, string outputColumnName = "Features", string inputColumnName = "ImagePath")
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(featurizer);
        return featurizer.CreateEstimatorCore(catalog, outputColumnName, inputColumnName);
    }
}
