using PretrainedKit.Featurization;
using PretrainedKit.Models;
using PretrainedKit.Tests.Featurization;
using PretrainedKit.Backbones;
using PretrainedKit.Imaging;
using PretrainedKit.Training;
using SkiaSharp;

namespace PretrainedKit.Tests.Training;

/// <summary>Each accuracy lever changes what it should, and nothing is on by default but what is documented.</summary>
public class LeverTests
{
    [Test]
    public void Options_LeverDefaults_AreTheDocumentedOnes()
    {
        var o = ImageClassifierOptions.Default;
        Assert.Multiple(() =>
        {
            Assert.That(o.FeatureLayout, Is.EqualTo(FeatureLayout.Pooled));
            Assert.That(o.Normalization, Is.EqualTo(FeatureNormalization.Standardize));
            Assert.That(o.Augmentation, Is.EqualTo(TrainingAugmentation.None));
            Assert.That(o.TestTimeAugmentation, Is.EqualTo(TestTimeAugmentation.None));
            Assert.That(o.ClassWeighting, Is.EqualTo(ClassWeighting.Balanced));
            Assert.That(o.Head, Is.EqualTo(LinearHeadOptions.Default), "the default head stays a retrained final layer");
            Assert.That(((LinearHeadOptions)o.Head).AutoRegularization, Is.False);
            Assert.That(((LinearHeadOptions)o.Head).L2Regularization, Is.EqualTo(10f));
            Assert.That(Levers.Describe(o, null).All(l => l.IsDefault), Is.True);
        });
    }

    [Test]
    public void Builder_LeverShortcuts_SetTheirOptions()
    {
        var o = ImageClassifier.Create()
            .WithFeatureLayout(FeatureLayout.MultiStageGrid)
            .WithNormalization(FeatureNormalization.L2ThenStandardize)
            .WithAugmentation(TrainingAugmentation.Mirror)
            .WithTestTimeAugmentation(TestTimeAugmentation.Mirror)
            .WithClassWeighting(ClassWeighting.None)
            .WithHead(HeadKind.Kernel)
            .Options;
        Assert.That(o, Is.EqualTo(ImageClassifierOptions.Default with
        {
            FeatureLayout = FeatureLayout.MultiStageGrid,
            Normalization = FeatureNormalization.L2ThenStandardize,
            Augmentation = TrainingAugmentation.Mirror,
            TestTimeAugmentation = TestTimeAugmentation.Mirror,
            ClassWeighting = ClassWeighting.None,
            Head = KernelHeadOptions.Default,
        }));
        // Six levers differ from their defaults; the kernel head has no L2 search, so the regularisation lever cannot be
        // moved together with it (it is checked on the linear head below).
        Assert.That(Levers.Describe(o, null).Where(l => !l.IsDefault).Select(l => l.Name), Is.EqualTo(new[] { "Feature layout", "Normalisation", "Augmentation", "Test-time augmentation", "Head", "Class weighting" }));
        var auto = ImageClassifier.Create().WithAutoRegularization().WithL2Regularization(3).WithMaximumIterations(50).Options;
        Assert.That(auto.Head, Is.EqualTo(new LinearHeadOptions { AutoRegularization = true, L2Regularization = 3, MaximumIterations = 50 }));
        Assert.That(Levers.Describe(auto, null).Single(l => !l.IsDefault).Name, Is.EqualTo("Regularisation"));
    }

    [Test]
    public void Validate_UnknownLeverValues_Throw()
    {
        Assert.That(() => (ImageClassifierOptions.Default with { Augmentation = (TrainingAugmentation)8 }).Validate(), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => (ImageClassifierOptions.Default with { TestTimeAugmentation = (TestTimeAugmentation)5 }).Validate(), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => (ImageClassifierOptions.Default with { Normalization = (FeatureNormalization)9 }).Validate(), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => ImageClassifier.Create().WithHead((HeadKind)4), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => (ImageClassifierOptions.Default with { Head = null! }).Validate(), Throws.TypeOf<ArgumentNullException>());

        // The kernel head with an L2 search cannot be written as options any more; the builder refuses to ask for it.
        Assert.That(
            () => ImageClassifier.Create().WithHead(HeadKind.Kernel).WithAutoRegularization(),
            Throws.TypeOf<InvalidOperationException>().With.Message.Contains("fixed ridge weight").And.Message.Contains("HeadKind.Linear"));
    }

