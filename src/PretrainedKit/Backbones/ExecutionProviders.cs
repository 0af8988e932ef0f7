using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Internal;

namespace PretrainedKit.Backbones;

/// <summary>
/// Uses ONNX Runtime's CUDA execution provider when the process has it (reference <c>Microsoft.ML.OnnxRuntime.Gpu.Linux</c>
/// instead of <c>Microsoft.ML.OnnxRuntime</c>, with CUDA and cuDNN installed), and the CPU otherwise. A GPU is never required.
/// Set the environment variable <c>PRETRAINEDKIT_DEVICE=cpu</c> to skip the attempt.
/// </summary>
internal static class ExecutionProviders
{
    public const string DeviceEnvironmentVariable = "PRETRAINEDKIT_DEVICE";

    public static bool TryAddCuda(SessionOptions options, ILogger? logger)
    {
        if (string.Equals(Environment.GetEnvironmentVariable(DeviceEnvironmentVariable), "cpu", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        try
        {
            options.AppendExecutionProvider_CUDA(0);
            if (logger is not null)
            {
                Log.Device(logger, "CUDA (GPU 0)");
            }

            return true;
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            if (logger is not null)
            {
                Log.CpuFallback(logger, ex.Message);
            }

            return false;
        }
    }
}
