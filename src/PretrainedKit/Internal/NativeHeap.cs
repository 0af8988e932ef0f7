using System.Runtime.InteropServices;

namespace PretrainedKit.Internal;

/// <summary>
/// Gives memory that native code has freed back to the operating system. On Linux with glibc, memory freed by ONNX
/// Runtime stays in the C heap of the thread that allocated it, where a session opened later on another thread cannot
/// reuse it: training's switch from the throughput session to the latency session then held both sessions' memory, and
/// peak memory depended on which threads the run happened to use (bench/results/redesign-check.md).
/// </summary>
internal static class NativeHeap
{
    private static volatile bool _unavailable = !OperatingSystem.IsLinux();

    /// <summary>Returns the C heap's free pages to the operating system where the C library can (glibc's <c>malloc_trim</c>); elsewhere does nothing.</summary>
    public static void ReleaseFreedMemory()
    {
        if (_unavailable)
        {
            return;
        }

        try
        {
            _ = NativeMethods.MallocTrim(0);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true; // musl and other C libraries without malloc_trim.
        }
    }

    private static class NativeMethods
    {
        [DllImport("libc", EntryPoint = "malloc_trim")]
        public static extern int MallocTrim(nuint pad);
    }
}
