using System.Diagnostics;
using System.Numerics.Tensors;
using PretrainedKit.Backbones;
using PretrainedKit.Models;

namespace PretrainedKit.Training;

/// <summary>The accuracy levers that automatic choice may search; the ones a user sets explicitly are kept fixed.</summary>
[Flags]
public enum AutoLevers
{
    /// <summary>No lever.</summary>
    None = 0,

    /// <summary><see cref="ImageClassifierOptions.FeatureLayout"/>.</summary>
    FeatureLayout = 1,

    /// <summary><see cref="ImageClassifierOptions.Normalization"/>.</summary>
    Normalization = 2,

    /// <summary><see cref="ImageClassifierOptions.Augmentation"/>.</summary>
    Augmentation = 4,

    /// <summary><see cref="ImageClassifierOptions.TestTimeAugmentation"/>.</summary>
    TestTimeAugmentation = 8,

    /// <summary><see cref="ImageClassifierOptions.Head"/> (its kind and its regularisation).</summary>
    Head = 16,

    /// <summary>Every lever above.</summary>
    All = FeatureLayout | Normalization | Augmentation | TestTimeAugmentation | Head,
}

/// <summary>One combination of lever settings tried by automatic lever choice, and how it scored in cross-validation.</summary>
/// <param name="FeatureLayout">The feature layout.</param>
/// <param name="Normalization">The feature normalisation.</param>
/// <param name="Augmentation">The training views.</param>
/// <param name="TestTimeAugmentation">The prediction views.</param>
/// <param name="Head">The head and its regularisation.</param>
/// <param name="MeanLogLoss">The mean held-out log-loss over the folds and repetitions (after a temperature fitted on the held-out predictions; class-weighted like training). Lower is better.</param>
/// <param name="StandardError">The standard error of <paramref name="MeanLogLoss"/>.</param>
/// <param name="Accuracy">The held-out accuracy (class-weighted like training: with balanced weights, the mean per-class accuracy).</param>
public sealed record LeverCandidate(
    FeatureLayout FeatureLayout,
    FeatureNormalization Normalization,
    TrainingAugmentation Augmentation,
    TestTimeAugmentation TestTimeAugmentation,
    HeadOptions Head,
    double MeanLogLoss,
    double StandardError,
    double Accuracy)
{
    /// <summary>Gets a short description, for example "MultiStageGrid, mirror training, mirror prediction, kernel (ridge 0.01)".</summary>
    public string Description =>
        $"{FeatureLayout}{(Normalization == FeatureNormalization.Standardize ? string.Empty : ", " + Normalization)}, "
        + $"{(Augmentation == TrainingAugmentation.None ? "no augmentation" : Augmentation + " augmentation")}, "
        + $"{(TestTimeAugmentation == TestTimeAugmentation.None ? "one view per prediction" : TestTimeAugmentation + " test-time views (2 backbone runs per prediction)")}, "
        + HeadDescription(Head);

    internal static string HeadDescription(HeadOptions head) => head switch
    {
        KernelHeadOptions k => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"kernel head (ridge {k.Ridge:G3})"),
        RidgeHeadOptions r => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"linear head (ridge {r.Ridge:G3} x feature size)"),
        LinearHeadOptions l => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"linear head (L-BFGS, L2 {l.L2Regularization:G3})"),
        _ => head.Kind.ToString(),
    };
}

