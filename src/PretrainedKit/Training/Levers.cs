using PretrainedKit.Models;

namespace PretrainedKit.Training;

/// <summary>Extra views of each training image whose features join the training set (the backbone runs once per view).</summary>
[Flags]
public enum TrainingAugmentation
{
    /// <summary>Train on the images as they are.</summary>
    None = 0,

    /// <summary>Also train on each image flipped left to right (twice the featurisation time). Leave it off when the mirror image means another class (left and right arrows, text).</summary>
    Mirror = 1,

    /// <summary>Also train on four corner crops of each image (7/8 of each side, scaled back up): shifted and slightly enlarged views (five times the featurisation time).</summary>
    Crops = 2,
}

/// <summary>One accuracy lever and the setting a training run used.</summary>
/// <param name="Name">The lever, for example "Augmentation".</param>
/// <param name="Setting">The setting, for example "Mirror".</param>
/// <param name="IsDefault">Whether the setting is the documented default.</param>
/// <param name="Detail">What the setting did or cost, or <see langword="null"/>.</param>
public sealed record TrainingLever(string Name, string Setting, bool IsDefault, string? Detail);

/// <summary>Turns lever settings into backbone views and report lines.</summary>
internal static class Levers
{
    public static IReadOnlyList<Imaging.ImageView> TrainingViews(TrainingAugmentation augmentation)
    {
        var views = new List<Imaging.ImageView> { Imaging.ImageView.Original };
        if (augmentation.HasFlag(TrainingAugmentation.Mirror))
        {
            views.Add(Imaging.ImageView.Mirror);
        }

        if (augmentation.HasFlag(TrainingAugmentation.Crops))
        {
            views.AddRange(Imaging.ImageViews.Crops);
        }

        return views;
    }

    public static IReadOnlyList<TrainingLever> Describe(ImageClassifierOptions options, RegularizationSearch? search)
    {
        var defaults = ImageClassifierOptions.Default;
        var trainViews = TrainingViews(options.Augmentation).Count;
        var testViews = ModelDefinition.ViewsOf(options.TestTimeAugmentation).Count;
        var linear = options.Head as LinearHeadOptions;
        string? Regularization()
        {
            if (options.Head is KernelHeadOptions kernel)
            {
                return $"ridge {kernel.Ridge:G4} (the kernel head's weight; no L2 search)";
            }

            if (options.Head is RidgeHeadOptions ridge)
            {
                return $"ridge {ridge.Ridge:G4} x feature size (closed-form linear head)";
            }

            if (linear is null)
            {
                return null;
            }

            if (search is null)
            {
                return $"L2 = {linear.L2Regularization:G4} (given)";
            }

            return search.SkippedBecause is { } why
                ? $"L2 = {search.ChosenL2:G4}; cross-validation skipped: {why}"
                : $"L2 = {search.ChosenL2:G4}, chosen by {search.Folds}-fold cross-validation x{search.Repetitions} (lowest log-loss at {search.BestL2:G4}; one-standard-error rule)";
        }

        return
        [
            new("Feature layout", options.FeatureLayout.ToString(), options.FeatureLayout == defaults.FeatureLayout, null),
            new("Normalisation", options.Normalization.ToString(), options.Normalization == defaults.Normalization, null),
            new("Augmentation", options.Augmentation.ToString(), options.Augmentation == defaults.Augmentation, trainViews > 1 ? $"{trainViews} backbone views per training image" : null),
            new("Test-time augmentation", options.TestTimeAugmentation.ToString(), options.TestTimeAugmentation == defaults.TestTimeAugmentation, testViews > 1 ? $"{testViews} backbone views per prediction" : null),
            new("Head", options.Head is RidgeHeadOptions ? "Ridge" : options.Head.Kind.ToString(), options.Head.GetType() == defaults.Head.GetType(), options.Head switch
            {
                KernelHeadOptions kernel => $"Gaussian kernel, gamma = 1 / (2 x feature size), ridge {kernel.Ridge:G4}, at most {kernel.MaxCentres} centres",
                RidgeHeadOptions => "linear layer fitted by ridge regression (closed form)",
                _ => null,
            }),
            new("Class weighting", options.ClassWeighting.ToString(), options.ClassWeighting == defaults.ClassWeighting, null),
            new("Regularisation", linear is { AutoRegularization: true } ? "Automatic" : "Fixed", linear is null || (!linear.AutoRegularization && linear.L2Regularization == LinearHeadOptions.Default.L2Regularization), Regularization()),
        ];
    }
}
