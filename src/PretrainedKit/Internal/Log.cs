using Microsoft.Extensions.Logging;

namespace PretrainedKit.Internal;

/// <summary>The library's log messages (source-generated, free when logging is off).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Skipped {Path}: {Reason}")]
    public static partial void Skipped(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "{Warning}")]
    public static partial void Warning(ILogger logger, string warning);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Ignored {Count} files without an image extension or outside class folders")]
    public static partial void Ignored(ILogger logger, int count);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Backbone runs on {Device}")]
    public static partial void Device(ILogger logger, string device);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "No usable CUDA execution provider ({Reason}); the backbone runs on the CPU")]
    public static partial void CpuFallback(ILogger logger, string reason);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Model '{Name}' reloaded from {Path} (generation {Generation})")]
    public static partial void ModelReloaded(ILogger logger, string name, string path, int generation);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "Model '{Name}' was not reloaded from {Path}; the previous model keeps serving. Reason: {Reason}")]
    public static partial void ModelReloadFailed(ILogger logger, Exception exception, string name, string path, string reason);

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "Watching the folder of model '{Name}' ({Path}) failed: {Reason}")]
    public static partial void WatchFailed(ILogger logger, Exception exception, string name, string path, string reason);

    [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "Model '{Name}' could not be loaded ahead of first use from {Path}; the first call will try again. Reason: {Reason}")]
    public static partial void PreloadFailed(ILogger logger, Exception exception, string name, string path, string reason);
}