    [Test]
    public void Validate_SeveralProblems_ListsEveryOne()
    {
        var options = ImageClassifierOptions.Default with
        {
            ValidationFraction = 2,
            Augmentation = (TrainingAugmentation)8,
            Head = new LinearHeadOptions { L2Regularization = -1, MaximumIterations = 0 },
        };
        var ex = Assert.Throws<InvalidOptionsException>(options.Validate)!;
        Assert.That(ex.Problems.Select(p => p.ParamName), Is.EquivalentTo(new[] { "ValidationFraction", "Augmentation", "L2Regularization", "MaximumIterations" }));
        Assert.That(ex.Message, Does.Contain("4 options are invalid").And.Contain("L2 regularisation").And.Contain("validation fraction"));
    }

    [Test]
    public void KernelHead_LearnsWhatNoLinearHeadCan()
    {
        // XOR of the signs of two features (plus noise features): no hyperplane separates the classes.
        var random = new Random(21);
        var features = new List<float[]>();
        var labels = new List<int>();
        for (var i = 0; i < 400; i++)
        {
            var f = Enumerable.Range(0, 8).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
            features.Add(f);
            labels.Add((f[0] > 0) ^ (f[1] > 0) ? 1 : 0);
        }

        double Accuracy(HeadDefinition head) => features.Where((f, i) => head.Probabilities(f)[labels[i]] > 0.5f).Count() / (double)features.Count;
        var linear = HeadTrainer.Train(features, labels, 2, ImageClassifierOptions.Default, CancellationToken.None).Head;
        var kernel = HeadTrainer.Train(features, labels, 2, ImageClassifierOptions.Default with { Head = KernelHeadOptions.Default }, CancellationToken.None).Head;
        var again = HeadTrainer.Train(features, labels, 2, ImageClassifierOptions.Default with { Head = KernelHeadOptions.Default }, CancellationToken.None).Head;

        // Fresh points from the same distribution: the kernel head generalises, not just remembers its centres.
        var fresh = Enumerable.Range(0, 200).Select(_ => Enumerable.Range(0, 8).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray()).ToList();
        var freshRight = fresh.Count(f => (kernel.Probabilities(f)[1] > 0.5f) == ((f[0] > 0) ^ (f[1] > 0))) / (double)fresh.Count;
        Assert.Multiple(() =>
        {
            Assert.That(linear, Is.TypeOf<LinearHeadDefinition>());
            Assert.That(((KernelHeadDefinition)kernel).Centres, Has.Length.EqualTo(features.Count), "every training row is a centre");
            Assert.That(Accuracy(linear), Is.LessThan(0.7), "a linear head cannot do XOR");
            Assert.That(Accuracy(kernel), Is.GreaterThan(0.9), "a kernel head can");
            Assert.That(freshRight, Is.GreaterThan(0.8), "and it generalises to unseen points");
            Assert.That(again.Weights, Is.EqualTo(kernel.Weights), "same data, same weights");
        });
    }

    [Test]
    public void Mirror_FlipsLeftAndRight_AndTwiceIsTheOriginal()
    {
        const int W = 5, H = 3;
        var source = Enumerable.Range(0, W * H * 3).Select(i => (byte)i).ToArray();
        var once = new byte[source.Length];
        var twice = new byte[source.Length];
        ImageViews.Apply(ImageView.Mirror, source, once, W, H);
        ImageViews.Apply(ImageView.Mirror, once, twice, W, H);
        Assert.That(twice, Is.EqualTo(source));
        Assert.That(once.AsSpan(0, 3).ToArray(), Is.EqualTo(source.AsSpan((W - 1) * 3, 3).ToArray()), "the first pixel of a row is the last one of the source");
        Assert.That(once, Is.Not.EqualTo(source));
    }

