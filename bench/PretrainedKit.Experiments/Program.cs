using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Backbones;
using PretrainedKit.Experiments;
using PretrainedKit.Imaging;
using PretrainedKit.Onnx;
using PretrainedKit.Training;

// Does a pretrained backbone pay off on small data? Fashion-MNIST (Debian's dataset-fashion-mnist), 10/50/200 training
// images per class, several seeded draws each, accuracy on the official 10,000 test images.
//   dotnet run -c Release --project bench/PretrainedKit.Experiments -- [--draws 5] [--sizes 10,50,200] [--test-count 10000] [--out bench/results]
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string? Arg(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
var draws = int.Parse(Arg("--draws") ?? "5");
var sizes = (Arg("--sizes") ?? "10,50,200").Split(',').Select(int.Parse).ToArray();
var testCount = int.Parse(Arg("--test-count") ?? "10000");
var outDir = Path.GetFullPath(Arg("--out") ?? Path.Combine("bench", "results"));
var source = Arg("--data") ?? "/usr/share/datasets/fashion-mnist";
if (!File.Exists(Path.Combine(source, "t10k-images-idx3-ubyte.gz")))
{
    Console.Error.WriteLine($"Fashion-MNIST was not found in {source}. Install it with 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu), or pass --data DIR with the four IDX .gz files.");
    return 2;
}

Directory.CreateDirectory(outDir);
var train = Idx.Read(Path.Combine(source, "train-images-idx3-ubyte.gz"), Path.Combine(source, "train-labels-idx1-ubyte.gz"));
var test = Idx.Read(Path.Combine(source, "t10k-images-idx3-ubyte.gz"), Path.Combine(source, "t10k-labels-idx1-ubyte.gz"));
var work = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "pretrainedkit", "experiments", "fashion-mnist");
Console.WriteLine($"Fashion-MNIST: {train.Labels.Length} train, {test.Labels.Length} test images; draws {draws}; sizes {string.Join("/", sizes)} per class; work folder {work}");

// The training subsets: per draw, a seeded shuffle of each class; smaller sizes are prefixes of larger ones.
var maxSize = sizes.Max();
var drawIndices = Enumerable.Range(0, draws).Select(d =>
{
    var random = new Random(1000 + d);
    return Enumerable.Range(0, 10).Select(c =>
    {
        var members = Enumerable.Range(0, train.Labels.Length).Where(i => train.Labels[i] == c).ToArray();
        random.Shuffle(members);
        return members.Take(maxSize).ToArray();
    }).ToArray();
}).ToArray();
if (args.Contains("--explore"))
{
    Explore.Run(train, test, drawIndices, work, "/tmp/explore", int.Parse(Arg("--explore-draws") ?? "1"), 2000);
    return 0;
}

var trainNeeded = drawIndices.SelectMany(d => d.SelectMany(c => c)).Distinct().Order().ToArray();
var testIndices = Enumerable.Range(0, Math.Min(testCount, test.Labels.Length)).ToArray();

using var featurizer = new BothFeaturizer();
var stopwatch = Stopwatch.StartNew();
var trainFeatures = featurizer.Featurize(Path.Combine(work, "train"), train, trainNeeded);
var testFeatures = featurizer.Featurize(Path.Combine(work, "test"), test, testIndices);
Console.WriteLine($"Features ready in {stopwatch.Elapsed.TotalSeconds:F0} s; cold featurisation measured at {featurizer.ColdImagesPerSecond:F1} images/s (0 = all from the feature store).");
BothFeaturizer.VerifyAgainstLibrary(Path.Combine(work, "test"), testIndices.Take(16).ToArray(), testFeatures);

