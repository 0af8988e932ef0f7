using PretrainedKit.Backbones;
using PretrainedKit.Imaging;
using PretrainedKit.Models;
using PretrainedKit.Reporting;
using PretrainedKit.Serialization;
using PretrainedKit.Training;
using SkiaSharp;

namespace PretrainedKit.Tests.Training;

/// <summary>
/// Automatic lever choice (issue #14): the search sees only training images, keeps what the user set, is deterministic
/// for a seed, and everything it can choose saves, loads and stays small.
/// </summary>
public class AutoLeverTests
{
    private static readonly IReadOnlyList<BackboneStage> Stages = KnownBackbones.ResNet18.Stages;
    private static readonly int GridSize = MultiStagePooling.FeatureSize(Stages, FeatureLayout.MultiStageGrid);

    [Test]
    public void Options_ExplicitLevers_AreThoseSetEvenToTheirDefault()
    {
        Assert.Multiple(() =>
        {
            Assert.That(ImageClassifierOptions.Default.ExplicitLevers, Is.EqualTo(AutoLevers.None));
            Assert.That(ImageClassifierOptions.Default.Auto, Is.True, "automatic choice is the default");
            Assert.That((ImageClassifierOptions.Default with { Seed = 3, Strict = true }).ExplicitLevers, Is.EqualTo(AutoLevers.None));
            Assert.That((ImageClassifierOptions.Default with { FeatureLayout = FeatureLayout.Pooled }).ExplicitLevers, Is.EqualTo(AutoLevers.FeatureLayout), "set to the default value, still kept fixed");
            Assert.That(new ImageClassifierOptions { Head = KernelHeadOptions.Default, TestTimeAugmentation = TestTimeAugmentation.None }.ExplicitLevers, Is.EqualTo(AutoLevers.Head | AutoLevers.TestTimeAugmentation));
            Assert.That(ImageClassifier.Create().WithAugmentation(TrainingAugmentation.Mirror).WithNormalization(FeatureNormalization.Standardize).Options.ExplicitLevers, Is.EqualTo(AutoLevers.Augmentation | AutoLevers.Normalization));
            Assert.That(ImageClassifier.Create().WithAutoRegularization().Options.ExplicitLevers, Is.EqualTo(AutoLevers.Head), "a linear-head setting fixes the head");
        });
    }

    [Test]
    public void Options_ClosedFormHeads_RejectOutOfRangeSettings()
    {
        var ex = Assert.Throws<InvalidOptionsException>(() => (ImageClassifierOptions.Default with { Head = new KernelHeadOptions { Ridge = 0, MaxCentres = 1 } }).Validate());
        Assert.That(ex!.Problems.Select(p => p.ParamName), Is.EqualTo(new[] { "Ridge", "MaxCentres" }));
        Assert.That(() => (ImageClassifierOptions.Default with { Head = new RidgeHeadOptions { Ridge = double.PositiveInfinity } }).Validate(), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("ridge head"));
    }

    [Test]
    public void Space_FixedLevers_AreNotSearched()
    {
        var free = LeverSearch.SpaceFor(ImageClassifierOptions.Default, backboneHasStages: true);
        Assert.Multiple(() =>
        {
            Assert.That(free.Searched, Is.EqualTo(AutoLevers.FeatureLayout | AutoLevers.Augmentation | AutoLevers.TestTimeAugmentation | AutoLevers.Head), "normalisation is searched only for pooled features");
            Assert.That(free.Layouts, Is.EqualTo(new[] { FeatureLayout.MultiStage, FeatureLayout.MultiStageGrid }));
            Assert.That(free.FeaturizeLayout, Is.EqualTo(FeatureLayout.MultiStageGrid));
            Assert.That(free.NeedsMirror, Is.True);
        });

        var head = LinearHeadOptions.Default with { L2Regularization = 3 };
        var fixedOptions = ImageClassifierOptions.Default with { FeatureLayout = FeatureLayout.Pooled, Head = head, Augmentation = TrainingAugmentation.None };
        var space = LeverSearch.SpaceFor(fixedOptions, backboneHasStages: true);
        Assert.Multiple(() =>
        {
            Assert.That(space.Fixed, Is.EqualTo(AutoLevers.FeatureLayout | AutoLevers.Head | AutoLevers.Augmentation));
            Assert.That(space.Layouts, Is.EqualTo(new[] { FeatureLayout.Pooled }));
            Assert.That(space.Heads, Is.EqualTo(new HeadOptions[] { head }));
            Assert.That(space.Augmentations, Is.EqualTo(new[] { TrainingAugmentation.None }));
            Assert.That(space.Normalizations, Has.Count.EqualTo(2), "pooled features: normalisation is a candidate");
            Assert.That(space.Searched, Is.EqualTo(AutoLevers.Normalization | AutoLevers.TestTimeAugmentation));
        });

        var single = LeverSearch.SpaceFor(ImageClassifierOptions.Default with { SingleViewPrediction = true }, backboneHasStages: true);
        Assert.That(single.TestTimeAugmentations, Is.EqualTo(new[] { TestTimeAugmentation.None }));
    }