    [Test]
    public void Crops_KeepAUniformImage_AndShowTheirOwnCorner()
    {
        const int S = 64;
        var uniform = Enumerable.Repeat((byte)77, S * S * 3).ToArray();
        var target = new byte[uniform.Length];
        foreach (var crop in ImageViews.Crops)
        {
            ImageViews.Apply(crop, uniform, target, S, S);
            Assert.That(target.Distinct(), Is.EqualTo(new byte[] { 77 }), $"{crop} of a uniform image");
        }

        // Left half black, right half white: the top-left crop shows more black than the top-right crop.
        var halves = new byte[S * S * 3];
        for (var p = 0; p < S * S; p++)
        {
            halves.AsSpan(p * 3, 3).Fill(p % S < S / 2 ? (byte)0 : (byte)255);
        }

        double Mean(ImageView view)
        {
            ImageViews.Apply(view, halves, target, S, S);
            return target.Average(b => (double)b);
        }

        Assert.That(Mean(ImageView.CropTopLeft), Is.LessThan(Mean(ImageView.Original)));
        Assert.That(Mean(ImageView.CropTopRight), Is.GreaterThan(Mean(ImageView.Original)));
        Assert.That(Mean(ImageView.CropBottomLeft), Is.EqualTo(Mean(ImageView.CropTopLeft)));
    }

    [Test]
    public async Task Pipeline_MirrorView_EqualsTheFeaturesOfTheMirroredFile()
    {
        var (original, flipped) = await WritePatternAndMirrorImage(224);
        using var session = TestSession.Open(KnownBackbones.ResNet18);
        var result = await TestSession.RunAsync(session, [original, flipped], ImagePreprocessingOptions.Default, null, CancellationToken.None, viewsOf: i => i == 0 ? [ImageView.Original, ImageView.Mirror] : [ImageView.Original]);
        Assert.That(result.Views[0], Has.Length.EqualTo(2));
        Assert.That(result.Views[1], Has.Length.EqualTo(1));
        Assert.That(result.Views[0]![1], Is.EqualTo(result.Views[1]![0]).Within(1e-4f), "the mirror view is the mirrored image");
        Assert.That(result.Views[0]![1], Is.Not.EqualTo(result.Views[0]![0]).Within(1e-4f), "and differs from the original");
    }

    [Test]
    public void MultiStageGrid_StartsWithTheMultiStageFeatures_ThenUnitNormQuadrants()
    {
        using var multiStage = TestSession.Open(KnownBackbones.ResNet18, null, FeatureLayout.MultiStage);
        using var grid = TestSession.Open(KnownBackbones.ResNet18, null, FeatureLayout.MultiStageGrid);
        Assert.That(grid.FeatureSize, Is.EqualTo(1792 + (4 * (256 + 512))));
        var random = new Random(8);
        var tensor = Enumerable.Range(0, grid.TensorLength).Select(_ => (float)((random.NextDouble() * 255) - 120)).ToArray();
        var a = new float[multiStage.FeatureSize];
        var b = new float[grid.FeatureSize];
        multiStage.Run(tensor, a);
        grid.Run(tensor, b);
        Assert.That(b[..a.Length], Is.EqualTo(a));
        var offset = a.Length;
        foreach (var stage in KnownBackbones.ResNet18.Stages.Skip(1))
        {
            var quadrants = Enumerable.Range(0, 4).Select(q => b.AsSpan(offset + (q * stage.Channels), stage.Channels).ToArray()).ToList();
            Assert.That(quadrants.Select(v => v.Sum(x => (double)x * x)), Is.All.EqualTo(1).Within(1e-4), $"{stage.OutputName} quadrants have unit norm");
            Assert.That(quadrants[0], Is.Not.EqualTo(quadrants[3]), "quadrants see different places");
            offset += 4 * stage.Channels;
        }
    }

    [Test]
    public void L2ThenStandardize_IgnoresTheFeatureVectorsScale()
    {
        var (features, labels) = Synthetic(60, 3, 8, 11);
        var options = ImageClassifierOptions.Default with { Normalization = FeatureNormalization.L2ThenStandardize };
        var normalized = HeadTrainer.Train(features, labels, 3, options, CancellationToken.None).Head;
        var standardized = HeadTrainer.Train(features, labels, 3, ImageClassifierOptions.Default, CancellationToken.None).Head;
        var x = features[0];
        var tripled = x.Select(v => v * 3).ToArray();
        Assert.That(normalized.Scaling.NormalizeL2, Is.True);
        Assert.That(normalized.Probabilities(tripled), Is.EqualTo(normalized.Probabilities(x)).Within(1e-5f));
        Assert.That(standardized.Probabilities(tripled), Is.Not.EqualTo(standardized.Probabilities(x)).Within(1e-3f));
    }

