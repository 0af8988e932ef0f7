namespace PretrainedKit.Caching;

/// <summary>
/// Where and how much the on-disk feature cache keeps. Features are keyed by the SHA-256 of the image file's bytes, the
/// backbone id, a hash of its weights and the preprocessing settings, so a cached vector is reused only when it would be
/// recomputed bit for bit.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record FeatureCacheOptions
{
    /// <summary>The default size limit: 1 GiB (about 400,000 images with 512 features each).</summary>
    public const long DefaultMaxBytes = 1L << 30;

    /// <summary>The environment variable that overrides the default cache folder.</summary>
    public const string DirectoryEnvironmentVariable = "PRETRAINEDKIT_CACHE_DIR";

    /// <summary>Gets a value indicating whether features are read from and written to the cache.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool Enabled { get; init; } = true;

    /// <summary>
    /// Gets the cache folder, or <see langword="null"/> for the default: <c>$PRETRAINEDKIT_CACHE_DIR</c> if set, else
    /// <c>$XDG_CACHE_HOME/pretrainedkit/features</c> or <c>~/.cache/pretrainedkit/features</c> on Linux and macOS, and
    /// <c>%LOCALAPPDATA%\PretrainedKit\features</c> on Windows.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? Directory { get; init; }

    /// <summary>
    /// Gets the size above which the least recently used entries are evicted, down to <see cref="FeatureCache.TrimTarget"/>
    /// of it (checked after each featurisation run that computed new features); 0 means no limit.
    /// </summary>
    /// <value>The default is <see cref="DefaultMaxBytes"/> (1 GiB).</value>
    public long MaxBytes { get; init; } = DefaultMaxBytes;

    /// <summary>Gets the default options (enabled, default folder, 1 GiB).</summary>
    public static FeatureCacheOptions Default { get; } = new();

    /// <summary>Gets options that turn the cache off.</summary>
    public static FeatureCacheOptions Disabled { get; } = new() { Enabled = false };

    /// <summary>Resolves the folder the cache uses.</summary>
    /// <returns>An absolute path.</returns>
    public string ResolveDirectory()
    {
        if (!string.IsNullOrWhiteSpace(Directory))
        {
            return Path.GetFullPath(Directory);
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(DirectoryEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return Path.GetFullPath(fromEnvironment);
        }

        if (OperatingSystem.IsWindows())
        {
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "PretrainedKit", "features");
        }

        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrWhiteSpace(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "pretrainedkit", "features");
    }

    internal void Validate()
    {
        if (MaxBytes < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBytes), MaxBytes, "The cache size limit cannot be negative.");
        }
    }
}
