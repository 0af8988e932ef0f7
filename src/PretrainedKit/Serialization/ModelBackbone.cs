using PretrainedKit.Backbones;

namespace PretrainedKit.Serialization;

/// <summary>What a model file records about a custom backbone: where its ONNX file was, and its whole definition.</summary>
internal sealed record CustomBackboneManifest(string OnnxFile, BackboneDefinition Definition);

/// <summary>Records a model's backbone on save and finds (or checks) it on load.</summary>
internal static class ModelBackbone
{
    /// <summary>The manifest section for a custom backbone, or <see langword="null"/> for a known one (whose files stay unchanged).</summary>
    public static CustomBackboneManifest? Describe(Backbone backbone) =>
        backbone.IsCustom ? new CustomBackboneManifest(backbone.ModelFile, backbone.Definition) : null;

    /// <summary>
    /// The backbone to load a model with: the one given (checked against the file's record), else the known backbone
    /// of that id, else the custom backbone the file records, found at its recorded path or next to the model file.
    /// </summary>
    public static Backbone Resolve(string modelPath, BackboneManifest recorded, Backbone? given)
    {
        var custom = recorded.Custom;
        if (given is not null)
        {
            if (custom is not null && given.Id == recorded.Id && !SamePreprocessing(custom.Definition, given.Definition))
            {
                throw new ModelFormatException(
                    modelPath,
                    $"the model was trained with the backbone '{recorded.Id}' declared as {Describe(custom.Definition)}, but the backbone given declares {Describe(given.Definition)}. "
                    + "Pass a BackboneDefinition with the same names, sizes and preprocessing, or load without a backbone to use the recorded one.",
                    null);
            }

            return given;
        }

        if (custom is null)
        {
            return KnownBackbones.FindById(recorded.Id)
                ?? throw new ModelFormatException(modelPath, $"the model was made with the backbone '{recorded.Id}', which this version of PretrainedKit does not know (known: {string.Join(", ", KnownBackbones.All.Select(b => b.Id))}).", null);
        }

        try
        {
            custom.Definition.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new ModelFormatException(modelPath, $"the recorded backbone definition is invalid: {ex.Message}", ex);
        }

        var nextToModel = Path.Combine(Path.GetDirectoryName(modelPath)!, Path.GetFileName(custom.OnnxFile));
        var onnx = new[] { custom.OnnxFile, nextToModel }.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException(
                $"The model '{modelPath}' uses the custom backbone '{recorded.Id}', whose ONNX file is neither at '{custom.OnnxFile}' nor at '{nextToModel}'. "
                + "Fix: copy the .onnx file next to the model, or pass it: ImageClassifier.Load(modelPath, Backbone.FromOnnx(onnxPath, definition)).",
                custom.OnnxFile);

        var definition = custom.Definition;
        if (definition.MeanImageFile is { } meanImage && !File.Exists(meanImage))
        {
            definition = definition with { MeanImageFile = Path.GetFileName(meanImage) }; // Looked for next to the ONNX file.
        }

        return Backbone.FromOnnx(onnx, definition);
    }

    /// <summary>Checks that the backbone as installed gives the features the file's head was trained on: feature size and weights.</summary>
    /// <param name="modelPath">The model file, for messages.</param>
    /// <param name="recorded">The file's backbone record.</param>
    /// <param name="runtime">The backbone, opened.</param>
    /// <exception cref="ModelFormatException">The feature size or the weights differ.</exception>
    public static void CheckInstalled(string modelPath, BackboneManifest recorded, BackboneRuntime runtime)
    {
        if (runtime.FeatureSize != recorded.FeatureSize)
        {
            throw new ModelFormatException(modelPath, $"the file's feature size ({recorded.FeatureSize}) does not match the backbone's {recorded.FeatureLayout} features ({runtime.FeatureSize}).", null);
        }

        if (!string.Equals(runtime.WeightsSha256, recorded.WeightsSha256, StringComparison.OrdinalIgnoreCase))
        {
            var backbone = runtime.Backbone;
            throw new ModelFormatException(
                modelPath,
                $"the model was trained with backbone weights {recorded.WeightsSha256[..Math.Min(12, recorded.WeightsSha256.Length)]}…, but '{runtime.ModelPath}' has {runtime.WeightsSha256[..12]}…. {(backbone.IsCustom ? "Use the ONNX file the model was trained with" : $"Install {backbone.PackageId} {backbone.PackageVersion}")}, or re-train the model.",
                null);
        }
    }

    private static bool SamePreprocessing(BackboneDefinition a, BackboneDefinition b) =>
        a.InputName == b.InputName && a.OutputName == b.OutputName && a.InputWidth == b.InputWidth && a.InputHeight == b.InputHeight
        && a.FeatureSize == b.FeatureSize && a.ChannelOrder == b.ChannelOrder && a.Scale == b.Scale
        && a.Mean.SequenceEqual(b.Mean) && a.Std.SequenceEqual(b.Std) && (a.MeanImageFile is null) == (b.MeanImageFile is null);

    private static string Describe(BackboneDefinition d) =>
        $"input '{d.InputName}' {d.InputWidth}x{d.InputHeight} {d.ChannelOrder}, output '{d.OutputName}' ({d.FeatureSize} features), "
        + (d.MeanImageFile is not null ? "mean image" : $"scale {d.Scale}, mean [{string.Join(", ", d.Mean)}], std [{string.Join(", ", d.Std)}]");
}