    [Test]
    public void NoNormalization_KeepsTheFeaturesAsTheyAre()
    {
        var (features, labels) = Synthetic(60, 3, 8, 12);
        var head = HeadTrainer.Train(features, labels, 3, ImageClassifierOptions.Default with { Normalization = FeatureNormalization.None }, CancellationToken.None).Head;
        Assert.That(head.Scaling.Mean, Is.All.EqualTo(0f));
        Assert.That(head.Scaling.Scale, Is.All.EqualTo(1f));
        Assert.That(head.Scaling.Apply(features[0]), Is.EqualTo(features[0]));
    }

    [Test]
    public void HeadTrainer_AugmentedViews_AreExtraTrainingRows()
    {
        var (features, labels) = Synthetic(30, 3, 6, 13);
        var single = HeadTrainer.Train(features, labels, 3, ImageClassifierOptions.Default, CancellationToken.None).Head;
        var doubled = HeadTrainer.Train(features.Select(f => new[] { f, f }).ToList(), labels, 3, ImageClassifierOptions.Default, CancellationToken.None).Head;
        var shifted = HeadTrainer.Train(features.Select(f => new[] { f, f.Select(v => v + 0.5f).ToArray() }).ToList(), labels, 3, ImageClassifierOptions.Default, CancellationToken.None).Head;

        // Two identical views weigh like one image counted twice: the penalty counts half as much, so the weights grow.
        Assert.That(Norm(doubled), Is.GreaterThan(Norm(single)));
        Assert.That(shifted.Scaling.Mean, Is.Not.EqualTo(single.Scaling.Mean), "the second view's features enter the standardisation");
        static double Norm(HeadDefinition h) => h.Weights.Sum(r => r.Sum(w => (double)w * w));
    }

    [Test]
    public void AutoRegularization_ChoosesByCrossValidation_WithTheOneStandardErrorRule()
    {
        var (features, labels) = Synthetic(90, 3, 20, 14, overlap: 1.2);
        var fit = HeadTrainer.Train(features, labels, 3, ImageClassifierOptions.Default with { Head = LinearHeadOptions.Default with { AutoRegularization = true } }, CancellationToken.None);
        var search = fit.Search!;
        Assert.That(search.SkippedBecause, Is.Null);
        Assert.That(search.Candidates.Select(c => c.L2), Is.EqualTo(RegularizationSearch.DefaultCandidates));
        Assert.That(search.Folds, Is.EqualTo(5));
        Assert.That(search.Repetitions, Is.EqualTo(3), "few images: the folds are drawn three times");
        var best = search.Candidates.MinBy(c => c.MeanLogLoss)!;
        Assert.That(search.BestL2, Is.EqualTo(best.L2));
        Assert.That(search.ChosenL2, Is.GreaterThanOrEqualTo(best.L2));
        var chosen = search.Candidates.Single(c => c.L2 == search.ChosenL2);
        Assert.That(chosen.MeanLogLoss, Is.LessThanOrEqualTo(best.MeanLogLoss + best.StandardError));
        Assert.That(search.Candidates.Where(c => c.L2 > chosen.L2), Is.All.Matches<RegularizationCandidate>(c => c.MeanLogLoss > best.MeanLogLoss + best.StandardError), "the strongest penalty within one standard error");

        var given = HeadTrainer.Train(features, labels, 3, ImageClassifierOptions.Default with { Head = LinearHeadOptions.Default with { L2Regularization = search.ChosenL2 } }, CancellationToken.None).Head;
        Assert.That(fit.Head.Weights, Is.EqualTo(given.Weights), "the final layer is trained with the chosen weight");
    }