    [Test]
    public void Search_SameInputsAndSeed_GiveTheSameScoresAndChoice_AndEveryCandidateIsScored()
    {
        var (views, labels) = Synthetic(classes: 3, perClass: 12, seed: 5);
        var space = LeverSearch.SpaceFor(ImageClassifierOptions.Default, backboneHasStages: true);
        var first = LeverSearch.Run(views, labels, 3, space, Stages, ClassWeighting.Balanced, seed: 7, null, CancellationToken.None);
        var second = LeverSearch.Run(views, labels, 3, space, Stages, ClassWeighting.Balanced, seed: 7, null, CancellationToken.None);
        Assert.Multiple(() =>
        {
            // 2 layouts x 2 augmentations x 6 heads x 2 prediction view sets.
            Assert.That(first.Candidates, Has.Count.EqualTo(48));
            Assert.That(first.Candidates.Select(c => c.MeanLogLoss), Is.EqualTo(second.Candidates.Select(c => c.MeanLogLoss)));
            Assert.That(first.Chosen, Is.EqualTo(second.Chosen));
            Assert.That(first.Candidates.All(c => double.IsFinite(c.MeanLogLoss) && c.StandardError >= 0 && c.Accuracy is >= 0 and <= 1), Is.True);
            Assert.That(first.Best!.MeanLogLoss, Is.EqualTo(first.Candidates.Min(c => c.MeanLogLoss)));
            Assert.That(first.Chosen!.MeanLogLoss, Is.GreaterThanOrEqualTo(first.Best.MeanLogLoss));
            Assert.That(first.Candidates[0].Accuracy, Is.GreaterThan(0.9), "the clusters are separable: the best candidate classifies the held-out folds");
            Assert.That(first.ImagesUsed, Is.EqualTo(36));
            Assert.That(first.Folds, Is.EqualTo(5));
            Assert.That(first.Repetitions, Is.EqualTo(4));
            Assert.That(first.Reason, Is.Not.Empty);
        });
    }

    [Test]
    public void Search_ManyImages_CrossValidatesABoundedStratifiedSubset_WithThreeFoldsAboveFiveHundred()
    {
        // One candidate family (levers fixed) keeps this fast; the subset and fold rule do not depend on the candidates.
        var options = ImageClassifierOptions.Default with { FeatureLayout = FeatureLayout.MultiStage, Augmentation = TrainingAugmentation.None, TestTimeAugmentation = TestTimeAugmentation.None, Head = new RidgeHeadOptions() };
        var space = LeverSearch.SpaceFor(options, backboneHasStages: true);
        var (views, labels) = Synthetic(classes: 3, perClass: 450, seed: 9, mirror: false);
        var large = LeverSearch.Run(views, labels, 3, space, Stages, ClassWeighting.Balanced, seed: 2, null, CancellationToken.None);
        var (fewViews, fewLabels) = Synthetic(classes: 3, perClass: 160, seed: 9, mirror: false);
        var small = LeverSearch.Run(fewViews, fewLabels, 3, space, Stages, ClassWeighting.Balanced, seed: 2, null, CancellationToken.None);
        Assert.Multiple(() =>
        {
            Assert.That(large.ImagesUsed, Is.EqualTo(LeverSearch.MaxImages).Within(3), "1,350 images: a class-stratified subset of about MaxImages");
            Assert.That(large.Folds, Is.EqualTo(3), "above FiveFoldImages: three folds");
            Assert.That(large.Repetitions, Is.EqualTo(1));
            Assert.That(small.ImagesUsed, Is.EqualTo(480), "up to MaxImages every image is used");
            Assert.That(small.Folds, Is.EqualTo(5));
        });
    }