var testLabels = testIndices.Select(i => (int)test.Labels[i]).ToArray();
var rows = new List<ResultRow>();
foreach (var n in sizes)
{
    for (var d = 0; d < draws; d++)
    {
        var indices = drawIndices[d].SelectMany(c => c.Take(n)).ToArray();
        var labels = indices.Select(i => (int)train.Labels[i]).ToList();
        rows.Add(Methods.OursPooled(n, d, indices.Select(i => trainFeatures[i].Pooled).ToList(), labels, testFeatures, testLabels));
        rows.Add(Methods.OursMultiStage(n, d, indices.Select(i => trainFeatures[i].MultiStage).ToList(), labels, testFeatures, testLabels));
        rows.Add(Methods.Scratch(n, d, indices.Select(i => train.Pixels(i)).ToList(), labels, testIndices.Select(test.Pixels).ToList(), testLabels));
        rows.Add(Methods.NaiveMlNet(n, d, indices.Select(i => trainFeatures[i].Pooled).ToList(), labels, testFeatures, testLabels));
        Console.WriteLine(string.Join("  ", rows.TakeLast(4).Select(r => $"{r.Method}@{n}#{d}={r.Accuracy:F3}")));
    }
}

Report.Write(rows, outDir, featurizer.ColdImagesPerSecond, testLabels.Length);
return 0;

namespace PretrainedKit.Experiments
{
    internal sealed record Dataset(byte[] Images, byte[] Labels, int Rows, int Cols)
    {
        public float[] Pixels(int index)
        {
            var size = Rows * Cols;
            var result = new float[size];
            for (var i = 0; i < size; i++)
            {
                result[i] = Images[(index * size) + i] / 255f;
            }

            return result;
        }
    }

    internal static class Idx
    {
        public static Dataset Read(string images, string labels)
        {
            var img = Decompress(images);
            var lab = Decompress(labels);
            int Be(byte[] b, int o) => (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
            return new Dataset(img[16..], lab[8..], Be(img, 8), Be(img, 12));
        }

        private static byte[] Decompress(string path)
        {
            using var file = File.OpenRead(path);
            using var gz = new GZipStream(file, CompressionMode.Decompress);
            using var memory = new MemoryStream();
            gz.CopyTo(memory);
            return memory.ToArray();
        }
    }

    internal sealed record Features(float[] Pooled, float[] MultiStage);

    /// <summary>
    /// Computes both feature layouts in ONE ONNX run per image (the stage outputs and the pooled output), with the
    /// library's own decoder, preprocessing and pooling, and keeps them in a feature store so a rerun is instant.
    /// </summary>
    internal sealed class BothFeaturizer : IDisposable
    {
        private const int Batch = 8;
        private readonly BackboneSession _preprocess = BackboneSession.Open(KnownBackbones.ResNet18);
        private readonly InferenceSession _session;
        private readonly string[] _outputs;
        private double _coldImages;
        private double _coldSeconds;

