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

    /// <summary>The largest ONNX file accepted: 2 GiB, the most a single protobuf (the ONNX format) can hold.</summary>
    internal const long MaxOnnxFileBytes = 2L * 1024 * 1024 * 1024;

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
        : this(
            new BackboneDefinition
            {
                Id = id,
                DisplayName = displayName,
                InputName = inputName,
                OutputName = outputName,
                InputWidth = inputSize,
                InputHeight = inputSize,
                FeatureSize = featureSize,
                ChannelOrder = ChannelOrder.Bgr,
                MeanImageFile = preprocessFile,
            },
            modelFile,
            packageId,
            packageVersion,
            modelDirectory,
            stages)
    {
    }

    private Backbone(BackboneDefinition definition, string modelFile, string? packageId, string? packageVersion, string? modelDirectory, IReadOnlyList<BackboneStage>? stages = null)
    {
        Definition = definition;
        Stages = stages ?? [];
        Id = definition.Id;
        DisplayName = definition.DisplayName ?? definition.Id;
        ModelFile = modelFile;
        PreprocessFile = definition.MeanImageFile;
        InputName = definition.InputName;
        OutputName = definition.OutputName;
        InputWidth = definition.InputWidth;
        InputHeight = definition.InputHeight;
        FeatureSize = definition.FeatureSize;
        PackageId = packageId;
        PackageVersion = packageVersion;
        ModelDirectory = modelDirectory;
    }

    /// <summary>Gets the stable identifier stored in model files, for example <c>resnet18-imagenet</c>.</summary>
    public string Id { get; }

    /// <summary>Gets a human-readable name.</summary>
    public string DisplayName { get; }

    /// <summary>Gets the declaration of this backbone: names, sizes and preprocessing.</summary>
    public BackboneDefinition Definition { get; }

    /// <summary>Gets whether this backbone comes from <see cref="FromOnnx(string, BackboneDefinition)"/> rather than <see cref="KnownBackbones"/>.</summary>
    public bool IsCustom => PackageId is null;

    /// <summary>
    /// Gets the backbone's ONNX file: relative to the model folder (<c>DnnImageModels</c>) for a known backbone, or an
    /// absolute path for one made with <see cref="FromOnnx(string, BackboneDefinition)"/>.
    /// </summary>
    public string ModelFile { get; }

    /// <summary>
    /// Gets the ONNX file that defines a mean image to subtract (resolved like <see cref="ModelFile"/>), or
    /// <see langword="null"/> when the backbone uses per-channel normalisation (see <see cref="Definition"/>).
    /// </summary>
    public string? PreprocessFile { get; }

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

    /// <summary>Gets the NuGet package that ships the weights, or <see langword="null"/> for a custom backbone.</summary>
    public string? PackageId { get; }

    /// <summary>Gets the version of <see cref="PackageId"/> that this library was built against, or <see langword="null"/> for a custom backbone.</summary>
    public string? PackageVersion { get; }

    /// <summary>Declares your own ONNX image model as a backbone.</summary>
    /// <param name="onnxFile">The ONNX file. It is read when a model is trained or loaded, not now.</param>
    /// <param name="definition">Its input and output names, input size, feature size and preprocessing.</param>
    /// <returns>The backbone, to pass to <c>ImageClassifierBuilder.WithBackbone</c> and to <c>ImageClassifier.Load</c>.</returns>
    /// <exception cref="ArgumentException">The definition is invalid (every problem is listed), the path is empty, or it does not name a regular file of at most 2 GiB (a pipe or a device would hang the load).</exception>
    /// <exception cref="FileNotFoundException">The ONNX file (or the mean-image file) does not exist.</exception>
    public static Backbone FromOnnx(string onnxFile, BackboneDefinition definition)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(onnxFile);
        ArgumentNullException.ThrowIfNull(definition);
        definition.Validate();
        var full = Path.GetFullPath(onnxFile);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"The ONNX file '{full}' for the backbone '{definition.Id}' does not exist. Pass the path of your model's .onnx file.", full);
        }

        if (Internal.FileGuard.Problem(full, MaxOnnxFileBytes) is { } problem) // Before anything reads it: a pipe or /dev/zero would hang the hash and the load.
        {
            throw new ArgumentException($"The ONNX file '{full}' for the backbone '{definition.Id}' cannot be used: {problem} Pass the path of your model's .onnx file.", nameof(onnxFile));
        }

        if (definition.MeanImageFile is { } meanImage)
        {
            var meanImagePath = Path.GetFullPath(meanImage, Path.GetDirectoryName(full)!);
            if (!File.Exists(meanImagePath))
            {
                throw new FileNotFoundException($"The mean-image ONNX file '{meanImagePath}' for the backbone '{definition.Id}' does not exist. Fix MeanImageFile (relative paths start from the folder of '{full}').", meanImagePath);
            }

            if (Internal.FileGuard.Problem(meanImagePath, MaxOnnxFileBytes) is { } meanProblem)
            {
                throw new ArgumentException($"The mean-image ONNX file '{meanImagePath}' for the backbone '{definition.Id}' cannot be used: {meanProblem} Fix MeanImageFile.", nameof(definition));
            }

            definition = definition with { MeanImageFile = meanImagePath };
        }

        return new Backbone(definition, full, null, null, null);
    }

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
        return new Backbone(Definition, ModelFile, PackageId, PackageVersion, Path.GetFullPath(directory), Stages);
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

        if (PackageId is not null && PackageVersion is not null)
        {
            dirs.Add(Path.Combine(packages, PackageId.ToLowerInvariant(), PackageVersion, "tools", "DnnImageModels"));
        }

        return dirs.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Finds the backbone's ONNX file.</summary>
    /// <returns>The absolute path of <see cref="ModelFile"/>.</returns>
    /// <exception cref="BackboneNotFoundException">No searched folder holds the file.</exception>
    public string ResolveModelPath() => Resolve(ModelFile);

    /// <summary>Finds the mean-image ONNX file.</summary>
    /// <returns>The absolute path of <see cref="PreprocessFile"/>, or <see langword="null"/> when the backbone has none.</returns>
    /// <exception cref="BackboneNotFoundException">No searched folder holds the file.</exception>
    public string? ResolvePreprocessPath() => PreprocessFile is null ? null : Resolve(PreprocessFile);

    /// <summary>Returns the display name and id.</summary>
    /// <returns>A short description.</returns>
    public override string ToString() => $"{DisplayName} ({Id})";

    private string Resolve(string relative)
    {
        var candidates = Path.IsPathFullyQualified(relative) ? [relative] : GetSearchDirectories().Select(d => Path.Combine(d, relative)).ToList();
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