    [Test]
    public void Search_FewerThanThreeImagesInAClass_IsSkippedWithTheReason()
    {
        var (views, labels) = Synthetic(classes: 2, perClass: 6, seed: 1);
        var report = LeverSearch.Run(views.Take(8).ToList(), labels.Take(8).ToList(), 2, LeverSearch.SpaceFor(ImageClassifierOptions.Default, true), Stages, ClassWeighting.Balanced, 1, null, CancellationToken.None);
        Assert.Multiple(() =>
        {
            Assert.That(report.Skipped, Is.True);
            Assert.That(report.Candidates, Is.Empty);
            Assert.That(report.Reason, Does.Contain("only 2 training images"));
        });
    }

    [Test]
    public void Search_IsCancellable()
    {
        var (views, labels) = Synthetic(classes: 3, perClass: 12, seed: 5);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.That(
            () => LeverSearch.Run(views, labels, 3, LeverSearch.SpaceFor(ImageClassifierOptions.Default, true), Stages, ClassWeighting.Balanced, 1, null, cancelled.Token),
            Throws.InstanceOf<OperationCanceledException>());
    }

    [Test]
    public async Task Train_Auto_DecidesOnTrainingImagesOnly_NotOnTheValidationImages()
    {
        var train = SmallDataset.Create(6);
        var validationA = SmallDataset.Create(3);
        var validationB = TestPaths.NewTempFolder("validation-b");
        TestImages.WriteClass(validationB, "red", 3, new SKColor(120, 60, 200), 21); // Colours that would fool a search that looked at them.
        TestImages.WriteClass(validationB, "green", 3, new SKColor(200, 30, 30), 22);
        TestImages.WriteClass(validationB, "blue", 3, new SKColor(30, 180, 40), 23);
        using var a = await ImageClassifier.Create().FromFolder(train).WithValidationFolder(validationA).WithFeatureCacheDirectory(TestPaths.NewTempFolder("cache")).TrainAsync();
        using var b = await ImageClassifier.Create().FromFolder(train).WithValidationFolder(validationB).WithFeatureCacheDirectory(TestPaths.NewTempFolder("cache")).TrainAsync();
        var searchA = a.TrainingReport!.LeverSearch!;
        var searchB = b.TrainingReport!.LeverSearch!;
        Assert.Multiple(() =>
        {
            Assert.That(searchA.ImagesUsed, Is.EqualTo(18), "all training images, no validation image");
            Assert.That(searchA.Candidates.Select(c => c.MeanLogLoss), Is.EqualTo(searchB.Candidates.Select(c => c.MeanLogLoss)), "other validation images, the same scores");
            Assert.That(searchA.Chosen, Is.EqualTo(searchB.Chosen));
            Assert.That(a.TrainingReport.PhaseDurations.ContainsKey(TrainingPhase.SearchingLevers), Is.True);
        });
    }

    [Test]
    public async Task Train_ExplicitSettings_AreNeverOverridden()
    {
        var data = SmallDataset.Create(6);
        using var model = await ImageClassifier.Create().FromFolder(data)
            .WithFeatureLayout(FeatureLayout.Pooled)
            .WithTestTimeAugmentation(TestTimeAugmentation.Mirror)
            .WithHead(HeadKind.Linear)
            .WithFeatureCacheDirectory(TestPaths.NewTempFolder("cache"))
            .TrainAsync();
        var report = model.TrainingReport!;
        var search = report.LeverSearch!;
        Assert.Multiple(() =>
        {
            Assert.That(model.FeatureLayout, Is.EqualTo(FeatureLayout.Pooled));
            Assert.That(model.TestTimeAugmentation, Is.EqualTo(TestTimeAugmentation.Mirror));
            Assert.That(report.Options.Head, Is.EqualTo(LinearHeadOptions.Default), "the L-BFGS linear head the user asked for");
            Assert.That(search.Fixed, Is.EqualTo(AutoLevers.FeatureLayout | AutoLevers.TestTimeAugmentation | AutoLevers.Head));
            Assert.That(search.Candidates.All(c => c.FeatureLayout == FeatureLayout.Pooled && c.TestTimeAugmentation == TestTimeAugmentation.Mirror && c.Head == LinearHeadOptions.Default), Is.True);
            Assert.That(search.Searched, Is.EqualTo(AutoLevers.Normalization | AutoLevers.Augmentation));
        });
    }