    [Test]
    public void AutoRegularization_TooFewImagesPerClass_KeepsTheGivenWeightAndSaysWhy()
    {
        var (features, labels) = Synthetic(6, 3, 4, 15);
        var search = HeadTrainer.Train(features, labels, 3, ImageClassifierOptions.Default with { Head = LinearHeadOptions.Default with { AutoRegularization = true, L2Regularization = 7 } }, CancellationToken.None).Search!;
        Assert.That(search.ChosenL2, Is.EqualTo(7f));
        Assert.That(search.Candidates, Is.Empty);
        Assert.That(search.SkippedBecause, Does.Contain("only 2 training images"));
    }

    [Test]
    public async Task Train_WithLevers_FeaturisesTheExtraViews_ReportsThem_AndRoundTrips()
    {
        var data = SmallDataset.Create(5);
        var totals = new List<int>();
        using var model = await ImageClassifier.Create().FromFolder(data)
            .WithOptions(ImageClassifierOptions.Default with
            {
                ValidationFraction = 0.2,
                Augmentation = TrainingAugmentation.Mirror | TrainingAugmentation.Crops,
                TestTimeAugmentation = TestTimeAugmentation.Mirror,
                Normalization = FeatureNormalization.L2ThenStandardize,
                FeatureCache = PretrainedKit.Caching.FeatureCacheOptions.Disabled,
            })
            .TrainAsync(new SyncProgress(p =>
            {
                if (p.Phase == TrainingPhase.Featurizing)
                {
                    totals.Add(p.Total);
                }
            }));

        // 3 classes x 5 images: 4 per class train with 6 views each, 1 per class validates with 2 views.
        Assert.That(totals.Distinct(), Is.EqualTo(new[] { (12 * 6) + (3 * 2) }));
        var levers = model.TrainingReport!.Levers.ToDictionary(l => l.Name);
        Assert.That(levers["Augmentation"].Setting, Is.EqualTo("Mirror, Crops"));
        Assert.That(levers["Augmentation"].Detail, Does.Contain("6 backbone views"));
        Assert.That(levers["Test-time augmentation"].IsDefault, Is.False);
        Assert.That(levers["Normalisation"].Setting, Is.EqualTo("L2ThenStandardize"));
        Assert.That(levers["Class weighting"].IsDefault, Is.True);

        var path = Path.Combine(TestPaths.NewTempFolder(), "levers.pkmodel");
        model.Save(path);
        using var loaded = ImageClassifier.Load(path);
        Assert.That(loaded.TestTimeAugmentation, Is.EqualTo(TestTimeAugmentation.Mirror));
        Assert.That(loaded.Normalization, Is.EqualTo(FeatureNormalization.L2ThenStandardize));
        var image = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories)[0];
        Assert.That(loaded.Predict(image).Probabilities, Is.EqualTo(model.Predict(image).Probabilities));
        AssertOnnxExportMatchesPredict(model, Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(4).ToList());
    }

    [Test]
    public async Task KernelHead_Trains_RoundTripsAsFormat3_AndExportsToOnnx()
    {
        var data = SmallDataset.Create(4);
        using var model = await ImageClassifier.Create().FromFolder(data)
            .WithOptions(ImageClassifierOptions.Default with { Head = KernelHeadOptions.Default, FeatureCache = PretrainedKit.Caching.FeatureCacheOptions.Disabled })
            .TrainAsync();
        Assert.That(model.HeadKind, Is.EqualTo(HeadKind.Kernel));
        var lever = model.TrainingReport!.Levers.Single(l => l.Name == "Head");
        Assert.That(lever.Setting, Is.EqualTo("Kernel"));
        Assert.That(lever.IsDefault, Is.False);

        var path = Path.Combine(TestPaths.NewTempFolder(), "kernel.pkmodel");
        model.Save(path);
        using (var zip = System.IO.Compression.ZipFile.OpenRead(path))
        using (var reader = new StreamReader(zip.GetEntry("manifest.json")!.Open()))
        {
            var manifest = reader.ReadToEnd();
            Assert.That(manifest, Does.Contain("\"formatVersion\": 3"));
            Assert.That(manifest, Does.Contain("rbf-kernel-ridge"));
        }

        using var loaded = ImageClassifier.Load(path);
        Assert.That(loaded.HeadKind, Is.EqualTo(HeadKind.Kernel));
        var images = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(6).ToList();
        var expected = model.PredictBatch(images).Predictions().SelectMany(p => p.Probabilities).ToArray();
        Assert.That(loaded.PredictBatch(images).Predictions().SelectMany(p => p.Probabilities), Is.EqualTo(expected));

        AssertOnnxExportMatchesPredict(model, images);
    }

    [Test]
    public async Task ExportOnnx_L2Normalised_MatchesPredict()
    {
        var data = SmallDataset.Create(4);
        using var model = await ImageClassifier.Create().FromFolder(data)
            .WithOptions(ImageClassifierOptions.Default with { Normalization = FeatureNormalization.L2ThenStandardize, FeatureCache = PretrainedKit.Caching.FeatureCacheOptions.Disabled })
            .TrainAsync();
        AssertOnnxExportMatchesPredict(model, Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(6).ToList());
    }

    /// <summary>Exports the model and checks that ONNX Runtime gives PredictBatch's probabilities to within 1e-4.</summary>
    private static void AssertOnnxExportMatchesPredict(ImageClassifierModel model, List<string> images)
    {
        var onnx = Path.Combine(TestPaths.NewTempFolder(), "model.onnx");
        model.ExportOnnx(onnx);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(onnx);
        var actual = PretrainedKit.Tests.Onnx.OnnxExportTests.Run(session, images, model.ImageOptions);
        var expected = model.PredictBatch(images).Predictions().SelectMany(p => p.Probabilities).ToArray();
        Assert.That(actual, Is.EqualTo(expected).Within(1e-4f));
    }

    [Test]
    public async Task TestTimeMirror_MakesAnImageAndItsMirrorImagePredictTheSame()
    {
        var data = SmallDataset.Create(4);
        var (original, flipped) = await WritePatternAndMirrorImage(96);
        var options = ImageClassifierOptions.Default with { FeatureCache = PretrainedKit.Caching.FeatureCacheOptions.Disabled, Calibrate = false };

        using var plain = await ImageClassifier.Create().FromFolder(data).WithOptions(options).TrainAsync();
        using var tta = await ImageClassifier.Create().FromFolder(data).WithOptions(options with { TestTimeAugmentation = TestTimeAugmentation.Mirror }).TrainAsync();
        Assert.That(tta.Predict(flipped).Probabilities, Is.EqualTo(tta.Predict(original).Probabilities).Within(1e-5f));
        Assert.That(plain.Predict(flipped).Probabilities, Is.Not.EqualTo(plain.Predict(original).Probabilities).Within(1e-5f));
        Assert.That(tta.PredictBatch([original, flipped]).Predictions().Select(p => p.Probabilities), Is.EqualTo(new[] { tta.Predict(original).Probabilities, tta.Predict(flipped).Probabilities }).Within(1e-5f), "batch equals single");
    }

    /// <summary>Writes an asymmetric square pattern and its left-right mirror image as PNG files.</summary>
    private static async Task<(string Original, string Flipped)> WritePatternAndMirrorImage(int size)
    {
        var folder = TestPaths.NewTempFolder();
        using var pattern = TestImages.Pattern(size, size);
        using var mirrored = TestImages.Bitmap(size, size, (x, y) => pattern.GetPixel(size - 1 - x, y));
        var original = Path.Combine(folder, "pattern.png");
        var flipped = Path.Combine(folder, "flipped.png");
        await File.WriteAllBytesAsync(original, TestImages.Png(pattern));
        await File.WriteAllBytesAsync(flipped, TestImages.Png(mirrored));
        return (original, flipped);
    }

    private static (List<float[]> Features, List<int> Labels) Synthetic(int n, int classes, int dimension, int seed, double overlap = 0.5)
    {
        var random = new Random(seed);
        var features = new List<float[]>();
        var labels = new List<int>();
        for (var c = 0; c < classes; c++)
        {
            for (var i = 0; i < n / classes; i++)
            {
                var f = new float[dimension];
                for (var j = 0; j < dimension; j++)
                {
                    f[j] = (float)(((j % classes) == c ? 1.0 : 0.0) + (overlap * ((random.NextDouble() * 2) - 1)) + 0.2);
                }

                features.Add(f);
                labels.Add(c);
            }
        }

        return (features, labels);
    }

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