/// <summary>
/// What automatic lever choice did (<see cref="ImageClassifierOptions.Auto"/>): every candidate with its cross-validated
/// score, the one chosen and why, and what it cost. Only training images take part: validation and test images never
/// decide.
/// </summary>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record LeverSearchReport
{
    /// <summary>Gets every candidate tried, best mean log-loss first; empty when the search was skipped.</summary>
    public required IReadOnlyList<LeverCandidate> Candidates { get; init; }

    /// <summary>Gets the candidate whose settings were used, or <see langword="null"/> when the search was skipped.</summary>
    public LeverCandidate? Chosen { get; init; }

    /// <summary>Gets the candidate with the lowest mean log-loss, or <see langword="null"/> when the search was skipped.</summary>
    public LeverCandidate? Best { get; init; }

    /// <summary>Gets why the chosen candidate was chosen, or why the search was skipped.</summary>
    public required string Reason { get; init; }

    /// <summary>Gets the levers that were searched.</summary>
    public required AutoLevers Searched { get; init; }

    /// <summary>Gets the levers the user set explicitly, which were kept as given.</summary>
    public required AutoLevers Fixed { get; init; }

    /// <summary>Gets how many training images the cross-validation used (a class-stratified subset above <see cref="LeverSearch.MaxImages"/>).</summary>
    public required int ImagesUsed { get; init; }

    /// <summary>Gets the number of folds per repetition (0 when skipped).</summary>
    public required int Folds { get; init; }

    /// <summary>Gets how many times the folds were drawn anew (more with fewer images).</summary>
    public required int Repetitions { get; init; }

    /// <summary>Gets how long the search took (not counting featurisation).</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>Gets a value indicating whether the search was skipped (too few images per class); <see cref="Reason"/> says which settings were used.</summary>
    public bool Skipped => Chosen is null;
}

/// <summary>
/// Automatic lever choice: stratified, repeated k-fold cross-validation of closed-form ridge heads (linear and Gaussian
/// kernel) on the training features of every candidate feature layout, training view set and prediction view set, all
/// from one featurisation (the richest layout holds the others as prefixes; the mirror view is one more backbone run).
/// One Gram matrix per layout serves every fold, head and regularisation; each fit is one Cholesky factorisation. The
/// pick: the lowest held-out log-loss, then the simplest candidate whose log-loss is within one standard error of the
/// paired difference (over the same folds) from it (fewer prediction views, then a linear before a kernel head, then
/// fewer training views, then fewer features, then stronger regularisation).
/// </summary>
public static class LeverSearch
{
    /// <summary>The most training images cross-validated; above it a class-stratified, seeded subset is used, so the search time stops growing with the data.</summary>
    public const int MaxImages = 1000;

    /// <summary>The most training images cross-validated with five folds; above it three folds keep the search time within the bound the README measures.</summary>
    public const int FiveFoldImages = 500;

    /// <summary>The fewest training images per class for which the search runs.</summary>
    public const int MinimumImagesPerClass = 3;

    /// <summary>Gets the ridge weights tried for the linear candidate (<see cref="RidgeHeadOptions.Ridge"/>).</summary>
    public static IReadOnlyList<double> LinearRidges { get; } = [0.1, 1, 10];

    /// <summary>Gets the ridge weights tried for the kernel candidate (<see cref="KernelHeadOptions.Ridge"/>).</summary>
    public static IReadOnlyList<double> KernelRidges { get; } = [0.01, 0.1, 1];

    /// <summary>The free and fixed settings the search works with.</summary>
    internal sealed record Space(
        IReadOnlyList<FeatureLayout> Layouts,
        IReadOnlyList<FeatureNormalization> Normalizations,
        IReadOnlyList<TrainingAugmentation> Augmentations,
        IReadOnlyList<TestTimeAugmentation> TestTimeAugmentations,
        IReadOnlyList<HeadOptions> Heads,
        AutoLevers Searched,
        AutoLevers Fixed)
    {
        /// <summary>Gets a value indicating whether the mirror view of every image is needed.</summary>
        public bool NeedsMirror => Augmentations.Contains(TrainingAugmentation.Mirror) || TestTimeAugmentations.Contains(TestTimeAugmentation.Mirror);

        /// <summary>Gets the layout to featurise with: the richest candidate (the others are its prefixes).</summary>
        public FeatureLayout FeaturizeLayout => Layouts.Contains(FeatureLayout.MultiStageGrid) ? FeatureLayout.MultiStageGrid : Layouts[0];
    }

