using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace PretrainedKit.Benchmarks;

/// <summary>The PyTorch int8 peer of the headline benchmark, run in a child process in the same run.</summary>
internal static class Int8Extras
{
    /// <summary>
    /// Runs bench/peers/pytorch_int8_resnet18.py (Debian's /usr/bin/python3 with python3-torch) on the benchmark's images:
    /// 2 threads, the onednn engine. Returns nothing (and says why) when PyTorch is not installed.
    /// </summary>
    public static Dictionary<string, double> PyTorchPeer(IReadOnlyList<string> sample)
    {
        var results = new Dictionary<string, double>();
        var root = BenchImages.FindRepositoryRoot();
        var script = Path.Combine(root, "bench", "peers", "pytorch_int8_resnet18.py");
        var json = Path.Combine(Path.GetTempPath(), $"pytorch-int8-{Environment.ProcessId}.json");
        var folder = Path.GetDirectoryName(sample[0])!;
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { script, "--images", folder, "--count", sample.Count.ToString(CultureInfo.InvariantCulture), "--threads", "2", "--engine", "onednn", "--json", json })
        {
            start.ArgumentList.Add(a);
        }

        try
        {
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                Console.WriteLine($"PyTorch int8 peer not measured (exit {process.ExitCode}): {error.Trim()}");
                return results;
            }

            Console.WriteLine(output.Result);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Console.WriteLine($"PyTorch int8 peer not measured: {ex.Message}");
            return results;
        }

        using var document = JsonDocument.Parse(File.ReadAllText(json));
        File.Delete(json);
        var peer = document.RootElement;
        results["pytorchInt8ImagesPerSecond"] = peer.GetProperty("int8EndToEndImagesPerSecond").GetDouble();
        results["pytorchInt8Batch1ImagesPerSecond"] = peer.GetProperty("int8Batch1ImagesPerSecond").GetDouble();
        results["pytorchInt8Batch8ImagesPerSecond"] = peer.GetProperty("int8Batch8ImagesPerSecond").GetDouble();
        results["pytorchFp32ImagesPerSecond"] = peer.GetProperty("fp32EndToEndImagesPerSecond").GetDouble();
        results["pytorchFp32Batch1ImagesPerSecond"] = peer.GetProperty("fp32Batch1ImagesPerSecond").GetDouble();
        results["pytorchFp32Batch8ImagesPerSecond"] = peer.GetProperty("fp32Batch8ImagesPerSecond").GetDouble();
        return results;
    }
}