    [Test]
    public async Task Train_AutoOff_GivesThePlainDefault()
    {
        using var model = await ImageClassifier.Create().FromFolder(SmallDataset.Create(6)).WithAutomaticLevers(false).WithFeatureCacheDirectory(TestPaths.NewTempFolder("cache")).TrainAsync();
        Assert.Multiple(() =>
        {
            Assert.That(model.TrainingReport!.LeverSearch, Is.Null);
            Assert.That(model.FeatureLayout, Is.EqualTo(FeatureLayout.Pooled));
            Assert.That(model.TestTimeAugmentation, Is.EqualTo(TestTimeAugmentation.None));
            Assert.That(model.TrainingReport.Options.Head, Is.EqualTo(LinearHeadOptions.Default));
        });
    }

    [Test]
    public async Task Train_SingleViewPrediction_NeverChoosesTwoViewsPerPrediction()
    {
        using var model = await ImageClassifier.Create().FromFolder(SmallDataset.Create(6)).WithSingleViewPrediction().WithFeatureCacheDirectory(TestPaths.NewTempFolder("cache")).TrainAsync();
        Assert.Multiple(() =>
        {
            Assert.That(model.TestTimeAugmentation, Is.EqualTo(TestTimeAugmentation.None));
            Assert.That(model.TrainingReport!.LeverSearch!.Candidates.All(c => c.TestTimeAugmentation == TestTimeAugmentation.None), Is.True);
        });
    }

    [Test]
    public async Task Train_SameSeed_SameChoice_AndTheChosenModelRoundTrips()
    {
        var data = SmallDataset.Create(6);
        var cache = TestPaths.NewTempFolder("cache");
        using var first = await ImageClassifier.Create().FromFolder(data).WithSeed(4).WithFeatureCacheDirectory(cache).TrainAsync();
        using var second = await ImageClassifier.Create().FromFolder(data).WithSeed(4).WithFeatureCacheDirectory(cache).TrainAsync();
        Assert.That(second.TrainingReport!.LeverSearch!.Chosen, Is.EqualTo(first.TrainingReport!.LeverSearch!.Chosen));
        AssertRoundTrip(first, data);

        // The HTML report lists every candidate and marks the chosen one.
        var html = Path.Combine(TestPaths.NewTempFolder("report"), "report.html");
        await first.WriteHtmlReportAsync(data, html);
        var text = await File.ReadAllTextAsync(html);
        var search = first.TrainingReport.LeverSearch!;
        Assert.Multiple(() =>
        {
            Assert.That(text, Does.Contain("id=\"lever-choice\""));
            Assert.That(System.Text.RegularExpressions.Regex.Count(text, "<tr class=\"chosen\">"), Is.EqualTo(1));
            Assert.That(System.Text.RegularExpressions.Regex.Count(text, "<tr( class=\"chosen\")?><td>(chosen)?</td><td>"), Is.EqualTo(search.Candidates.Count));
            Assert.That(text, Does.Contain(System.Net.WebUtility.HtmlEncode(search.Chosen!.Description)));
        });
    }

    /// <summary>Every configuration automatic choice can pick, set explicitly, saves and loads to the same predictions.</summary>
    [TestCase(FeatureLayout.MultiStage, TrainingAugmentation.None, TestTimeAugmentation.None, HeadKind.Linear)]
    [TestCase(FeatureLayout.MultiStageGrid, TrainingAugmentation.Mirror, TestTimeAugmentation.Mirror, HeadKind.Kernel)]
    [TestCase(FeatureLayout.MultiStageGrid, TrainingAugmentation.None, TestTimeAugmentation.Mirror, HeadKind.Linear)]
    [TestCase(FeatureLayout.MultiStage, TrainingAugmentation.Mirror, TestTimeAugmentation.None, HeadKind.Kernel)]
    public async Task EveryChoosableConfiguration_RoundTripsThroughSaveAndLoad(FeatureLayout layout, TrainingAugmentation augmentation, TestTimeAugmentation testTime, HeadKind head)
    {
        var data = SmallDataset.Create(6);
        using var model = await ImageClassifier.Create().FromFolder(data)
            .WithOptions(ImageClassifierOptions.Default with
            {
                FeatureLayout = layout,
                Augmentation = augmentation,
                TestTimeAugmentation = testTime,
                Head = head == HeadKind.Kernel ? KernelHeadOptions.Default with { Ridge = 0.1 } : RidgeHeadOptions.Default with { Ridge = 10 },
            })
            .WithFeatureCacheDirectory(TestPaths.NewTempFolder("cache"))
            .TrainAsync();
        Assert.That(model.TrainingReport!.LeverSearch, Is.Null, "every lever set: nothing to search");
        AssertRoundTrip(model, data);
    }