    /// <summary>
    /// The candidates for options: every lever set explicitly keeps its value, the others are searched. Feature layouts:
    /// <see cref="FeatureLayout.MultiStage"/> and <see cref="FeatureLayout.MultiStageGrid"/> (one backbone run gives both;
    /// the pooled output would need another session). Normalisation is searched only for pooled features: the
    /// multi-stage blocks are each of unit length already, so dividing by the vector's length first changes nothing.
    /// Augmentation: none or mirror (crops cost five backbone runs per image and are never chosen automatically).
    /// </summary>
    internal static Space SpaceFor(ImageClassifierOptions options, bool backboneHasStages)
    {
        var fixedLevers = options.ExplicitLevers;
        FeatureLayout[] layouts = fixedLevers.HasFlag(AutoLevers.FeatureLayout) || !backboneHasStages
            ? [options.FeatureLayout]
            : [FeatureLayout.MultiStage, FeatureLayout.MultiStageGrid];
        FeatureNormalization[] normalizations = fixedLevers.HasFlag(AutoLevers.Normalization) || !layouts.SequenceEqual([FeatureLayout.Pooled])
            ? [options.Normalization]
            : [FeatureNormalization.Standardize, FeatureNormalization.L2ThenStandardize];
        TrainingAugmentation[] augmentations = fixedLevers.HasFlag(AutoLevers.Augmentation)
            ? [options.Augmentation]
            : [TrainingAugmentation.None, TrainingAugmentation.Mirror];
        TestTimeAugmentation[] testTime = fixedLevers.HasFlag(AutoLevers.TestTimeAugmentation) || options.SingleViewPrediction
            ? [options.SingleViewPrediction && !fixedLevers.HasFlag(AutoLevers.TestTimeAugmentation) ? TestTimeAugmentation.None : options.TestTimeAugmentation]
            : [TestTimeAugmentation.None, TestTimeAugmentation.Mirror];
        HeadOptions[] heads = fixedLevers.HasFlag(AutoLevers.Head)
            ? [options.Head]
            : [.. LinearRidges.Select(r => (HeadOptions)(RidgeHeadOptions.Default with { Ridge = r })), .. KernelRidges.Select(r => (HeadOptions)(KernelHeadOptions.Default with { Ridge = r }))];
        var searched = AutoLevers.None;
        searched |= layouts.Length > 1 ? AutoLevers.FeatureLayout : AutoLevers.None;
        searched |= normalizations.Length > 1 ? AutoLevers.Normalization : AutoLevers.None;
        searched |= augmentations.Length > 1 ? AutoLevers.Augmentation : AutoLevers.None;
        searched |= testTime.Length > 1 ? AutoLevers.TestTimeAugmentation : AutoLevers.None;
        searched |= heads.Length > 1 ? AutoLevers.Head : AutoLevers.None;
        return new Space(layouts, normalizations, augmentations, testTime, heads, searched, fixedLevers);
    }

    /// <summary>Runs the search on the training images' features.</summary>
    /// <param name="views">Per training image: its original view's features in the <see cref="Space.FeaturizeLayout"/>, then (when <see cref="Space.NeedsMirror"/>) its mirror view's.</param>
    /// <param name="labels">Per training image: its class.</param>
    /// <param name="classCount">The number of classes.</param>
    /// <param name="space">The candidates.</param>
    /// <param name="stages">The backbone's stages (for the layouts' feature sizes).</param>
    /// <param name="classWeighting">How classes are weighted (as in training).</param>
    /// <param name="seed">The seed of the subset, the folds and the centres.</param>
    /// <param name="progress">Called with (candidate fits done, total).</param>
    /// <param name="cancellationToken">Cancels the search.</param>
    internal static LeverSearchReport Run(
        IReadOnlyList<float[][]> views, IReadOnlyList<int> labels, int classCount, Space space, IReadOnlyList<BackboneStage> stages,
        ClassWeighting classWeighting, int seed, Action<int, int>? progress, CancellationToken cancellationToken) =>
        Run(views, labels, classCount, space, stages, classWeighting, seed, progress, MaxImages, labels.Count > FiveFoldImages ? 3 : 5, cancellationToken);

