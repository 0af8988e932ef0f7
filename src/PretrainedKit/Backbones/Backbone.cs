namespace PretrainedKit.Backbones;

/// <summary>
/// A pretrained image model that turns a normalised image into a feature vector. Instances are gathered in
/// <see cref="KnownBackbones"/>; each carries its input size, its preprocessing and where its weights live.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed class Backbone
{
    /// <summary>The environment variable that names an extra folder searched first for backbone files.</summary>
    public const string ModelDirectoryEnvironmentVariable = "PRETRAINEDKIT_MODEL_DIR";

    internal Backbone(
        string id,
        string displayName,
        string modelFile,
        string preprocessFile,
        string inputName,
        string outputName,
        int inputSize,
        int featureSize,
        string packageId,
        string packageVersion,
        IReadOnlyList<BackboneStage>? stages = null,
        string? modelDirectory = null)
    {
        Stages = stages ?? [];
        Id = id;
        DisplayName = displayName;
        ModelFile = modelFile;
        PreprocessFile = preprocessFile;
        InputName = inputName;
        OutputName = outputName;
        InputWidth = inputSize;
        InputHeight = inputSize;
        FeatureSize = featureSize;
        PackageId = packageId;
        PackageVersion = packageVersion;
        ModelDirectory = modelDirectory;
    }

    /// <summary>Gets the stable identifier stored in model files, for example <c>resnet18-imagenet</c>.</summary>
    public string Id { get; }

    /// <summary>Gets a human-readable name.</summary>
    public string DisplayName { get; }

    /// <summary>Gets the backbone's ONNX file, relative to the model folder (<c>DnnImageModels</c>).</summary>
    public string ModelFile { get; }

    /// <summary>Gets the ONNX file that defines the preprocessing (colour order and mean), relative to the model folder.</summary>
    public string PreprocessFile { get; }

    /// <summary>Gets the name of the ONNX input.</summary>
    public string InputName { get; }

    /// <summary>Gets the name of the ONNX output that holds the pooled features.</summary>
    public string OutputName { get; }

    /// <summary>Gets the input width in pixels.</summary>
    public int InputWidth { get; }

    /// <summary>Gets the input height in pixels.</summary>
    public int InputHeight { get; }

    /// <summary>Gets the length of the feature vector.</summary>
    public int FeatureSize { get; }

    /// <summary>Gets the NuGet package that ships the weights.</summary>
    public string PackageId { get; }

    /// <summary>Gets the version of <see cref="PackageId"/> that this library was built against.</summary>
    public string PackageVersion { get; }

    /// <summary>Gets the activations that close each stage, used for multi-stage features (empty when the backbone declares none).</summary>
    public IReadOnlyList<BackboneStage> Stages { get; }

    /// <summary>Gets the folder searched first for the model files, or <see langword="null"/> to use only the default search.</summary>
    public string? ModelDirectory { get; }

    /// <summary>Returns a copy of this backbone that looks for its files in <paramref name="directory"/> first.</summary>
    /// <param name="directory">A folder that holds <see cref="ModelFile"/> and <see cref="PreprocessFile"/> (the <c>DnnImageModels</c> folder).</param>
    /// <returns>The copy.</returns>
    public Backbone WithModelDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        return new Backbone(Id, DisplayName, ModelFile, PreprocessFile, InputName, OutputName, InputWidth, FeatureSize, PackageId, PackageVersion, Stages, Path.GetFullPath(directory));
    }

    /// <summary>Gets the folders searched for the model files, in order.</summary>
    /// <returns>Absolute folder paths.</returns>
    public IReadOnlyList<string> GetSearchDirectories()
    {
        var dirs = new List<string>();
        if (ModelDirectory is not null)
        {
            dirs.Add(ModelDirectory);
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(ModelDirectoryEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            dirs.Add(Path.GetFullPath(fromEnvironment));
        }

        dirs.Add(Path.Combine(AppContext.BaseDirectory, "DnnImageModels"));
        var assemblyDirectory = Path.GetDirectoryName(typeof(Backbone).Assembly.Location);
        if (!string.IsNullOrEmpty(assemblyDirectory))
        {
            dirs.Add(Path.Combine(assemblyDirectory, "DnnImageModels"));
        }

        // The local NuGet package folder: not a download, just the copy that restore already made.
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrWhiteSpace(packages))
        {
            packages = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        }

        dirs.Add(Path.Combine(packages, PackageId.ToLowerInvariant(), PackageVersion, "tools", "DnnImageModels"));
        return dirs.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Finds the backbone's ONNX file.</summary>
    /// <returns>The absolute path of <see cref="ModelFile"/>.</returns>
    /// <exception cref="BackboneNotFoundException">No searched folder holds the file.</exception>
    public string ResolveModelPath() => Resolve(ModelFile);

    /// <summary>Finds the preprocessing ONNX file.</summary>
    /// <returns>The absolute path of <see cref="PreprocessFile"/>.</returns>
    /// <exception cref="BackboneNotFoundException">No searched folder holds the file.</exception>
    public string ResolvePreprocessPath() => Resolve(PreprocessFile);

    /// <summary>Returns the display name and id.</summary>
    /// <returns>A short description.</returns>
    public override string ToString() => $"{DisplayName} ({Id})";

    private string Resolve(string relative)
    {
        var candidates = GetSearchDirectories().Select(d => Path.Combine(d, relative)).ToList();
        foreach (var candidate in candidates)
        {
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new BackboneNotFoundException(this, relative, candidates);
    }
}
