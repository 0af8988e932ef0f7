namespace PretrainedKit.Tests;

/// <summary>For tests that batch only good images: the predictions of a batch, failing on any error.</summary>
internal static class BatchResults
{
    /// <summary>The predictions, in input order; throws the first input's error if any image failed.</summary>
    public static List<global::PretrainedKit.Prediction> Predictions(this IReadOnlyList<BatchPrediction> batch) =>
        batch.Select(b => b.Succeeded ? b.Prediction : throw b.Error!).ToList();
}
