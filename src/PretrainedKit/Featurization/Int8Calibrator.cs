using PretrainedKit.Backbones;
using PretrainedKit.Imaging;

namespace PretrainedKit.Featurization;

/// <summary>The calibration pass of an int8 backbone: images rendered as the backbone sees them, then their activation ranges measured.</summary>
internal static class Int8Calibrator
{
    /// <summary>
    /// Chooses up to <see cref="Int8Calibration.MaxImages"/> images spread over the classes (round robin over each
    /// class's images in the given order), so that the same training set always gives the same calibration.
    /// </summary>
    /// <param name="imagesByClass">Each class's image paths, in a stable order.</param>
    /// <returns>The chosen paths.</returns>
    public static IReadOnlyList<string> Choose(IReadOnlyList<IReadOnlyList<string>> imagesByClass)
    {
        ArgumentNullException.ThrowIfNull(imagesByClass);
        var chosen = new List<string>();
        for (var round = 0; chosen.Count < Int8Calibration.MaxImages && imagesByClass.Any(c => c.Count > round); round++)
        {
            foreach (var images in imagesByClass)
            {
                if (images.Count > round && chosen.Count < Int8Calibration.MaxImages)
                {
                    chosen.Add(images[round]);
                }
            }
        }

        return chosen;
    }

    /// <summary>Calibrates the int8 graph of <paramref name="runtime"/>'s backbone on the original view of each image.</summary>
    /// <param name="runtime">The float backbone.</param>
    /// <param name="image">How images are decoded and normalised.</param>
    /// <param name="paths">The calibration images; one that cannot be decoded is left out (the featurisation pass reports it).</param>
    /// <param name="cancellationToken">Stops the pass.</param>
    /// <returns>The calibration.</returns>
    /// <exception cref="ArgumentException">No image could be decoded.</exception>
    public static Int8Calibration Calibrate(BackboneRuntime runtime, ImagePreprocessingOptions image, IEnumerable<string> paths, CancellationToken cancellationToken = default) =>
        Int8Calibration.FromStatistics(Measure(runtime, image, paths, cancellationToken), Int8Calibration.DefaultPercentile);

    /// <summary>The distributions behind <see cref="Calibrate"/>: the same images, rendered the same way, measured by the float backbone.</summary>
    /// <param name="runtime">The float backbone.</param>
    /// <param name="image">How images are decoded and normalised.</param>
    /// <param name="paths">The calibration images; one that cannot be decoded is left out.</param>
    /// <param name="cancellationToken">Stops the pass.</param>
    /// <returns>The statistics.</returns>
    /// <exception cref="ArgumentException">No image could be decoded.</exception>
    public static Int8Statistics Measure(BackboneRuntime runtime, ImagePreprocessingOptions image, IEnumerable<string> paths, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(paths);
        if (runtime.Precision != Precision.Float32)
        {
            throw new ArgumentException("Calibration runs on the float backbone.", nameof(runtime));
        }

        return Int8Backbone.Measure(runtime, Render(runtime, image, paths, cancellationToken), cancellationToken);
    }

    private static IEnumerable<float[]> Render(BackboneRuntime runtime, ImagePreprocessingOptions image, IEnumerable<string> paths, CancellationToken cancellationToken)
    {
        var renderer = new ViewRenderer(runtime, image);
        var tensor = new float[runtime.TensorLength];
        foreach (var path in paths)
        {
            var rendered = false;
            try
            {
                var bytes = ImageInput.FromFile(path).ReadBytes();
                renderer.Reset();
                renderer.Render(bytes, path, ImageView.Original, tensor, cancellationToken);
                rendered = true;
            }
            catch (InvalidImageException)
            {
                // Left out of the calibration only; the featurisation pass lists it with its reason.
            }

            if (rendered)
            {
                yield return tensor;
            }
        }
    }
}
