namespace PretrainedKit.Training;

/// <summary>The phases of a training or evaluation run, in order.</summary>
public enum TrainingPhase
{
    /// <summary>Listing the folders.</summary>
    Scanning,

    /// <summary>Checking every image's header (and, in strict mode, decoding it) before any expensive work.</summary>
    Validating,

    /// <summary>Loading the backbone (ONNX Runtime session, weights hash); timed apart from featurising so throughput figures are honest.</summary>
    LoadingBackbone,

    /// <summary>Running the backbone on every image.</summary>
    Featurizing,

    /// <summary>Choosing the accuracy levers by cross-validation on the training features (<see cref="ImageClassifierOptions.Auto"/>); no backbone runs.</summary>
    SearchingLevers,

    /// <summary>Looking for likely label errors, duplicates, leakage and outliers in the features already computed (<see cref="ImageClassifierOptions.InspectData"/>); no backbone runs.</summary>
    Inspecting,

    /// <summary>Training the final layer.</summary>
    Training,

    /// <summary>Computing metrics.</summary>
    Evaluating,

    /// <summary>Done.</summary>
    Completed,
}

/// <summary>A snapshot of a run's progress, reported through <see cref="IProgress{T}"/>.</summary>
/// <param name="Phase">The current phase.</param>
/// <param name="Completed">Items done in this phase: images for validation; for featurisation, backbone runs (one per image and view, so augmentation and test-time augmentation count each extra view).</param>
/// <param name="Total">Items in this phase.</param>
/// <param name="Elapsed">Time since the run started.</param>
/// <param name="EstimatedRemaining">The estimated time left in this phase, when it can be estimated.</param>
public sealed record TrainingProgress(TrainingPhase Phase, int Completed, int Total, TimeSpan Elapsed, TimeSpan? EstimatedRemaining);
