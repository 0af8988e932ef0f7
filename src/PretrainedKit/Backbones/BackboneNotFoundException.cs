namespace PretrainedKit.Backbones;

/// <summary>Thrown when a backbone's ONNX file is in none of the searched folders. The message lists every path tried and how to fix it.</summary>
public sealed class BackboneNotFoundException : FileNotFoundException
{
    /// <summary>Initializes a new instance of the <see cref="BackboneNotFoundException"/> class.</summary>
    public BackboneNotFoundException()
        : base("The backbone's model file was not found.")
    {
        SearchedPaths = [];
    }

    /// <summary>Initializes a new instance of the <see cref="BackboneNotFoundException"/> class.</summary>
    /// <param name="message">The message.</param>
    public BackboneNotFoundException(string message)
        : base(message)
    {
        SearchedPaths = [];
    }

    /// <summary>Initializes a new instance of the <see cref="BackboneNotFoundException"/> class.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public BackboneNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
        SearchedPaths = [];
    }

    internal BackboneNotFoundException(Backbone backbone, string file, IReadOnlyList<string> searched)
        : base(BuildMessage(backbone, file, searched), searched.Count > 0 ? searched[0] : file)
    {
        SearchedPaths = searched;
    }

    /// <summary>Gets every path that was tried, in order.</summary>
    public IReadOnlyList<string> SearchedPaths { get; }

    private static string BuildMessage(Backbone backbone, string file, IReadOnlyList<string> searched) => backbone.IsCustom
        ? $"The ONNX file '{file}' of the custom backbone '{backbone.Id}' was not found. Fix: pass its current path to Backbone.FromOnnx(path, definition) "
          + "(to load a model: ImageClassifier.Load(modelPath, Backbone.FromOnnx(path, definition)))."
        : $"The {backbone.DisplayName} file '{file}' was not found. Searched:{Environment.NewLine}"
        + string.Concat(searched.Select(p => $"  {p}{Environment.NewLine}"))
        + $"Fix: reference the NuGet package PretrainedKit (or {backbone.PackageId} {backbone.PackageVersion}) from the project that runs this code, "
        + "so the files are copied to its output folder under DnnImageModels/; or set the environment variable "
        + $"{Backbone.ModelDirectoryEnvironmentVariable} to a folder that holds '{file}'; or call Backbone.WithModelDirectory(folder).";
}