    /// <summary>Runs the search with a given subset size and fold count (the evidence compares budgets with it).</summary>
    internal static LeverSearchReport Run(
        IReadOnlyList<float[][]> views, IReadOnlyList<int> labels, int classCount, Space space, IReadOnlyList<BackboneStage> stages,
        ClassWeighting classWeighting, int seed, Action<int, int>? progress, int maxImages, int maxFolds, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var counts = new int[classCount];
        foreach (var l in labels)
        {
            counts[l]++;
        }

        var smallest = counts.Min();
        if (smallest < MinimumImagesPerClass)
        {
            return new LeverSearchReport
            {
                Candidates = [],
                Reason = $"skipped: a class has only {smallest} training image{(smallest == 1 ? string.Empty : "s")}; cross-validation needs at least {MinimumImagesPerClass} per class. The levers not set explicitly keep their plain defaults, except the feature layout: {space.Layouts[0]}, the first candidate, as featurised for the search.",
                Searched = AutoLevers.None,
                Fixed = space.Fixed,
                ImagesUsed = 0,
                Folds = 0,
                Repetitions = 0,
                Duration = stopwatch.Elapsed,
            };
        }

        // The subset: every image up to MaxImages, else a class-stratified share of each class (at least MinimumImagesPerClass).
        var subset = Subset(labels, classCount, seed, maxImages);
        var n = subset.Length;
        var y = subset.Select(i => labels[i]).ToArray();
        var subCounts = new int[classCount];
        foreach (var l in y)
        {
            subCounts[l]++;
        }

        var weights = y.Select(l => classWeighting == ClassWeighting.Balanced ? (double)n / (classCount * subCounts[l]) : 1.0).ToArray();
        var folds = Math.Min(maxFolds, subCounts.Min());
        var repetitions = n <= 100 ? 4 : n <= 250 ? 2 : 1;
        var viewCount = space.NeedsMirror ? 2 : 1;
        var representations = space.Layouts.SelectMany(layout => space.Normalizations.Select(norm => (Layout: layout, Normalization: norm))).ToList();
        var fits = representations.Count * repetitions * folds * space.Augmentations.Count * space.Heads.Count;
        var done = 0;
        var gate = new object();

        // scores[representation, augmentation, head, repetition][view][image][class]: held-out regression scores.
        var foldsOf = Enumerable.Range(0, repetitions).Select(rep => HeadTrainer.AssignFolds(y, classCount, folds, seed + rep)).ToArray();
        var results = new List<(int R, int A, int H, double[][][][] Scores)>();
        for (var r = 0; r < representations.Count; r++)
        {
            var (layout, normalization) = representations[r];
            var length = layout == FeatureLayout.Pooled ? views[0][0].Length : MultiStagePooling.FeatureSize(stages, layout);
            var rows = Standardized(subset, views, viewCount, length, normalization);
            var gram = Gram(rows, cancellationToken);
            var norms = Enumerable.Range(0, rows.Length).Select(i => (float)gram[i][i]).ToArray();
            var gamma = KernelTrainer.Gamma(length);
            for (var a = 0; a < space.Augmentations.Count; a++)
            {
                var trainViews = space.Augmentations[a] == TrainingAugmentation.Mirror ? 2 : 1;
                var scoresByHead = space.Heads.Select(_ => new double[repetitions][][][]).ToArray();
                results.AddRange(scoresByHead.Select((scores, h) => (r, a, h, scores)));

                for (var rep = 0; rep < repetitions; rep++)
                {
                    var fold = foldsOf[rep];
                    var perHead = Enumerable.Range(0, space.Heads.Count).Select(_ => Enumerable.Range(0, viewCount).Select(_ => new double[n][]).ToArray()).ToArray();

                    // One task per fold and head, each factorised on one thread: many small factorisations parallelise
                    // better across tasks than inside each. Every task writes only its own held-out images' scores.
                    Parallel.For(0, folds * space.Heads.Count, new ParallelOptions { CancellationToken = cancellationToken }, task =>
                    {
                        var f = task / space.Heads.Count;
                        var h = task % space.Heads.Count;
                        var trainImages = Enumerable.Range(0, n).Where(i => fold[i] != f).ToArray();
                        var held = Enumerable.Range(0, n).Where(i => fold[i] == f).ToArray();
                        var trainRows = trainImages.SelectMany(i => Enumerable.Range(0, trainViews).Select(v => (v * n) + i)).ToArray();
                        var (kernel, ridge) = KernelOf(space.Heads[h], length);
                        double K(int i, int j) => KernelTrainer.Value(kernel, norms[i], norms[j], (float)gram[Math.Max(i, j)][Math.Min(i, j)], gamma);
                        var heldRows = held.SelectMany(i => Enumerable.Range(0, viewCount).Select(v => (v * n) + i)).ToArray();
                        var scores = KernelTrainer.FoldScores(K, trainRows, heldRows, t => y[t % n], t => weights[t % n], ridge, classCount, cancellationToken);
                        for (var k = 0; k < heldRows.Length; k++)
                        {
                            perHead[h][heldRows[k] / n][heldRows[k] % n] = scores[k];
                        }

                        lock (gate)
                        {
                            progress?.Invoke(++done, fits); // In order: progress never goes backwards.
                        }
                    });

                    for (var h = 0; h < space.Heads.Count; h++)
                    {
                        scoresByHead[h][rep] = perHead[h];
                    }
                }
            }
        }

        // Score every candidate (each result with each prediction view set).
        var candidates = new List<(LeverCandidate Candidate, double[] Key, List<double> Losses)>();
        foreach (var (r, a, h, scores) in results)
        {
            foreach (var tta in space.TestTimeAugmentations)
            {
                var losses = new List<double>();
                double right = 0, total = 0;
                for (var rep = 0; rep < repetitions; rep++)
                {
                    var fold = foldsOf[rep];
                    var logits = Enumerable.Range(0, n).Select(i =>
                    {
                        var l = (double[])scores[rep][0][i].Clone();
                        if (tta == TestTimeAugmentation.Mirror)
                        {
                            for (var c = 0; c < classCount; c++)
                            {
                                l[c] = (l[c] + scores[rep][1][i][c]) / 2;
                            }
                        }

                        return l.Select(v => v * KernelTrainer.LogitScale).ToArray();
                    }).ToList();
                    var temperature = Calibration.FitTemperature(logits, y);
                    for (var f = 0; f < folds; f++)
                    {
                        double loss = 0, weight = 0;
                        for (var i = 0; i < n; i++)
                        {
                            if (fold[i] != f)
                            {
                                continue;
                            }

                            var p = ModelDefinition.Softmax(logits[i], temperature);
                            loss -= weights[i] * Math.Log(Math.Max(p[y[i]], 1e-12));
                            weight += weights[i];
                            total += weights[i];
                            right += Array.IndexOf(p, p.Max()) == y[i] ? weights[i] : 0;
                        }

                        losses.Add(loss / weight);
                    }
                }

                var mean = losses.Average();
                var sd = Math.Sqrt(losses.Sum(x => (x - mean) * (x - mean)) / Math.Max(1, losses.Count - 1));
                var (layout, normalization) = representations[r];
                var head = space.Heads[h];
                var candidate = new LeverCandidate(layout, normalization, space.Augmentations[a], tta, head, mean, sd / Math.Sqrt(losses.Count), right / total);
                double[] key =
                [
                    tta == TestTimeAugmentation.Mirror ? 1 : 0,
                    head.Kind == HeadKind.Kernel ? 1 : 0,
                    space.Augmentations[a] == TrainingAugmentation.Mirror ? 1 : 0,
                    layout == FeatureLayout.Pooled ? 0 : MultiStagePooling.FeatureSize(stages, layout),
                    normalization == FeatureNormalization.Standardize ? 0 : 1,
                    -KernelOf(head, 1).Ridge,
                ];
                candidates.Add((candidate, key, losses));
            }
        }

        // Within noise: the candidate's held-out log-loss exceeds the best's by at most one standard error of the
        // difference, paired over the same folds (fold difficulty is shared, so the pairing removes most of the noise
        // that the standard error of either mean carries).
        var bestEntry = candidates.MinBy(c => c.Candidate.MeanLogLoss);
        var best = bestEntry.Candidate;
        var eligible = candidates.Where(c =>
        {
            var d = c.Losses.Zip(bestEntry.Losses, (x, b) => x - b).ToArray();
            var mean = d.Average();
            var se = Math.Sqrt(d.Sum(x => (x - mean) * (x - mean)) / Math.Max(1, d.Length - 1) / d.Length);
            return mean <= se;
        }).ToList();
        var chosen = eligible.OrderBy(c => c.Key, KeyComparer.Instance).First().Candidate;
        var reason = chosen == best
            ? $"lowest held-out log-loss ({best.MeanLogLoss:F3} +/- {best.StandardError:F3}); no simpler candidate within one standard error of the paired difference"
            : $"the simplest of the {eligible.Count} candidates whose held-out log-loss is within one standard error (of the paired difference over the folds) of the best (best: {best.Description}, log-loss {best.MeanLogLoss:F3}; chosen: {chosen.MeanLogLoss:F3})";
        return new LeverSearchReport
        {
            Candidates = candidates.Select(c => c.Candidate).OrderBy(c => c.MeanLogLoss).ToList(),
            Chosen = chosen,
            Best = best,
            Reason = reason,
            Searched = space.Searched,
            Fixed = space.Fixed,
            ImagesUsed = n,
            Folds = folds,
            Repetitions = repetitions,
            Duration = stopwatch.Elapsed,
        };
    }