        public BothFeaturizer()
        {
            var backbone = KnownBackbones.ResNet18;
            var model = OnnxModelEditor.AddOutputs(OnnxModelEditor.MakeBatchDynamic(OnnxModelEditor.Read(backbone.ResolveModelPath())), backbone.Stages.Select(s => s.OutputName));
            using var options = new SessionOptions { IntraOpNumThreads = Environment.ProcessorCount, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            _session = new InferenceSession(OnnxModelEditor.ToBytes(model), options);
            _outputs = [.. backbone.Stages.Select(s => s.OutputName), backbone.OutputName];
        }

        public double ColdImagesPerSecond => _coldSeconds > 0 ? _coldImages / _coldSeconds : 0;

        public static string PngPath(string folder, int index) => Path.Combine(folder, "png", $"{index:D5}.png");

        public Dictionary<int, Features> Featurize(string folder, Dataset data, int[] indices)
        {
            Directory.CreateDirectory(Path.Combine(folder, "png"));
            var store = Path.Combine(folder, "features.bin");
            var result = Load(store);
            var missing = indices.Where(i => !result.ContainsKey(i)).ToArray();
            if (missing.Length == 0)
            {
                return result;
            }

            var backbone = KnownBackbones.ResNet18;
            var msSize = MultiStagePooling.FeatureSize(backbone.Stages);
            var sw = Stopwatch.StartNew();
            for (var start = 0; start < missing.Length; start += Batch)
            {
                var chunk = missing.Skip(start).Take(Batch).ToArray();
                var tensors = new float[chunk.Length * _preprocess.TensorLength];
                Parallel.For(0, chunk.Length, k =>
                {
                    var path = PngPath(folder, chunk[k]);
                    if (!File.Exists(path))
                    {
                        WritePng(path, data, chunk[k]);
                    }

                    var rgb = new byte[224 * 224 * 3];
                    ImageDecoder.DecodeNormalized(File.ReadAllBytes(path), path, ImagePreprocessingOptions.Default, 224, 224, rgb);
                    _preprocess.Preprocess(rgb, tensors.AsSpan(k * _preprocess.TensorLength, _preprocess.TensorLength));
                });
                using var input = OrtValue.CreateTensorValueFromMemory(tensors, [chunk.Length, 3, 224, 224]);
                using var runOptions = new RunOptions();
                using var outputs = _session.Run(runOptions, [backbone.InputName], [input], _outputs);
                var stageOutputs = outputs.Take(backbone.Stages.Count).Select(o => o.GetTensorDataAsSpan<float>().ToArray()).ToArray();
                var pooled = outputs[^1].GetTensorDataAsSpan<float>().ToArray();
                var ms = new float[chunk.Length * msSize];
                MultiStagePooling.Pool(backbone.Stages, stageOutputs, chunk.Length, ms);
                for (var k = 0; k < chunk.Length; k++)
                {
                    result[chunk[k]] = new Features(pooled.AsSpan(k * 512, 512).ToArray(), ms.AsSpan(k * msSize, msSize).ToArray());
                }

                if ((start / Batch) % 125 == 124 || start + Batch >= missing.Length)
                {
                    Save(store, result);
                    Console.WriteLine($"  {folder}: {Math.Min(start + Batch, missing.Length)}/{missing.Length} images featurised, {sw.Elapsed.TotalSeconds:F0} s");
                }
            }

            _coldImages += missing.Length;
            _coldSeconds += sw.Elapsed.TotalSeconds;
            return result;
        }

        /// <summary>Checks that this fast path gives exactly what the library computes for the same files.</summary>
        public static void VerifyAgainstLibrary(string folder, int[] indices, Dictionary<int, Features> features)
        {
            var paths = indices.Select(i => PngPath(folder, i)).ToList();
            foreach (var layout in new[] { FeatureLayout.Pooled, FeatureLayout.MultiStage })
            {
                using var session = BackboneSession.Open(KnownBackbones.ResNet18, null, layout);
                var library = FeaturePipeline.RunAsync(session, paths, ImagePreprocessingOptions.Default, null, CancellationToken.None).GetAwaiter().GetResult();
                var maxDifference = indices.Select((index, k) =>
                {
                    var ours = layout == FeatureLayout.Pooled ? features[index].Pooled : features[index].MultiStage;
                    return ours.Zip(library.Features[k]!, (a, b) => Math.Abs(a - b)).Max();
                }).Max();
                Console.WriteLine($"Check against the library's {layout} features on {paths.Count} test images: max difference {maxDifference:G3}");
                if (maxDifference > 1e-4)
                {
                    throw new InvalidOperationException("The experiment's features differ from the library's.");
                }
            }
        }

        public void Dispose()
        {
            _session.Dispose();
            _preprocess.Dispose();
        }

        private static void WritePng(string path, Dataset data, int index)
        {
            using var bitmap = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(data.Cols, data.Rows, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque));
            data.Images.AsSpan(index * data.Rows * data.Cols, data.Rows * data.Cols).CopyTo(bitmap.GetPixelSpan());
            using var encoded = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(path, encoded.ToArray());
        }

        private static Dictionary<int, Features> Load(string path)
        {
            var result = new Dictionary<int, Features>();
            if (!File.Exists(path))
            {
                return result;
            }

            using var reader = new BinaryReader(File.OpenRead(path));
            var count = reader.ReadInt32();
            for (var i = 0; i < count; i++)
            {
                var index = reader.ReadInt32();
                var pooled = ReadFloats(reader);
                var ms = ReadFloats(reader);
                result[index] = new Features(pooled, ms);
            }

            return result;
        }

        private static float[] ReadFloats(BinaryReader reader)
        {
            var n = reader.ReadInt32();
            var bytes = reader.ReadBytes(n * 4);
            var values = new float[n];
            Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
            return values;
        }

