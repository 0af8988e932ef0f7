using Microsoft.ML.Data;
using PretrainedKit;
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

    /// <summary>
    /// Adds a trained PretrainedKit classifier to an ML.NET pipeline: from a column of image file paths (text) or encoded
    /// image bytes (a byte vector, as <c>LoadRawImageBytes</c> gives), it adds <paramref name="predictedLabelColumnName"/>
    /// (text: the most probable class), <paramref name="scoreColumnName"/> (a vector of the calibrated probabilities, in
    /// <see cref="ImageClassifierModel.Classes"/> order, as ML.NET's multiclass trainers name theirs) and
    /// <paramref name="topLabelsColumnName"/> (the <paramref name="topK"/> most probable classes). An <c>MLImage</c> column (from
    /// <c>LoadImages</c>) cannot be read by ML.NET's custom mappings: give the path column it was loaded from, or
    /// <c>LoadRawImageBytes</c>. Works with
    /// <c>Fit</c>, <c>Transform</c>, <c>Append</c> and <c>PredictionEngine</c>; rows are computed lazily when read.
    /// </summary>
    /// <remarks>
    /// The fitted transformer cannot be saved with <c>mlContext.Model.Save</c>: it is a custom mapping around a native
    /// session. Save the model with <see cref="ImageClassifierModel.Save"/>, save the rest of your pipeline with ML.NET, and
    /// put the two together again after loading. Keep <paramref name="model"/> undisposed while the transformer is used.
    /// </remarks>
    /// <param name="catalog">The transforms catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="model">The trained model.</param>
    /// <param name="inputColumnName">The column of image paths or image bytes.</param>
    /// <param name="predictedLabelColumnName">The new column with the predicted class.</param>
    /// <param name="scoreColumnName">The new column with one probability per class.</param>
    /// <param name="topK">How many class names <paramref name="topLabelsColumnName"/> holds, most probable first; capped at the number of classes.</param>
    /// <param name="topLabelsColumnName">The new column with the <paramref name="topK"/> most probable classes (a text vector).</param>
    /// <returns>The estimator.</returns>
    /// <exception cref="ArgumentException">A column name is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public static IEstimator<ITransformer> ClassifyImages(this TransformsCatalog catalog, ImageClassifierModel model, string inputColumnName = "ImagePath", string predictedLabelColumnName = "PredictedLabel", string scoreColumnName = "Score", int topK = 3, string topLabelsColumnName = "TopLabels")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        ArgumentException.ThrowIfNullOrWhiteSpace(topLabelsColumnName);
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(inputColumnName);
        ArgumentException.ThrowIfNullOrWhiteSpace(predictedLabelColumnName);
        ArgumentException.ThrowIfNullOrWhiteSpace(scoreColumnName);
        var output = SchemaDefinition.Create(typeof(ClassificationRow));
        output[nameof(ClassificationRow.PredictedLabel)].ColumnName = predictedLabelColumnName;
        var score = output[nameof(ClassificationRow.Score)];
        score.ColumnName = scoreColumnName;
        score.ColumnType = new VectorDataViewType(NumberDataViewType.Single, model.Classes.Count);
        var k = Math.Min(topK, model.Classes.Count);
        var top = output[nameof(ClassificationRow.TopLabels)];
        top.ColumnName = topLabelsColumnName;
        top.ColumnType = new VectorDataViewType(TextDataViewType.Instance, k);
        return new ImageColumnEstimator<ClassificationRow>(
            catalog,
            inputColumnName,
            output,
            (path, result) => result.Set(model.Predict(path, k)),
            (bytes, result) => result.Set(model.Predict(bytes, k)));
    }
}