    /// <summary>The kernel and the absolute ridge weight of a head option (the L-BFGS linear head is stood in for by the ridge linear head with ridge 1).</summary>
    internal static (RidgeKernel Kernel, double Ridge) KernelOf(HeadOptions head, int featureSize) => head switch
    {
        KernelHeadOptions k => (RidgeKernel.Gaussian, k.Ridge),
        RidgeHeadOptions r => (RidgeKernel.Linear, r.Ridge * featureSize),
        _ => (RidgeKernel.Linear, RidgeHeadOptions.Default.Ridge * featureSize),
    };

    /// <summary>Every image up to <paramref name="maxImages"/> (<see cref="MaxImages"/> in training); else each class's share of it (at least <see cref="MinimumImagesPerClass"/>), by a seeded shuffle.</summary>
    private static int[] Subset(IReadOnlyList<int> labels, int classCount, int seed, int maxImages)
    {
        if (labels.Count <= maxImages)
        {
            return [.. Enumerable.Range(0, labels.Count)];
        }

        var random = new Random(seed);
        var chosen = new List<int>();
        for (var c = 0; c < classCount; c++)
        {
            var members = Enumerable.Range(0, labels.Count).Where(i => labels[i] == c).ToArray();
            random.Shuffle(members);
            var share = Math.Max(MinimumImagesPerClass, (int)Math.Round((double)maxImages * members.Length / labels.Count));
            chosen.AddRange(members.Take(share));
        }

        return [.. chosen.Order()];
    }