    [Test]
    public void KernelHead_2000ImagesOf10Classes_ModelFileStaysUnder20MB_AndKeepsItsAccuracy()
    {
        // 2,000 images x 2 views of grid features (4,864 values): the kernel head keeps at most 1,600 centres, stored as 16-bit floats.
        var (views, labels) = Synthetic(classes: 10, perClass: 200, seed: 3, mirror: true, noise: 2.5f);
        var options = ImageClassifierOptions.Default with { FeatureLayout = FeatureLayout.MultiStageGrid, Head = KernelHeadOptions.Default };
        var fit = HeadTrainer.Train(views, labels, 10, options, CancellationToken.None);
        var kernel = (KernelHeadDefinition)fit.Head;
        var path = Path.Combine(TestPaths.NewTempFolder("size"), "model.pkmodel");
        ModelFile.Save(path, GridDefinition(fit.Head, [.. Enumerable.Range(0, 10).Select(c => $"class{c}")]));
        var (test, testLabels) = Synthetic(classes: 10, perClass: 30, seed: 99, mirror: false, noise: 2.5f);
        var right = test.Select((v, i) => Array.IndexOf(fit.Head.Logits(v[0]), fit.Head.Logits(v[0]).Max()) == testLabels[i]).Count(r => r);
        var stored = ModelFile.Load(path);
        var reloaded = (KernelHeadDefinition)stored.Head;
        Assert.Multiple(() =>
        {
            Assert.That(kernel.Centres, Has.Length.EqualTo(KernelHeadOptions.DefaultMaxCentres));
            Assert.That(kernel.StoresHalfCentres, Is.True, "above 800 centres every centre value is a 16-bit float");
            Assert.That(new FileInfo(path).Length, Is.LessThanOrEqualTo(20_000_000));
            Assert.That((double)right / test.Count, Is.GreaterThan(0.95), "the compact kernel head still separates the classes");
            Assert.That(stored.Manifest.FormatVersion, Is.EqualTo(5));
            Assert.That(stored.Manifest.Head.Kind, Is.EqualTo(ModelFile.HalfKernelHeadKind));
            Assert.That(reloaded.Centres, Is.EqualTo(kernel.Centres), "16-bit storage loses nothing: the centres were rounded before the fit");
            Assert.That(test.Select(v => reloaded.Logits(v[0])), Is.EqualTo(test.Select(v => kernel.Logits(v[0]))), "the loaded model predicts exactly what was trained");
        });
    }

    [Test]
    public void KernelHead_UpTo800Centres_KeepsFullPrecision_AboveRoundsToHalf()
    {
        var (views, labels) = Synthetic(classes: 3, perClass: 300, seed: 5, noise: 1.5f);
        var rows = views.Select(v => v[0]).ToList();
        var weights = Enumerable.Repeat(1f, rows.Count).ToList();
        var scaling = FeatureScaling.Identity(GridSize);
        var full = (KernelHeadDefinition)KernelTrainer.Train(scaling, rows, labels, weights, 3, RidgeKernel.Gaussian, 0.01, 800, 1, CancellationToken.None);
        var half = (KernelHeadDefinition)KernelTrainer.Train(scaling, rows, labels, weights, 3, RidgeKernel.Gaussian, 0.01, 900, 1, CancellationToken.None);
        var folder = TestPaths.NewTempFolder("half");
        long Saved(KernelHeadDefinition head, string name)
        {
            var path = Path.Combine(folder, name);
            ModelFile.Save(path, GridDefinition(head, ["a", "b", "c"]));
            return new FileInfo(path).Length;
        }

        var fullBytes = Saved(full, "full.pkmodel");
        var halfBytes = Saved(half, "half.pkmodel");
        var rowSet = rows.Select(r => string.Join(',', r)).ToHashSet();
        Assert.Multiple(() =>
        {
            Assert.That(full.Centres, Has.Length.EqualTo(800));
            Assert.That(full.Centres.All(c => rowSet.Contains(string.Join(',', c))), Is.True, "800 centres: training rows as they are, not rounded");
            Assert.That(full.StoresHalfCentres, Is.False);
            Assert.That(half.Centres, Has.Length.EqualTo(900));
            Assert.That(half.StoresHalfCentres, Is.True);
            Assert.That(half.Centres.SelectMany(c => c).All(v => (float)(Half)v == v), Is.True);
            Assert.That(ModelFile.Load(Path.Combine(folder, "full.pkmodel")).Manifest.FormatVersion, Is.EqualTo(3), "a kernel head of 800 centres stays readable by format-3 readers");
            Assert.That(ModelFile.Load(Path.Combine(folder, "half.pkmodel")).Manifest.FormatVersion, Is.EqualTo(5));
            Assert.That(halfBytes, Is.LessThan(fullBytes * 0.7), "900 centres in 2 bytes each take less room than 800 in 4");
        });
    }

