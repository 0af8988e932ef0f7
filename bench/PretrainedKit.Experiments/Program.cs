using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using PretrainedKit.Models;
using PretrainedKit.Backbones;
using PretrainedKit.Experiments;
using PretrainedKit.Imaging;
using PretrainedKit.Onnx;
using PretrainedKit.Training;

// Does a pretrained backbone pay off on small data? Fashion-MNIST (Debian's dataset-fashion-mnist), 10/50/200 training
// images per class, several seeded draws each, accuracy on the official 10,000 test images.
//   dotnet run -c Release --project bench/PretrainedKit.Experiments -- [--draws 5] [--sizes 10,50,200] [--test-count 10000] [--auto-l2-sizes 10] [--kernel-sizes 10,50,200] [--out bench/results] [--write-draws FILE]
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string? Arg(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
if (Arg("--aligned-cost") is { } costFolder)
{
    AlignedCheck.Cost(costFolder);
    return 0;
}

var draws = int.Parse(Arg("--draws") ?? "5");
var sizes = (Arg("--sizes") ?? "10,50,200").Split(',').Select(int.Parse).ToArray();
var testCount = int.Parse(Arg("--test-count") ?? "10000");
var kernelSizes = (Arg("--kernel-sizes") ?? "10,50,200").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
var autoSizes = (Arg("--auto-l2-sizes") ?? "10").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
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
if (Arg("--write-draws") is { } drawsFile)
{
    // The same draws for peers in other languages (bench/peers): one row per chosen training image, "rank" its place in
    // its class's shuffled order, so that the first n ranks of each class are the draw at n per class.
    var lines = new List<string> { "draw,class,rank,index" };
    for (var d = 0; d < draws; d++)
    {
        for (var c = 0; c < 10; c++)
        {
            lines.AddRange(drawIndices[d][c].Select((index, rank) => $"{d},{c},{rank},{index}"));
        }
    }

    File.WriteAllLines(drawsFile, lines);
    Console.WriteLine($"Wrote {lines.Count - 1} draw rows to {drawsFile}");
    return 0;
}

var trainNeeded = drawIndices.SelectMany(d => d.SelectMany(c => c)).Distinct().Order().ToArray();
var testIndices = Enumerable.Range(0, Math.Min(testCount, test.Labels.Length)).ToArray();

using var featurizer = new BothFeaturizer();
(string Topic, int Cap)[] clipArt5 = [("food/fruit", 91), ("transportation/vehicles", 62), ("animals/birds", 51), ("plants/flowers", 34), ("animals/fish", 23)];
(string Topic, int Cap)[] clipArt6 = [("animals/mammals", 126), ("recreation/music", 78), ("food/desserts", 69), ("electronics", 43), ("buildings/homes", 38), ("signs_and_symbols/weather", 12)];
var colourWork = Path.Combine(work, "..", "clipart-auto");
(EvidenceSet? A, EvidenceSet? B) ColourSets() => (
    PretrainedKit.Experiments.AutoLevers.ClipArtSet(featurizer, "clipart-5", clipArt5, colourWork, draws, 0.6),
    PretrainedKit.Experiments.AutoLevers.ClipArtSet(featurizer, "clipart-6", clipArt6, colourWork, draws, 0.6));

int RunAuto(IEnumerable<EvidenceSet?> sets)
{
    var autoRows = new List<AutoRow>();
    foreach (var set in sets)
    {
        if (set is not null)
        {
            Console.WriteLine($"{set.Name}: {set.Description}");
            autoRows.AddRange(PretrainedKit.Experiments.AutoLevers.Run(set));
        }
    }

    PretrainedKit.Experiments.AutoLevers.Write(autoRows, outDir, Arg("--machine") ?? "machine not given (--machine)");
    return 0;
}

if (args.Contains("--auto") && args.Contains("--colour-only"))
{
    var (a, b) = ColourSets();
    return RunAuto([a, b]);
}

if (args.Contains("--int8-fidelity"))
{
    // Issue #18 item 2, follow-up: int8 feature fidelity of calibration variants on images no accuracy figure uses (see Int8Fidelity.cs).
    var fidelityWork = Path.GetFullPath(Path.Combine(work, "..", "int8-fidelity"));
    var inDraws = trainNeeded.ToHashSet();
    var probeRandom = new Random(18_200);
    var fashionProbe = Enumerable.Range(0, 10).SelectMany(c =>
    {
        var outside = Enumerable.Range(0, train.Labels.Length).Where(i => train.Labels[i] == c && !inDraws.Contains(i)).ToArray();
        probeRandom.Shuffle(outside);
        return outside.Take(60);
    }).Order().ToArray();
    var fashionFolder = Path.Combine(fidelityWork, "fashion-mnist");
    BothFeaturizer.WritePngs(fashionFolder, train, fashionProbe);
    var fashionCalibration = PretrainedKit.Featurization.Int8Calibrator.Choose([.. Enumerable.Range(0, 10).Select(c => (IReadOnlyList<string>)[.. drawIndices[0][c].Take(200).Select(i => BothFeaturizer.PngPath(Path.Combine(work, "train"), i))])]);
    var (probeFiles, _) = PretrainedKit.Experiments.AutoLevers.ClipArtFiles(Int8Fidelity.ProbeTopics);
    var clipCalibration = PretrainedKit.Featurization.Int8Calibrator.Choose([.. probeFiles.Select(f => (IReadOnlyList<string>)[.. f.Where((_, i) => i % 2 == 0)])]);
    var clipProbe = probeFiles.SelectMany((f, c) => f.Select((path, i) => (Key: (c * 10000) + i, Path: path)).Where(t => t.Key % 2 == 1)).ToDictionary(t => t.Key, t => t.Path);
    Int8Fidelity.Run(
        [
            new Int8Fidelity.ProbeSet("fashion-mnist", $"calibrated as training calibrates (the {fashionCalibration.Count} images of draw 0 that the accuracy run calibrates on); probe: {fashionProbe.Length} training images (60 per class, seeded) outside every draw's training set", fashionCalibration, fashionProbe.ToDictionary(i => i, i => BothFeaturizer.PngPath(fashionFolder, i))),
            new Int8Fidelity.ProbeSet("clipart-probe", $"openclipart topics in neither clipart-5 nor clipart-6 ({string.Join(", ", Int8Fidelity.ProbeTopics.Select(t => t.Topic))}); calibrated on {clipCalibration.Count} of the even-numbered images of each topic (round robin), probe: the {clipProbe.Count} odd-numbered ones", clipCalibration, clipProbe),
        ],
        fidelityWork,
        outDir,
        Arg("--machine") ?? "machine not given (--machine)");
    return 0;
}

var stopwatch = Stopwatch.StartNew();
var trainFeatures = featurizer.Featurize(Path.Combine(work, "train"), train, trainNeeded);
var testFeatures = featurizer.Featurize(Path.Combine(work, "test"), test, testIndices);
Console.WriteLine($"Features ready in {stopwatch.Elapsed.TotalSeconds:F0} s; cold featurisation measured at {featurizer.ColdImagesPerSecond:F1} images/s (0 = all from the feature store).");
BothFeaturizer.VerifyAgainstLibrary(testIndices.Take(8).Select(i => BothFeaturizer.PngPath(Path.Combine(work, "test"), i)).ToList(), testIndices.Take(8).ToArray(), testFeatures);
if (args.Contains("--int8"))
{
    // Issue #18 item 2: int8 against float accuracy and feature cosine (see Int8Accuracy.cs); int8 stores under work/../int8.
    var int8Work = Path.GetFullPath(Path.Combine(work, "..", "int8"));
    var int8Rows = new List<Int8Accuracy.Row>();
    var int8Cosines = new Dictionary<string, Dictionary<string, double>>();
    var fashionDraw = drawIndices[0].SelectMany(c => c.Take(200)).ToArray();
    var (fashionRows, fashionCosines) = Int8Accuracy.Run(
        "fashion-mnist",
        [(fashionDraw, testIndices.Select(i => 100000 + i).ToArray())],
        k => k >= 100000 ? BothFeaturizer.PngPath(Path.Combine(work, "test"), k - 100000) : BothFeaturizer.PngPath(Path.Combine(work, "train"), k),
        k => k >= 100000 ? test.Labels[k - 100000] : train.Labels[k],
        k => k >= 100000 ? testFeatures[k - 100000] : trainFeatures[k],
        10,
        int8Work);
    int8Rows.AddRange(fashionRows);
    int8Cosines["fashion-mnist"] = fashionCosines;
    var (int8ColourA, int8ColourB) = ColourSets();
    foreach (var (set, topics) in new[] { (int8ColourA, clipArt5), (int8ColourB, clipArt6) })
    {
        if (set is null)
        {
            continue;
        }

        var (_, keyed) = PretrainedKit.Experiments.AutoLevers.ClipArtFiles(topics);
        var (colourRows, colourCosines) = Int8Accuracy.Run(set.Name, [.. set.Draws.Select(d => (d.Train, d.Test))], k => keyed[k], set.LabelOf, set.FeaturesOf, set.Classes.Count, int8Work);
        int8Rows.AddRange(colourRows);
        int8Cosines[set.Name] = colourCosines;
    }

    Int8Accuracy.Write(int8Rows, int8Cosines, outDir, Arg("--machine") ?? "machine not given (--machine)");
    return 0;
}

if (args.Contains("--features-only"))
{
    return 0;
}

if (args.Contains("--duplicates"))
{
    // Issue #15: near-duplicate threshold calibration (see Duplicates.cs).
    var (colourA, colourB) = ColourSets();
    var sources = new List<Duplicates.Source>();
    var fashionOriginals = testIndices.Take(int.Parse(Arg("--originals") ?? "300")).ToArray();
    var fashionDistinct = drawIndices[0].SelectMany(c => c.Take(200)).ToArray();
    sources.Add(new Duplicates.Source(
        "fashion-mnist",
        fashionOriginals.ToDictionary(i => i, i => BothFeaturizer.PngPath(Path.Combine(work, "test"), i)),
        fashionOriginals.ToDictionary(i => i, i => (int)test.Labels[i]),
        fashionDistinct.Select(i => (trainFeatures[i], (int)train.Labels[i], BothFeaturizer.PngPath(Path.Combine(work, "train"), i))).ToList()));
    foreach (var (name, topics, set) in new[] { ("clipart-5", clipArt5, colourA), ("clipart-6", clipArt6, colourB) })
    {
        if (set is null)
        {
            continue;
        }

        var (_, keyed) = PretrainedKit.Experiments.AutoLevers.ClipArtFiles(topics);
        sources.Add(new Duplicates.Source(name, keyed, keyed.ToDictionary(k => k.Key, k => k.Key / 10000), keyed.Select(k => (set.FeaturesOf(k.Key), k.Key / 10000, k.Value)).ToList()));
    }

    if (args.Contains("--review"))
    {
        // Contact sheets of the pairs counted as false at the shipped threshold, for the by-eye review (DuplicateReview.cs).
        DuplicateReview.Write(sources, outDir, int.Parse(Arg("--fashion-sample") ?? "48"));
        return 0;
    }

    if (args.Contains("--aligned"))
    {
        // Issue #15: the aligned pixel check of near-duplicate candidates, measured (AlignedCheck.cs).
        AlignedCheck.Run(featurizer, sources, Path.Combine(work, "..", "duplicates"), outDir, Arg("--machine") ?? "machine not given (--machine)");
        return 0;
    }

    if (args.Contains("--pixels"))
    {
        // A pixel-level second check, tried and not used (PixelCheck.cs).
        PixelCheck.Run(featurizer, sources, Path.Combine(work, "..", "duplicates"));
        return 0;
    }

    Duplicates.Run(featurizer, sources, Path.Combine(work, "..", "duplicates"), outDir, Arg("--machine") ?? "machine not given (--machine)");
    return 0;
}

if (args.Contains("--label-noise") && args.Contains("--plot-only"))
{
    // Redraws bench/results/label-noise.png from the CSV of a finished run.
    LabelNoise.Plot(LabelNoise.ReadCsv(Path.Combine(outDir, "label-noise.csv")), Path.Combine(outDir, "label-noise.png"));
    return 0;
}

if (args.Contains("--label-noise"))
{
    // Issue #15: injected label errors (see LabelNoise.cs).
    var fashionSet = new EvidenceSet(
        "fashion-mnist",
        "Fashion-MNIST",
        Enumerable.Range(0, 10).Select(c => c.ToString(CultureInfo.InvariantCulture)).ToList(),
        Enumerable.Range(0, draws).Select(d => (200, d, drawIndices[d].SelectMany(c => c.Take(200)).ToArray(), testIndices.Select(i => 100000 + i).ToArray())).ToList(),
        k => k >= 100000 ? testFeatures[k - 100000] : trainFeatures[k],
        k => k >= 100000 ? test.Labels[k - 100000] : train.Labels[k]);
    var noiseRows = LabelNoise.Run(fashionSet, 200, draws, confusable: true, topN: 100);
    var (noiseA, noiseB) = ColourSets();
    foreach (var set in new[] { noiseA, noiseB })
    {
        if (set is not null)
        {
            // Smaller sets: precision among as many top-ranked images as were flipped.
            noiseRows.AddRange(LabelNoise.Run(set, 0, draws, confusable: false, topN: null));
        }
    }

    LabelNoise.Write(noiseRows, outDir, Arg("--machine") ?? "machine not given (--machine)");
    return 0;
}

if (args.Contains("--search-store"))
{
    // Issue #16: search time and precision at sizes beyond one cold featurisation here (see SearchBench.RunStore).
    return SearchBench.RunStore(trainFeatures, testFeatures, train, test, outDir, Arg("--machine") ?? "machine not given (--machine)");
}

if (args.Contains("--search"))
{
    // Issue #16: similar-image search on Fashion-MNIST through the public API (see SearchBench.cs).
    return await SearchBench.RunAsync(work, train, test, outDir, Arg("--machine") ?? "machine not given (--machine)", (Arg("--search-sizes") ?? "10000,60000").Split(',').Select(int.Parse).ToArray());
}

if (args.Contains("--active-learning"))
{
    // Issue #16: which images to label next (see ActiveLearningExperiment.cs). Fashion-MNIST: per seed, the draw's first
    // 10 images per class labelled, a pool of 5,000 training images drawn (seeded) from those whose features are cached,
    // 5 rounds of +50; the official 10k test set. Clip art: per seed, the draw's training part (60%) with 3 per class
    // labelled and the rest as the pool, 5 rounds of +10; macro accuracy on the held-out 40%.
    var alRows = new List<ActiveRow>();
    var fashionClasses = Enumerable.Range(0, 10).Select(c => c.ToString(CultureInfo.InvariantCulture)).ToList();
    var cachedTrain = trainFeatures.Keys.Order().ToArray();
    var fashionTest = testIndices.Select(i => 100000 + i).ToArray();
    float[] FashionPooled(int k) => k >= 100000 ? testFeatures[k - 100000].Pooled[0] : trainFeatures[k].Pooled[0];
    int FashionLabel(int k) => k >= 100000 ? test.Labels[k - 100000] : train.Labels[k];
    var descriptions = new Dictionary<string, string>
    {
        ["fashion-mnist"] = $"start: the first 10 images per class of each seed's draw (100); pool: 5,000 training images drawn at random (seeded) from the {cachedTrain.Length:N0} whose features earlier experiments cached, the start excluded; 5 rounds of +50 labels; test: the official {fashionTest.Length:N0} test images.",
    };
    // --seed-offset N: seeds N.. (held out: starts, pools and clip-art splits not used by the first run); --strategies a,b.
    var offset = int.Parse(Arg("--seed-offset") ?? "0");
    if (args.Contains("--al-auto"))
    {
        // The model as the library trains it by default today (automatic lever choice); see ActiveLearningExperiment.AutoFeatures.
        ActiveLearningExperiment.AutoFeatures = k => k >= 100000 ? testFeatures[k - 100000] : trainFeatures[k];
    }

    if (Arg("--strategies") is { } strategies)
    {
        ActiveLearningExperiment.Strategies = strategies.Split(',');
    }

    for (var s = offset; s < offset + draws; s++)
    {
        var seed = s;
        var start = s < drawIndices.Length
            ? drawIndices[s].SelectMany(c => c.Take(10)).ToArray()
            : cachedTrain.GroupBy(k => (int)train.Labels[k]).SelectMany(g => g.OrderBy(k => new Random(16_300 + seed + (k * 7919)).Next()).Take(10)).ToArray();
        var rest = cachedTrain.Except(start).ToArray();
        new Random(16_100 + s).Shuffle(rest);
        alRows.AddRange(ActiveLearningExperiment.Run(new ActiveTask("fashion-mnist", s, start, rest.Take(5000).ToArray(), fashionTest), fashionClasses, FashionPooled, FashionLabel, 5, 50));
    }

    var alA = PretrainedKit.Experiments.AutoLevers.ClipArtSet(featurizer, "clipart-5", clipArt5, colourWork, offset + draws, 0.6);
    var alB = PretrainedKit.Experiments.AutoLevers.ClipArtSet(featurizer, "clipart-6", clipArt6, colourWork, offset + draws, 0.6);
    foreach (var set in new[] { alA, alB })
    {
        if (set is null)
        {
            continue;
        }

        descriptions[set.Name] = $"{set.Description}; start: 3 random images per class of the training part, pool: the rest of it; 5 rounds of +10 labels.";
        if (args.Contains("--al-auto"))
        {
            ActiveLearningExperiment.AutoFeatures = set.FeaturesOf;
        }

        foreach (var (_, s, trainPart, testPart) in set.Draws.Where(d => d.Draw >= offset))
        {
            var shuffled = trainPart.ToArray();
            new Random(16_200 + s).Shuffle(shuffled);
            var start = shuffled.GroupBy(set.LabelOf).SelectMany(g => g.Take(3)).ToArray();
            alRows.AddRange(ActiveLearningExperiment.Run(new ActiveTask(set.Name, s, start, shuffled.Except(start).ToArray(), testPart), set.Classes, k => set.FeaturesOf(k).Pooled[0], set.LabelOf, 5, 10));
        }
    }

    ActiveLearningExperiment.Write(alRows, outDir, Arg("--machine") ?? "machine not given (--machine)", descriptions, Arg("--name") ?? "active-learning");
    return 0;
}

if (args.Contains("--auto-validation"))
{
    // How the kernel widths and the centre budget were chosen: validation images only (see AutoValidation.cs).
    var validationRows = new List<AutoRow>();
    AutoValidation.LowestLogLoss = args.Contains("--lowest-log-loss");
    AutoValidation.Ensembles = args.Contains("--ensembles");
    // --power P: features raised element-wise to P before everything (a normalisation lever checked and not used).
    var power = Arg("--power") is { } powerText ? double.Parse(powerText, CultureInfo.InvariantCulture) : 1.0;
    EvidenceSet Powered(EvidenceSet set)
    {
        if (power == 1.0)
        {
            return set;
        }

        var memo = new System.Collections.Concurrent.ConcurrentDictionary<int, Features>();
        float[] P(float[] v) => v.Select(x => (float)(Math.Sign(x) * Math.Pow(Math.Abs(x), power))).ToArray();
        return set with { FeaturesOf = k => memo.GetOrAdd(k, key => { var f = set.FeaturesOf(key); return new Features(f.Pooled.Select(P).ToArray(), f.Grid.Select(P).ToArray()); }) };
    }

    foreach (var colour in args.Contains("--fashion-only") ? [] : new[] { ("clipart-5", clipArt5), ("clipart-6", clipArt6) })
    {
        if (PretrainedKit.Experiments.AutoLevers.ClipArtSet(featurizer, colour.Item1, colour.Item2, colourWork, draws, 0.6, AutoValidation.ColourValidationSeed) is { } set)
        {
            validationRows.AddRange(AutoValidation.Run(Powered(set), centres: false, wideSearch: !args.Contains("--no-wide")));
        }
    }

    var fashionValidation = new EvidenceSet(
        "fashion-mnist",
        "Fashion-MNIST, validated on the next draw's training images",
        Enumerable.Range(0, 10).Select(c => c.ToString(CultureInfo.InvariantCulture)).ToList(),
        sizes.SelectMany(n => Enumerable.Range(0, draws).Select(d =>
        {
            var own = drawIndices[d].SelectMany(c => c).ToHashSet();
            return (n, d, drawIndices[d].SelectMany(c => c.Take(n)).ToArray(), drawIndices[(d + 1) % draws].SelectMany(c => c).Where(i => !own.Contains(i)).ToArray());
        })).ToList(),
        k => trainFeatures[k],
        k => train.Labels[k]);
    validationRows.AddRange(AutoValidation.Run(Powered(fashionValidation), centres: !args.Contains("--no-centres"), wideSearch: !args.Contains("--no-wide")));
    AutoValidation.Write(validationRows, Path.Combine(outDir, Arg("--name") ?? "auto-validation.md"), Arg("--machine") ?? "machine not given (--machine)");
    return 0;
}

if (args.Contains("--auto"))
{
    // Issue #14's evidence: automatic lever choice against the old default and fixed combinations (see AutoLevers.cs).
    var fashion = new EvidenceSet(
        "fashion-mnist",
        $"Fashion-MNIST, {draws} draws at {string.Join("/", sizes)} per class, official {testIndices.Length} test images",
        Enumerable.Range(0, 10).Select(c => c.ToString(CultureInfo.InvariantCulture)).ToList(),
        sizes.SelectMany(n => Enumerable.Range(0, draws).Select(d => (n, d, drawIndices[d].SelectMany(c => c.Take(n)).ToArray(), testIndices.Select(i => 100000 + i).ToArray()))).ToList(),
        k => k >= 100000 ? testFeatures[k - 100000] : trainFeatures[k],
        k => k >= 100000 ? test.Labels[k - 100000] : train.Labels[k]);
    var (colourA, colourB) = ColourSets();
    return RunAuto([colourA, colourB, fashion]);
}


var testLabels = testIndices.Select(i => (int)test.Labels[i]).ToArray();
var rows = new List<ResultRow>();
foreach (var n in sizes)
{
    for (var d = 0; d < draws; d++)
    {
        var indices = drawIndices[d].SelectMany(c => c.Take(n)).ToArray();
        var labels = indices.Select(i => (int)train.Labels[i]).ToList();
        rows.Add(Methods.OursPooled(n, d, indices.Select(i => trainFeatures[i].Pooled[0]).ToList(), labels, testFeatures, testLabels));
        rows.Add(Methods.OursMultiStage(n, d, indices.Select(i => trainFeatures[i].MultiStage(0)).ToList(), labels, testFeatures, testLabels));
        rows.Add(Methods.Scratch(n, d, indices.Select(i => train.Pixels(i)).ToList(), labels, testIndices.Select(test.Pixels).ToList(), testLabels));
        rows.Add(Methods.NaiveMlNet(n, d, indices.Select(i => trainFeatures[i].Pooled[0]).ToList(), labels, testFeatures, testLabels));
        rows.Add(Methods.Levers(n, d, indices.Select(i => trainFeatures[i]).ToList(), labels, testFeatures.OrderBy(t => t.Key).Select(t => t.Value).ToList(), testLabels, 10));
        var shown = 5;
        if (autoSizes.Contains(n))
        {
            rows.Add(Methods.Levers(n, d, indices.Select(i => trainFeatures[i]).ToList(), labels, testFeatures.OrderBy(t => t.Key).Select(t => t.Value).ToList(), testLabels, 10, autoRegularization: true));
            shown++;
        }

        if (kernelSizes.Contains(n))
        {
            rows.Add(Methods.Levers(n, d, indices.Select(i => trainFeatures[i]).ToList(), labels, testFeatures.OrderBy(t => t.Key).Select(t => t.Value).ToList(), testLabels, 10, head: HeadKind.Kernel));
            shown++;
        }

        Console.WriteLine(string.Join("  ", rows.TakeLast(shown).Select(r => $"{r.Method}@{n}#{d}={r.Accuracy:F3}")));
    }
}

// No regression on colour images: the same methods on a clip-art set (Debian's openclipart-png, CC0), when installed.
var clipArtRows = ClipArt.Run(featurizer, Path.Combine(work, "..", "clipart"), draws);
Report.Write(rows, outDir, featurizer.ColdImagesPerSecond, testLabels.Length, clipArtRows);
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

    /// <summary>One image's features for each view (0 = as is, 1 = mirrored): the backbone's pooled output and the multi-stage grid layout.</summary>
    internal sealed record Features(float[][] Pooled, float[][] Grid)
    {
        public static readonly int MultiStageSize = MultiStagePooling.FeatureSize(KnownBackbones.ResNet18.Stages, FeatureLayout.MultiStage);

        /// <summary>Gets the multi-stage features of a view: the grid layout starts with them.</summary>
        public float[] MultiStage(int view) => Grid[view][..MultiStageSize];
    }

    /// <summary>
    /// Computes the pooled output and the multi-stage grid features of each image and of its mirror image in ONE ONNX run
    /// per view, with the library's own decoder, views, preprocessing and pooling, and keeps them in a feature store so a
    /// rerun is instant.
    /// </summary>
    internal sealed class BothFeaturizer : IDisposable
    {
        public static readonly ImageView[] Views = [ImageView.Original, ImageView.Mirror];
        private const int Batch = 8;
        private readonly string _storeName = "features-v2.bin";
        private readonly ImageView[] _views = Views;
        private readonly BackboneRuntime _preprocess = BackboneRuntime.Open(KnownBackbones.ResNet18, FeatureLayout.Pooled, null);
        private readonly InferenceSession _session;
        private readonly string[] _outputs;
        private double _coldImages;
        private double _coldSeconds;

        public BothFeaturizer()
            : this(null, null)
        {
        }

        /// <summary>Another backbone graph (issue #18: the int8 one) with its own store; <paramref name="views"/> default to both.</summary>
        public BothFeaturizer(PretrainedKit.Onnx.Proto.ModelProto? graph, string? storeName, ImageView[]? views = null)
        {
            var backbone = KnownBackbones.ResNet18;
            _storeName = storeName ?? _storeName;
            _views = views ?? Views;
            var model = OnnxModelEditor.AddOutputs(OnnxModelEditor.MakeBatchDynamic(graph ?? OnnxModelEditor.Read(backbone.ResolveModelPath())), backbone.Stages.Select(s => s.OutputName));
            using var options = new SessionOptions { IntraOpNumThreads = Environment.ProcessorCount, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            _session = new InferenceSession(OnnxModelEditor.ToBytes(model), options);
            _outputs = [.. backbone.Stages.Select(s => s.OutputName), backbone.OutputName];
        }

        /// <summary>Gets the measured cold speed in backbone runs (images x views) per second.</summary>
        public double ColdImagesPerSecond => _coldSeconds > 0 ? _coldImages / _coldSeconds : 0;

        public static string PngPath(string folder, int index) => Path.Combine(folder, "png", $"{index:D5}.png");

        public Dictionary<int, Features> Featurize(string folder, Dataset data, int[] indices)
        {
            WritePngs(folder, data, indices);
            return Featurize(folder, indices.ToDictionary(i => i, i => PngPath(folder, i)));
        }

        /// <summary>Writes the PNG files of the images that do not have one yet; returns their paths in index order.</summary>
        public static List<string> WritePngs(string folder, Dataset data, IEnumerable<int> indices)
        {
            Directory.CreateDirectory(Path.Combine(folder, "png"));
            var paths = new List<string>();
            foreach (var i in indices)
            {
                if (!File.Exists(PngPath(folder, i)))
                {
                    WritePng(PngPath(folder, i), data, i);
                }

                paths.Add(PngPath(folder, i));
            }

            return paths;
        }

        /// <summary>Featurises image files by key, keeping a store in <paramref name="folder"/>.</summary>
        public Dictionary<int, Features> Featurize(string folder, Dictionary<int, string> files)
        {
            Directory.CreateDirectory(folder);
            var store = Path.Combine(folder, _storeName);
            var result = Load(store, _views);
            var missing = files.Keys.Where(i => !result.ContainsKey(i)).Order().ToArray();
            if (missing.Length == 0)
            {
                return result;
            }

            var backbone = KnownBackbones.ResNet18;
            var gridSize = MultiStagePooling.FeatureSize(backbone.Stages, FeatureLayout.MultiStageGrid);
            var sw = Stopwatch.StartNew();
            for (var start = 0; start < missing.Length; start += Batch)
            {
                var chunk = missing.Skip(start).Take(Batch).ToArray();
                var count = chunk.Length * _views.Length;
                var tensors = new float[count * _preprocess.TensorLength];
                Parallel.For(0, chunk.Length, k =>
                {
                    var path = files[chunk[k]];
                    var rgb = new byte[224 * 224 * 3];
                    var view = new byte[rgb.Length];
                    ImageDecoder.DecodeNormalized(File.ReadAllBytes(path), path, ImagePreprocessingOptions.Default, 224, 224, rgb);
                    for (var v = 0; v < _views.Length; v++)
                    {
                        ImageViews.Apply(_views[v], rgb, view, 224, 224);
                        _preprocess.Preprocess(view, tensors.AsSpan(((k * _views.Length) + v) * _preprocess.TensorLength, _preprocess.TensorLength));
                    }
                });
                using var input = OrtValue.CreateTensorValueFromMemory(tensors, [count, 3, 224, 224]);
                using var runOptions = new RunOptions();
                using var outputs = _session.Run(runOptions, [backbone.InputName], [input], _outputs);
                var stageOutputs = outputs.Take(backbone.Stages.Count).Select(o => o.GetTensorDataAsSpan<float>().ToArray()).ToArray();
                var pooled = outputs[^1].GetTensorDataAsSpan<float>().ToArray();
                var grid = new float[count * gridSize];
                MultiStagePooling.Pool(backbone.Stages, stageOutputs, count, grid, FeatureLayout.MultiStageGrid);
                for (var k = 0; k < chunk.Length; k++)
                {
                    var at = Enumerable.Range(0, _views.Length).Select(v => (k * _views.Length) + v).ToArray();
                    result[chunk[k]] = new Features(
                        at.Select(j => pooled.AsSpan(j * 512, 512).ToArray()).ToArray(),
                        at.Select(j => grid.AsSpan(j * gridSize, gridSize).ToArray()).ToArray());
                }

                if ((start / Batch) % 125 == 124 || start + Batch >= missing.Length)
                {
                    Save(store, result);
                    Console.WriteLine($"  {folder}: {Math.Min(start + Batch, missing.Length)}/{missing.Length} images featurised ({_views.Length} views each), {sw.Elapsed.TotalSeconds:F0} s");
                }
            }

            _coldImages += missing.Length * _views.Length;
            _coldSeconds += sw.Elapsed.TotalSeconds;
            return result;
        }

        /// <summary>Checks that this fast path gives exactly what the library's pipeline computes for the same files and views.</summary>
        public static void VerifyAgainstLibrary(IReadOnlyList<string> paths, IReadOnlyList<int> keys, Dictionary<int, Features> features)
        {
            foreach (var layout in new[] { FeatureLayout.Pooled, FeatureLayout.MultiStage, FeatureLayout.MultiStageGrid })
            {
                using var extractor = new PretrainedKit.Featurization.FeatureExtractor(BackboneRuntime.Open(KnownBackbones.ResNet18, layout, null), ImagePreprocessingOptions.Default);
                var library = extractor.ExtractAsync(paths.Select(PretrainedKit.Featurization.ImageInput.FromFile).ToList(), _ => Views, null, CancellationToken.None).GetAwaiter().GetResult();
                var maxDifference = keys.Select((key, k) => Enumerable.Range(0, Views.Length).Max(v =>
                {
                    var ours = layout switch
                    {
                        FeatureLayout.Pooled => features[key].Pooled[v],
                        FeatureLayout.MultiStage => features[key].MultiStage(v),
                        _ => features[key].Grid[v],
                    };
                    return ours.Zip(library.Views[k]![v], (a, b) => Math.Abs(a - b)).Max();
                })).Max();
                Console.WriteLine($"Check against the library's {layout} features (both views) on {paths.Count} images: max difference {maxDifference:G3}");
                if (maxDifference > 1e-4)
                {
                    throw new InvalidOperationException("The experiment's features differ from the library's.");
                }
            }
        }

        public void Dispose()
        {
            _session.Dispose();
        }

        private static void WritePng(string path, Dataset data, int index)
        {
            using var bitmap = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(data.Cols, data.Rows, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque));
            data.Images.AsSpan(index * data.Rows * data.Cols, data.Rows * data.Cols).CopyTo(bitmap.GetPixelSpan());
            using var encoded = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(path, encoded.ToArray());
        }

        private static Dictionary<int, Features> Load(string path, ImageView[] views)
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
                var pooled = views.Select(_ => ReadFloats(reader)).ToArray();
                var grid = views.Select(_ => ReadFloats(reader)).ToArray();
                result[index] = new Features(pooled, grid);
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
                    foreach (var values in f.Pooled.Concat(f.Grid))
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

    internal sealed record ResultRow(string Method, int PerClass, int Draw, double Accuracy, double HeadSeconds, int FeatureImages, float? ChosenL2 = null);

    internal static class Methods
    {
        public const string Pooled = "pretrained-pooled";
        public const string MultiStage = "pretrained-multistage";
        public const string FromScratch = "scratch-pixels";
        public const string Naive = "naive-mlnet";
        public const string WithLevers = "pretrained-levers";
        public const string WithLeversAuto = "pretrained-levers-auto-l2";
        public const string WithLeversKernel = "pretrained-levers-kernel";

        /// <summary>The levers the evidence recommends for small data: multi-stage grid features, mirror views at training and prediction.</summary>
        public static readonly ImageClassifierOptions LeverOptions = ImageClassifierOptions.Default with
        {
            FeatureLayout = FeatureLayout.MultiStageGrid,
            Augmentation = TrainingAugmentation.Mirror,
            TestTimeAugmentation = TestTimeAugmentation.Mirror,
        };

        /// <summary>PretrainedKit's head with <see cref="LeverOptions"/>: the library's own training (views as extra rows) and prediction (logits averaged over views).</summary>
        public static ResultRow Levers(int n, int d, List<Features> x, List<int> y, List<Features> test, int[] testLabels, int classes, bool autoRegularization = false, HeadKind head = HeadKind.Linear)
        {
            var sw = Stopwatch.StartNew();
            var views = x.Select(f => Levers(f, LeverOptions.Augmentation != TrainingAugmentation.None)).ToList();
            var fit = HeadTrainer.Train(views, y, classes, LeverOptions with { Seed = d, Head = head == HeadKind.Kernel ? KernelHeadOptions.Default : LinearHeadOptions.Default with { AutoRegularization = autoRegularization } }, CancellationToken.None);
            var seconds = sw.Elapsed.TotalSeconds;
            var predicted = new int[test.Count];
            Parallel.For(0, test.Count, i => predicted[i] = ArgMax(ModelDefinition.Softmax(fit.Head.Logits(Levers(test[i], LeverOptions.TestTimeAugmentation != TestTimeAugmentation.None)), 1)));
            var right = predicted.Where((p, i) => p == testLabels[i]).Count();
            var method = head == HeadKind.Kernel ? WithLeversKernel : autoRegularization ? WithLeversAuto : WithLevers;
            return new ResultRow(method, n, d, (double)right / test.Count, seconds, n * classes * (LeverOptions.Augmentation != TrainingAugmentation.None ? 2 : 1), fit.Search?.ChosenL2);
        }

        private static float[][] Levers(Features f, bool mirror) => mirror ? [f.Grid[0], f.Grid[1]] : [f.Grid[0]];

        public static int ArgMax(float[] p) => Array.IndexOf(p, p.Max());

        public static ResultRow OursPooled(int n, int d, List<float[]> x, List<int> y, Dictionary<int, Features> test, int[] testLabels, int classes = 10) =>
            Linear(Pooled, n, d, x, y, test.OrderBy(t => t.Key).Select(t => t.Value.Pooled[0]).ToList(), testLabels, n * classes, classes);

        public static ResultRow OursMultiStage(int n, int d, List<float[]> x, List<int> y, Dictionary<int, Features> test, int[] testLabels, int classes = 10) =>
            Linear(MultiStage, n, d, x, y, test.OrderBy(t => t.Key).Select(t => t.Value.MultiStage(0)).ToList(), testLabels, n * classes, classes);

        public static ResultRow Scratch(int n, int d, List<float[]> x, List<int> y, List<float[]> testPixels, int[] testLabels) =>
            Linear(FromScratch, n, d, x, y, testPixels, testLabels, 0, 10);

        /// <summary>PretrainedKit's head with its default options (standardised features, L2 = 10, balanced weights), seeded per draw.</summary>
        private static ResultRow Linear(string method, int n, int d, List<float[]> x, List<int> y, List<float[]> testX, int[] testLabels, int featureImages, int classes)
        {
            var sw = Stopwatch.StartNew();
            var head = HeadTrainer.Train(x, y, classes, ImageClassifierOptions.Default with { Seed = d }, CancellationToken.None).Head;
            var seconds = sw.Elapsed.TotalSeconds;
            var right = 0;
            for (var i = 0; i < testX.Count; i++)
            {
                var p = ModelDefinition.Softmax(head.Logits(testX[i]), 1);
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
            var testRows = test.OrderBy(t => t.Key).Select((t, i) => new Row { Label = testLabels[i].ToString(CultureInfo.InvariantCulture), Features = t.Value.Pooled[0] });
            var predicted = ml.Data.CreateEnumerable<Output>(model.Transform(ml.Data.LoadFromEnumerable(testRows)), reuseRowObject: false).ToList();
            var right = predicted.Where((p, i) => p.PredictedLabelValue == testLabels[i].ToString(CultureInfo.InvariantCulture)).Count();
            return new ResultRow(Naive, n, d, (double)right / testLabels.Length, seconds, n * 10);
        }
    }
}
