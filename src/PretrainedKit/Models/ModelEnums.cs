namespace PretrainedKit.Models;

/// <summary>Views of each image averaged at prediction time (the backbone runs once per view).</summary>
public enum TestTimeAugmentation
{
    /// <summary>Predict from the image as it is.</summary>
    None = 0,

    /// <summary>Average the logits of the image and of its mirror image before the softmax (twice the prediction time).</summary>
    Mirror = 1,
}

/// <summary>How feature vectors are scaled before the final layer.</summary>
public enum FeatureNormalization
{
    /// <summary>Each feature is standardised with the training mean and standard deviation.</summary>
    Standardize = 0,

    /// <summary>Each vector is first divided by its Euclidean length, then each feature is standardised.</summary>
    L2ThenStandardize = 1,

    /// <summary>Features are used as the backbone gives them. ML.NET's default; the penalty then weighs features unevenly.</summary>
    None = 2,
}

/// <summary>What is trained on top of the backbone's features.</summary>
public enum HeadKind
{
    /// <summary>A retrained final layer: softmax regression on the standardised features (L-BFGS, seconds to train).</summary>
    Linear = 0,

    /// <summary>
    /// Kernel ridge regression with a Gaussian kernel on the standardised features: up to
    /// <c>KernelHeadOptions.MaxCentres</c> (1,600) training views become centres that the image is compared
    /// with (with more views, a seeded subset of them, fitted on all views). The model file holds the centres (4 bytes x
    /// feature size each up to 800 centres, 2 bytes above) and each prediction compares with all of them. Its measured accuracy against
    /// <see cref="Linear"/> is in the README (Accuracy levers, Automatic lever choice).
    /// </summary>
    Kernel = 1,
}
