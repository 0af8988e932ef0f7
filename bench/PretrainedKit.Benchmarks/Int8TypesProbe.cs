using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Backbones;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;
using PretrainedKit.Onnx;
using PretrainedKit.Onnx.Proto;

namespace PretrainedKit.Benchmarks;

/// <summary>
/// Which integer types an int8 backbone should use on this CPU (issue #18): for U8S8 (full 8-bit weights), U8S7 (7-bit
/// weights) and U8U8, the speed of the fused graph against float (1 thread, alternating) and the cosine of its pooled
/// features to float's, fused and simulated (optimisation off: the QDQ arithmetic in float, no integer kernel), so that
/// a kernel's saturation shows as the gap between the two.
///   dotnet run -c Release --project bench/PretrainedKit.Benchmarks -- --int8-types [--calibration 100] [--test 40] [--seconds 4]
/// </summary>
internal static class Int8TypesProbe
{
    public static int Run(string[] args)
    {
        string? Value(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        var calibrationCount = int.Parse(Value("--calibration") ?? "100", CultureInfo.InvariantCulture);
        var testCount = int.Parse(Value("--test") ?? "40", CultureInfo.InvariantCulture);
        var seconds = double.Parse(Value("--seconds") ?? "4", CultureInfo.InvariantCulture);
        var runtime = BackboneRuntime.Open(KnownBackbones.ResNet18, FeatureLayout.Pooled, null);
        var renderer = new ViewRenderer(runtime, ImagePreprocessingOptions.Default);
        var files = Directory.GetFiles(Path.Combine(BenchImages.FindRepositoryRoot(), "assets", "fashion-mnist"), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        new Random(1).Shuffle(files);
        var tensors = files.Take(calibrationCount + testCount).Select(f =>
        {
            var t = new float[runtime.TensorLength];
            renderer.Reset();
            renderer.Render(File.ReadAllBytes(f), f, ImageView.Original, t);
            return t;
        }).ToArray();
        var calibration = Int8Backbone.Calibrate(runtime, tensors.Take(calibrationCount));
        var prepared = Int8Backbone.Prepare(runtime.ModelPath);
        var output = KnownBackbones.ResNet18.OutputName;
        using var reference = Session(OnnxModelEditor.Read(runtime.ModelPath), 1, GraphOptimizationLevel.ORT_ENABLE_ALL);
        Console.WriteLine($"CPU: {Cpu()}; {Environment.ProcessorCount} cores; calibration on {calibrationCount} bundled Fashion-MNIST images, cosine on {testCount} others");
        foreach (var types in Enum.GetValues<QuantizedTypes>())
        {
            var graph = QdqQuantizer.Quantize(prepared, calibration.ToDictionary(), types);
            using var fused = Session(graph, 1, GraphOptimizationLevel.ORT_ENABLE_ALL);
            using var simulated = Session(graph, 1, GraphOptimizationLevel.ORT_DISABLE_ALL);
            var test = tensors.Skip(calibrationCount).ToArray();
            var fusedCosines = test.Select(t => Cosine(Run(reference, t, output), Run(fused, t, output))).ToList();
            var simulatedCosines = test.Select(t => Cosine(Run(reference, t, output), Run(simulated, t, output))).ToList();
            double Speed(InferenceSession s)
            {
                for (var i = 0; i < 3; i++)
                {
                    Run(s, tensors[0], output);
                }

                var watch = Stopwatch.StartNew();
                var n = 0;
                while (watch.Elapsed.TotalSeconds < seconds)
                {
                    Run(s, tensors[n % tensors.Length], output);
                    n++;
                }

                return n / watch.Elapsed.TotalSeconds;
            }

            var before = Speed(reference);
            var int8 = Speed(fused);
            var after = Speed(reference);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{types}: 1 thread float {(before + after) / 2:F1}/s, int8 {int8:F1}/s, ratio {int8 / ((before + after) / 2):F2}; cosine to float fused mean {fusedCosines.Average():F4} min {fusedCosines.Min():F4}, simulated mean {simulatedCosines.Average():F4} min {simulatedCosines.Min():F4}"));
        }

        return 0;
    }

    private static InferenceSession Session(ModelProto model, int threads, GraphOptimizationLevel level)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = level, IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        return new InferenceSession(OnnxModelEditor.ToBytes(model), options);
    }

    private static float[] Run(InferenceSession session, float[] tensor, string output)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(tensor, [1, 3, 224, 224]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, [KnownBackbones.ResNet18.InputName], [input], [output]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static double Cosine(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(a, b);

    /// <summary>The CPU model and the flags that decide integer speed, from /proc/cpuinfo.</summary>
    public static string Cpu()
    {
        try
        {
            var lines = File.ReadAllLines("/proc/cpuinfo");
            var model = lines.FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
            var flags = (lines.FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(':', 2)[1] ?? string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            string[] interesting = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"];
            return $"{model} ({string.Join(", ", interesting.Where(flags.Contains))})";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
