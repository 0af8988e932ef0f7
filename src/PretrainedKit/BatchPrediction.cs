using System.Diagnostics.CodeAnalysis;
using PretrainedKit.Imaging;

namespace PretrainedKit;

/// <summary>
/// The outcome for one input of <c>PredictBatch</c> or <c>PredictBatchAsync</c>: its prediction, or why the image could
/// not be used. A batch returns one per input, in input order, and never stops at a bad image.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record BatchPrediction
{
    /// <summary>Gets the position of the input in the batch, from 0.</summary>
    public required int Index { get; init; }

    /// <summary>Gets the absolute path of the image file, or <see langword="null"/> when the input was bytes or a stream.</summary>
    public string? Path { get; init; }

    /// <summary>Gets the prediction, or <see langword="null"/> when the image could not be used (see <see cref="Error"/>).</summary>
    public Prediction? Prediction { get; init; }

    /// <summary>Gets why the image could not be used (its message names the file, or the input's index for bytes and streams), or <see langword="null"/> when it was classified.</summary>
    public InvalidImageException? Error { get; init; }

    /// <summary>Gets a value indicating whether the image was classified: <see cref="Prediction"/> is set and <see cref="Error"/> is <see langword="null"/>.</summary>
    [MemberNotNullWhen(true, nameof(Prediction))]
    public bool Succeeded => Prediction is not null;
}
