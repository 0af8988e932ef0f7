using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Backbones;
using PretrainedKit.Imaging;
using PretrainedKit.Onnx;

namespace PretrainedKit.Experiments;

internal static class Explore
{
    private static readonly (string Name, int C, int H)[] Stages = [("ReLU283_Output_0", 64, 56), ("ReLU315_Output_0", 128, 28), ("ReLU347_Output_0", 256, 14), ("ReLU393_Output_0", 512, 7)];

    public static void Run(Dataset train, Dataset test, int[][][] drawIndices, string work, string outDir, int drawsUsed, int testCount)
    {
        var backbone = KnownBackbones.ResNet18;
        var model = OnnxModelEditor.AddOutputs(OnnxModelEditor.MakeBatchDynamic(OnnxModelEditor.Read(backbone.ResolveModelPath())), Stages.Select(s => s.Name));
        using var options = new SessionOptions { IntraOpNumThreads = Environment.ProcessorCount, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(OnnxModelEditor.ToBytes(model), options);
        using var prep = BackboneSession.Open(backbone);
        var trainIdx = drawIndices.Take(drawsUsed).SelectMany(d => d.SelectMany(c => c)).Distinct().Order().ToArray();
        var testIdx = Enumerable.Range(0, testCount).ToArray();
        Directory.CreateDirectory(outDir);
        File.WriteAllBytes(Path.Combine(outDir, "train_idx.i32"), trainIdx.SelectMany(BitConverter.GetBytes).ToArray());
        File.WriteAllBytes(Path.Combine(outDir, "train_labels.u8"), trainIdx.Select(i => train.Labels[i]).ToArray());
        File.WriteAllBytes(Path.Combine(outDir, "test_labels.u8"), testIdx.Select(i => test.Labels[i]).ToArray());
        foreach (var (name, data, idx, views, folder) in new[] { ("test", test, testIdx, new[] { 0, 1 }, Path.Combine(work, "test")), ("train", train, trainIdx, new[] { 0, 1, 2, 3 }, Path.Combine(work, "train")) })
        {
            foreach (var view in views)
            {
                var file = Path.Combine(outDir, $"{name}_v{view}.f32");
                if (File.Exists(file))
                {
                    continue;
                }

                var sw = Stopwatch.StartNew();
                using var output = new BinaryWriter(File.Create(file + ".tmp"));
                const int Batch = 8;
                for (var start = 0; start < idx.Length; start += Batch)
                {
                    var chunk = idx.Skip(start).Take(Batch).ToArray();
                    var tensors = new float[chunk.Length * prep.TensorLength];
                    Parallel.For(0, chunk.Length, k =>
                    {
                        var path = BothFeaturizer.PngPath(folder, chunk[k]);
                        var rgb = new byte[224 * 224 * 3];
                        ImageDecoder.DecodeNormalized(File.ReadAllBytes(path), path, ImagePreprocessingOptions.Default, 224, 224, rgb);
                        rgb = Transform(rgb, view);
                        prep.Preprocess(rgb, tensors.AsSpan(k * prep.TensorLength, prep.TensorLength));
                    });
                    using var input = OrtValue.CreateTensorValueFromMemory(tensors, [chunk.Length, 3, 224, 224]);
                    using var runOptions = new RunOptions();
                    using var outs = session.Run(runOptions, [backbone.InputName], [input], Stages.Select(s => s.Name).ToArray());
                    var arrays = outs.Select(o => o.GetTensorDataAsSpan<float>().ToArray()).ToArray();
                    for (var k = 0; k < chunk.Length; k++)
                    {
                        foreach (var v in Pool(arrays, k))
                        {
                            output.Write(v);
                        }
                    }
                }

                output.Close();
                File.Move(file + ".tmp", file);
                Console.WriteLine($"{name} view {view}: {idx.Length} images in {sw.Elapsed.TotalSeconds:F0} s");
            }
        }
    }

    // Per stage: GAP, GMP (raw); then 2x2 grid average for stages 3 and 4.
    private static List<float> Pool(float[][] arrays, int n)
    {
        var result = new List<float>();
        for (var s = 0; s < Stages.Length; s++)
        {
            var (_, c, h) = Stages[s];
            var plane = h * h;
            var gap = new float[c];
            var gmp = new float[c];
            for (var ch = 0; ch < c; ch++)
            {
                var span = arrays[s].AsSpan(((n * c) + ch) * plane, plane);
                double sum = 0;
                var max = 0f;
                foreach (var v in span)
                {
                    sum += v;
                    max = Math.Max(max, v);
                }

                gap[ch] = (float)(sum / plane);
                gmp[ch] = max;
            }

            result.AddRange(gap);
            result.AddRange(gmp);
        }

        for (var s = 2; s < 4; s++)
        {
            var (_, c, h) = Stages[s];
            var half = (h + 1) / 2;
            for (var gy = 0; gy < 2; gy++)
            {
                for (var gx = 0; gx < 2; gx++)
                {
                    int y0 = gy == 0 ? 0 : h - half, x0 = gx == 0 ? 0 : h - half;
                    for (var ch = 0; ch < c; ch++)
                    {
                        var baseOffset = ((n * c) + ch) * h * h;
                        double sum = 0;
                        for (var y = y0; y < y0 + half; y++)
                        {
                            for (var x = x0; x < x0 + half; x++)
                            {
                                sum += arrays[s][baseOffset + (y * h) + x];
                            }
                        }

                        result.Add((float)(sum / (half * half)));
                    }
                }
            }
        }

        return result;
    }

    private static byte[] Transform(byte[] rgb, int view)
    {
        const int S = 224;
        if (view == 0)
        {
            return rgb;
        }

        var result = new byte[rgb.Length];
        if (view == 1)
        {
            for (var y = 0; y < S; y++)
            {
                for (var x = 0; x < S; x++)
                {
                    for (var k = 0; k < 3; k++)
                    {
                        result[(((y * S) + x) * 3) + k] = rgb[(((y * S) + (S - 1 - x)) * 3) + k];
                    }
                }
            }

            return result;
        }

        // Crop 200x200 (top-left for 2, bottom-right for 3), bilinear back to 224.
        const int C = 200;
        var off = view == 2 ? 0 : S - C;
        for (var y = 0; y < S; y++)
        {
            var sy = off + ((y + 0.5) * C / S) - 0.5;
            var y0 = Math.Clamp((int)Math.Floor(sy), 0, S - 1);
            var y1 = Math.Min(y0 + 1, S - 1);
            var fy = sy - Math.Floor(sy);
            for (var x = 0; x < S; x++)
            {
                var sx = off + ((x + 0.5) * C / S) - 0.5;
                var x0 = Math.Clamp((int)Math.Floor(sx), 0, S - 1);
                var x1 = Math.Min(x0 + 1, S - 1);
                var fx = sx - Math.Floor(sx);
                for (var k = 0; k < 3; k++)
                {
                    var v = ((1 - fy) * (((1 - fx) * rgb[(((y0 * S) + x0) * 3) + k]) + (fx * rgb[(((y0 * S) + x1) * 3) + k])))
                        + (fy * (((1 - fx) * rgb[(((y1 * S) + x0) * 3) + k]) + (fx * rgb[(((y1 * S) + x1) * 3) + k])));
                    result[(((y * S) + x) * 3) + k] = (byte)Math.Clamp(Math.Round(v), 0, 255);
                }
            }
        }

        return result;
    }
}