        private static void Save(string path, Dictionary<int, Features> features)
        {
            var temp = path + ".tmp";
            using (var writer = new BinaryWriter(File.Create(temp)))
            {
                writer.Write(features.Count);
                foreach (var (index, f) in features)
                {
                    writer.Write(index);
                    foreach (var values in new[] { f.Pooled, f.MultiStage })
                    {
                        writer.Write(values.Length);
                        var bytes = new byte[values.Length * 4];
                        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
                        writer.Write(bytes);
                    }
                }
            }

            File.Move(temp, path, overwrite: true);
        }
    }

    internal sealed record ResultRow(string Method, int PerClass, int Draw, double Accuracy, double HeadSeconds, int FeatureImages);

    internal static class Methods
    {
        public const string Pooled = "pretrained-pooled";
        public const string MultiStage = "pretrained-multistage";
        public const string FromScratch = "scratch-pixels";
        public const string Naive = "naive-mlnet";

        public static ResultRow OursPooled(int n, int d, List<float[]> x, List<int> y, Dictionary<int, Features> test, int[] testLabels) =>
            Linear(Pooled, n, d, x, y, test.OrderBy(t => t.Key).Select(t => t.Value.Pooled).ToList(), testLabels, n * 10);

        public static ResultRow OursMultiStage(int n, int d, List<float[]> x, List<int> y, Dictionary<int, Features> test, int[] testLabels) =>
            Linear(MultiStage, n, d, x, y, test.OrderBy(t => t.Key).Select(t => t.Value.MultiStage).ToList(), testLabels, n * 10);

        public static ResultRow Scratch(int n, int d, List<float[]> x, List<int> y, List<float[]> testPixels, int[] testLabels) =>
            Linear(FromScratch, n, d, x, y, testPixels, testLabels, 0);

        /// <summary>PretrainedKit's head with its default options (standardised features, L2 = 10, balanced weights), seeded per draw.</summary>
        private static ResultRow Linear(string method, int n, int d, List<float[]> x, List<int> y, List<float[]> testX, int[] testLabels, int featureImages)
        {
            var sw = Stopwatch.StartNew();
            var head = HeadTrainer.Train(x, y, 10, ImageClassifierOptions.Default with { Seed = d }, CancellationToken.None).Head;
            var seconds = sw.Elapsed.TotalSeconds;
            var right = 0;
            for (var i = 0; i < testX.Count; i++)
            {
                var p = head.Probabilities(testX[i]);
                right += Array.IndexOf(p, p.Max()) == testLabels[i] ? 1 : 0;
            }

            return new ResultRow(method, n, d, (double)right / testX.Count, seconds, featureImages);
        }

        private sealed class Row
        {
            public string Label { get; set; } = string.Empty;

            [VectorType(512)]
            public float[] Features { get; set; } = [];
        }

        private sealed class Output
        {
            public string PredictedLabelValue { get; set; } = string.Empty;
        }

        /// <summary>What a user writes after the ML.NET docs: ResNet18 features, MapValueToKey, LbfgsMaximumEntropy with its defaults.</summary>
        public static ResultRow NaiveMlNet(int n, int d, List<float[]> x, List<int> y, Dictionary<int, Features> test, int[] testLabels)
        {
            var ml = new MLContext(d);
            var sw = Stopwatch.StartNew();
            var data = ml.Data.LoadFromEnumerable(x.Select((f, i) => new Row { Label = y[i].ToString(CultureInfo.InvariantCulture), Features = f }));
            var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy())
                .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabelValue", "PredictedLabel"));
            var model = pipeline.Fit(data);
            var seconds = sw.Elapsed.TotalSeconds;
            var testRows = test.OrderBy(t => t.Key).Select((t, i) => new Row { Label = testLabels[i].ToString(CultureInfo.InvariantCulture), Features = t.Value.Pooled });
            var predicted = ml.Data.CreateEnumerable<Output>(model.Transform(ml.Data.LoadFromEnumerable(testRows)), reuseRowObject: false).ToList();
            var right = predicted.Where((p, i) => p.PredictedLabelValue == testLabels[i].ToString(CultureInfo.InvariantCulture)).Count();
            return new ResultRow(Naive, n, d, (double)right / testLabels.Length, seconds, n * 10);
        }
    }
}