    [Test]
    public void RidgeTrainer_UpToMaxCentresRows_IsExact_AndTheLinearKernelGivesALinearHead()
    {
        var (views, labels) = Synthetic(classes: 3, perClass: 10, seed: 8, noise: 1.5f);
        var rows = views.Select(v => v[0]).ToList();
        var weights = Enumerable.Repeat(1f, rows.Count).ToList();
        var scaling = FeatureScaling.Identity(GridSize);
        var exact = (KernelHeadDefinition)KernelTrainer.Train(scaling, rows, labels, weights, 3, RidgeKernel.Gaussian, 0.01, 800, 1, CancellationToken.None);
        var subset = (KernelHeadDefinition)KernelTrainer.Train(scaling, rows, labels, weights, 3, RidgeKernel.Gaussian, 0.01, 12, 1, CancellationToken.None);
        var linear = KernelTrainer.Train(scaling, rows, labels, weights, 3, RidgeKernel.Linear, GridSize, 800, 1, CancellationToken.None);
        Assert.Multiple(() =>
        {
            Assert.That(exact.Centres, Has.Length.EqualTo(30));
            Assert.That(subset.Centres, Has.Length.EqualTo(12));
            Assert.That(linear, Is.TypeOf<LinearHeadDefinition>());
            Assert.That(rows.Select((r, i) => Array.IndexOf(linear.Logits(r), linear.Logits(r).Max()) == labels[i]).All(x => x), Is.True, "the ridge linear head fits separable training rows");
            Assert.That(rows.Select((r, i) => Array.IndexOf(subset.Logits(r), subset.Logits(r).Max()) == labels[i]).Count(x => x), Is.GreaterThanOrEqualTo(28));
        });
    }

    /// <summary>A model of grid features with the given head (no backbone file is read to save it).</summary>
    private static ModelDefinition GridDefinition(HeadDefinition head, IReadOnlyList<string> classes) => new()
    {
        Backbone = KnownBackbones.ResNet18,
        WeightsSha256 = new string('0', 64),
        FeatureLayout = FeatureLayout.MultiStageGrid,
        Image = ImagePreprocessingOptions.Default,
        Classes = classes,
        Head = head,
    };

    private static void AssertRoundTrip(ImageClassifierModel model, string data)
    {
        var path = Path.Combine(TestPaths.NewTempFolder("model"), "m.pkmodel");
        model.Save(path);
        using var loaded = ImageClassifierModel.Load(path);
        var images = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(4).ToList();
        Assert.That(images, Is.Not.Empty);
        foreach (var image in images)
        {
            var before = model.Predict(image, topK: 3);
            var after = loaded.Predict(image, topK: 3);
            Assert.That(after.Label, Is.EqualTo(before.Label), image);
            Assert.That(after.TopK.Select(p => p.Probability), Is.EqualTo(before.TopK.Select(p => p.Probability)).Within(1e-6), image);
        }

        Assert.Multiple(() =>
        {
            Assert.That(loaded.FeatureLayout, Is.EqualTo(model.FeatureLayout));
            Assert.That(loaded.TestTimeAugmentation, Is.EqualTo(model.TestTimeAugmentation));
        });
    }

    /// <summary>Grid-sized feature vectors around one random centre per class (and a slightly moved "mirror" view).</summary>
    private static (List<float[][]> Views, List<int> Labels) Synthetic(int classes, int perClass, int seed, bool mirror = true, float noise = 1f)
    {
        var centres = new Random(42);
        var means = Enumerable.Range(0, classes).Select(_ => Enumerable.Range(0, GridSize).Select(_ => (float)centres.NextDouble()).ToArray()).ToArray();
        var random = new Random(seed);
        float Gauss() => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        var views = new List<float[][]>();
        var labels = new List<int>();
        for (var c = 0; c < classes; c++)
        {
            for (var i = 0; i < perClass; i++)
            {
                var original = means[c].Select(m => m + (noise * 0.1f * Gauss())).ToArray();
                views.Add(mirror ? [original, original.Select(v => v + (0.02f * Gauss())).ToArray()] : [original]);
                labels.Add(c);
            }
        }

        return (views, labels);
    }
}
