using System.Reflection;

namespace PretrainedKit.Internal;

/// <summary>The one place that reads the library's version, for model files, ONNX metadata and reports.</summary>
internal static class LibraryVersion
{
    /// <summary>Gets the informational version (for example <c>0.1.0+abc123</c>), or <see langword="null"/> when the assembly has none.</summary>
    public static string? Informational { get; } =
        typeof(LibraryVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;

    /// <summary>Gets the version without build metadata (for example <c>0.1.0</c>), or <c>unknown</c>.</summary>
    public static string Short => Informational?.Split('+')[0] ?? "unknown";
}