    /// <summary>Rows (view-major: all originals, then all mirrors) of the layout's prefix, normalised and standardised with the subset's original-view statistics.</summary>
    private static float[][] Standardized(int[] subset, IReadOnlyList<float[][]> views, int viewCount, int length, FeatureNormalization normalization)
    {
        var n = subset.Length;
        var raw = new float[viewCount * n][];
        for (var v = 0; v < viewCount; v++)
        {
            for (var i = 0; i < n; i++)
            {
                var f = views[subset[i]][v].AsSpan(0, length);
                raw[(v * n) + i] = normalization == FeatureNormalization.L2ThenStandardize ? FeatureScaling.L2Normalized(f) : f.ToArray();
            }
        }

        if (normalization == FeatureNormalization.None)
        {
            return raw;
        }

        var (mean, scale) = HeadTrainer.ComputeStandardization(raw.Take(n).ToList(), length);
        return raw.Select(r => FeatureScaling.Standardize(r, mean, scale)).ToArray();
    }

    /// <summary>The lower triangle of the rows' dot products.</summary>
    private static double[][] Gram(float[][] rows, CancellationToken cancellationToken)
    {
        var gram = new double[rows.Length][];
        Parallel.For(0, rows.Length, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            var line = new double[i + 1];
            for (var j = 0; j <= i; j++)
            {
                line[j] = TensorPrimitives.Dot<float>(rows[i], rows[j]);
            }

            gram[i] = line;
        });
        return gram;
    }

    private sealed class KeyComparer : IComparer<double[]>
    {
        public static readonly KeyComparer Instance = new();

        public int Compare(double[]? x, double[]? y)
        {
            for (var i = 0; i < x!.Length; i++)
            {
                var c = x[i].CompareTo(y![i]);
                if (c != 0)
                {
                    return c;
                }
            }

            return 0;
        }
    }
}
