using PretrainedKit;
using PretrainedKit.Interop;

// ML.NET's own extension packages put their catalog extensions in this namespace, so that they show up on
// mlContext.Transforms without another using directive.
namespace Microsoft.ML;

/// <summary>PretrainedKit's additions to <see cref="TransformsCatalog"/>.</summary>
public static class PretrainedKitCatalog
{
    /// <summary>
    /// Adds a column of pretrained backbone features (512 floats for ResNet18) computed from a column of image file paths
    /// (text), encoded image bytes (a byte vector) or images (<c>MLImage</c>, as <c>LoadImages</c> gives); see
    /// <see cref="ImageFeaturizer.CreateEstimator"/>, also for what <c>mlContext.Model.Save</c> does with it.
    /// </summary>
    /// <param name="catalog">The transforms catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="featurizer">An open featurizer; keep it alive while the fitted transformer is used.</param>
    /// <param name="outputColumnName">The new features column.</param>
    /// <param name="inputColumnName">The column of image file paths, image bytes or images (MLImage).</param>
    /// <returns>The estimator.</returns>
    /// <exception cref="ArgumentException">A column name is empty.</exception>
    /// <exception cref="ObjectDisposedException">The featurizer was disposed.</exception>
    public static IEstimator<ITransformer> FeaturizeImages(this TransformsCatalog catalog, ImageFeaturizer featurizer, string outputColumnName = "Features", string inputColumnName = "ImagePath")
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(featurizer);
        return featurizer.CreateEstimatorCore(outputColumnName, inputColumnName);
    }

    /// <summary>
    /// Adds a trained PretrainedKit classifier to an ML.NET pipeline: from a column of image file paths (text), encoded
    /// image bytes (a byte vector, as <c>LoadRawImageBytes</c> or a <c>byte[]</c> member gives) or images (<c>MLImage</c>,
    /// as <c>LoadImages</c> or an <c>MLImage</c> member gives), it adds <paramref name="predictedLabelColumnName"/>
    /// (text: the most probable class), <paramref name="scoreColumnName"/> (a vector of the calibrated probabilities, in
    /// <see cref="ImageClassifierModel.Classes"/> order, as ML.NET's multiclass trainers name theirs) and
    /// <paramref name="topLabelsColumnName"/> (the <paramref name="topK"/> most probable classes). Works with
    /// <c>Fit</c>, <c>Transform</c>, <c>Append</c> and <c>PredictionEngine</c>; rows are computed lazily when read, each
    /// image once, and every input column is kept.
    /// </summary>
    /// <remarks>
    /// <para>
    /// A path or bytes column gives exactly <see cref="ImageClassifierModel.Predict(string, int)"/> or
    /// <see cref="ImageClassifierModel.Predict(byte[], int)"/>. An <c>MLImage</c>'s pixels are encoded as a lossless PNG in
    /// memory and take the bytes path (alpha composited onto the model's background), so the prediction is that of a PNG
    /// with the same pixels; <c>LoadImages</c> decodes without EXIF orientation and at full size, and premultiplies
    /// alpha, so a rotated or large JPEG or a translucent PNG can score slightly differently than its path. Give the path or
    /// bytes column when you have it; it is also faster.
    /// </para>
    /// <para>
    /// The fitted transformer cannot be saved with <c>mlContext.Model.Save</c>: it runs the model's native ONNX Runtime
    /// session, and its <c>Save</c> throws <see cref="NotSupportedException"/>. Save the model with
    /// <see cref="ImageClassifierModel.Save"/>, save the rest of your pipeline with ML.NET, and put the two together again
    /// after loading. Keep <paramref name="model"/> undisposed while the transformer is used.
    /// </para>
    /// </remarks>
    /// <param name="catalog">The transforms catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="model">The trained model.</param>
    /// <param name="inputColumnName">The column of image paths, image bytes or images (MLImage).</param>
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
        var k = Math.Min(topK, model.Classes.Count);
        return new ImageColumnEstimator<Prediction>(new ImageColumnMapping<Prediction>(
            inputColumnName,
            [
                ImageOutputColumn<Prediction>.Text(predictedLabelColumnName, p => p.Label),
                ImageOutputColumn<Prediction>.Floats(scoreColumnName, model.Classes.Count, p => p.Probabilities),
                ImageOutputColumn<Prediction>.Texts(topLabelsColumnName, k, p => p.TopK.Select(t => t.Label).ToArray()),
            ],
            path => model.Predict(path, k),
            bytes => model.Predict(bytes, k),
            model.ImageOptions.MaxPixels,
            "Save the classifier with ImageClassifierModel.Save and the rest of your pipeline with mlContext.Model.Save; after loading both, put ClassifyImages back with the loaded model."));
    }
}
