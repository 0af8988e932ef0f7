using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using PretrainedKit.Models;

namespace PretrainedKit.Training;

/// <summary>The trained head, the ML.NET model it came from (<see langword="null"/> for the kernel head), and how its regularisation was chosen.</summary>
internal sealed record HeadFit(HeadDefinition Head, ITransformer? MlNetModel, MLContext? Context, RegularizationSearch? Search);

/// <summary>
/// Trains the final layer with ML.NET's L-BFGS maximum entropy trainer (softmax regression) on normalised features, or,
/// for <see cref="KernelHeadOptions"/>, a kernel ridge regression with <see cref="KernelTrainer"/>.
/// Each training image may come with several views (augmentation); every view is one training row with the image's label.
/// </summary>
internal static class HeadTrainer
{
    /// <summary>Trains on one feature vector per image.</summary>
    public static HeadFit Train(IReadOnlyList<float[]> features, IReadOnlyList<int> labels, int classCount, ImageClassifierOptions options, CancellationToken cancellationToken) =>
        Train(features.Select(f => new[] { f }).ToList(), labels, classCount, options, cancellationToken);

    /// <summary>Trains on one or more views per image (all views of an image share its label and its fold).</summary>
    public static HeadFit Train(IReadOnlyList<float[][]> views, IReadOnlyList<int> labels, int classCount, ImageClassifierOptions options, CancellationToken cancellationToken)
    {
        var dimension = views[0][0].Length;
        var scaling = FitScaling(views.SelectMany(v => v).ToList(), options.Normalization);

        var counts = new int[classCount];
        foreach (var label in labels)
        {
            counts[label]++;
        }

        // Per image: its standardised views and its weight (balanced: every class weighs the same in total).
        var z = views.Select(v => v.Select(f => scaling.Apply(f)).ToArray()).ToList();
        var weights = labels.Select(l => options.ClassWeighting == ClassWeighting.Balanced ? (float)labels.Count / (classCount * counts[l]) : 1f).ToList();

        if (options.Head is KernelHeadOptions or RidgeHeadOptions)
        {
            var rows = z.SelectMany(v => v).ToList();
            var rowLabels = z.SelectMany((v, i) => Enumerable.Repeat(labels[i], v.Length)).ToList();
            var rowWeights = z.SelectMany((v, i) => Enumerable.Repeat(weights[i], v.Length)).ToList();
            var head = options.Head switch
            {
                KernelHeadOptions kernel => KernelTrainer.Train(scaling, rows, rowLabels, rowWeights, classCount, RidgeKernel.Gaussian, kernel.Ridge, kernel.MaxCentres, options.Seed, cancellationToken),
                RidgeHeadOptions ridge => KernelTrainer.Train(scaling, rows, rowLabels, rowWeights, classCount, RidgeKernel.Linear, ridge.Ridge * dimension, ridge.MaxCentres, options.Seed, cancellationToken),
                _ => throw new InvalidOperationException("Unreachable."),
            };
            return new HeadFit(head, null, null, null);
        }

        var linear = (LinearHeadOptions)options.Head;
        RegularizationSearch? search = null;
        var l2 = linear.L2Regularization;
        if (linear.AutoRegularization)
        {
            search = SearchL2(z, labels, weights, classCount, counts, options.Seed, linear, cancellationToken);
            l2 = search.ChosenL2;
        }

        cancellationToken.ThrowIfCancellationRequested();
        var (w, b, model, context) = Fit(z, labels, weights, Enumerable.Range(0, z.Count), classCount, dimension, l2, options.Seed, linear);
        return new HeadFit(new LinearHeadDefinition(scaling, w, b), model, context, search);
    }

    /// <summary>Stratified k-fold cross-validation over the candidates, then the one-standard-error rule.</summary>
    private static RegularizationSearch SearchL2(List<float[][]> z, IReadOnlyList<int> labels, List<float> weights, int classCount, int[] counts, int seed, LinearHeadOptions options, CancellationToken cancellationToken)
    {
        var smallest = counts.Min();
        if (smallest < RegularizationSearch.MinimumImagesPerClass)
        {
            return new RegularizationSearch
            {
                Candidates = [],
                ChosenL2 = options.L2Regularization,
                Folds = 0,
                Repetitions = 0,
                SkippedBecause = $"a class has only {smallest} training image{(smallest == 1 ? string.Empty : "s")}; cross-validation needs at least {RegularizationSearch.MinimumImagesPerClass}. The given L2 weight ({options.L2Regularization}) was kept.",
            };
        }

        var folds = Math.Min(5, smallest);
        var repetitions = z.Count <= 200 ? 3 : 1; // Few images: noisy folds, so draw them more than once.
        var dimension = z[0][0].Length;
        var candidates = RegularizationSearch.DefaultCandidates;
        var losses = candidates.Select(_ => new List<double>()).ToArray();
        for (var r = 0; r < repetitions; r++)
        {
            var fold = AssignFolds(labels, classCount, folds, seed + r);
            for (var f = 0; f < folds; f++)
            {
                var train = Enumerable.Range(0, z.Count).Where(i => fold[i] != f).ToList();
                var held = Enumerable.Range(0, z.Count).Where(i => fold[i] == f).ToList();
                for (var c = 0; c < candidates.Count; c++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var (w, b, _, _) = Fit(z, labels, weights, train, classCount, dimension, candidates[c], seed, options);
                    var head = new LinearHeadDefinition(FeatureScaling.Identity(dimension), w, b);
                    double loss = 0, total = 0;
                    foreach (var i in held)
                    {
                        foreach (var view in z[i])
                        {
                            loss -= weights[i] * Math.Log(Math.Max(ModelDefinition.Softmax(head.Logits(view), 1)[labels[i]], 1e-12));
                            total += weights[i];
                        }
                    }

                    losses[c].Add(loss / total);
                }
            }
        }

        var scored = candidates.Select((l2, c) =>
        {
            var mean = losses[c].Average();
            var sd = Math.Sqrt(losses[c].Sum(x => (x - mean) * (x - mean)) / Math.Max(1, losses[c].Count - 1));
            return new RegularizationCandidate(l2, mean, sd / Math.Sqrt(losses[c].Count));
        }).ToList();
        var best = scored.MinBy(s => s.MeanLogLoss)!;
        var chosen = scored.Where(s => s.MeanLogLoss <= best.MeanLogLoss + best.StandardError).MaxBy(s => s.L2)!;
        return new RegularizationSearch { Candidates = scored, ChosenL2 = chosen.L2, BestL2 = best.L2, Folds = folds, Repetitions = repetitions };
    }

    /// <summary>
    /// The feature scaling a head fits on its training rows: for <see cref="FeatureNormalization.L2ThenStandardize"/> the
    /// rows divided by their length first; the identity for <see cref="FeatureNormalization.None"/>.
    /// </summary>
    internal static FeatureScaling FitScaling(IReadOnlyList<float[]> rows, FeatureNormalization normalization)
    {
        var dimension = rows[0].Length;
        if (normalization == FeatureNormalization.None)
        {
            return FeatureScaling.Identity(dimension);
        }

        var prepared = normalization == FeatureNormalization.L2ThenStandardize ? rows.Select(f => FeatureScaling.L2Normalized(f)).ToList() : rows.ToList();
        var (mean, scale) = ComputeStandardization(prepared, dimension);
        return new FeatureScaling(normalization, mean, scale);
    }

    /// <summary>Deals each class's images round-robin into folds after a seeded shuffle, so every fold holds every class.</summary>
    internal static int[] AssignFolds(IReadOnlyList<int> labels, int classCount, int folds, int seed)
    {
        var random = new Random(seed);
        var fold = new int[labels.Count];
        for (var c = 0; c < classCount; c++)
        {
            var members = Enumerable.Range(0, labels.Count).Where(i => labels[i] == c).ToArray();
            random.Shuffle(members);
            for (var k = 0; k < members.Length; k++)
            {
                fold[members[k]] = k % folds;
            }
        }

        return fold;
    }

    private static (float[][] Weights, float[] Biases, ITransformer Model, MLContext Context) Fit(
        List<float[][]> z, IReadOnlyList<int> labels, List<float> weights, IEnumerable<int> images, int classCount, int dimension, float l2, int seed, LinearHeadOptions options)
    {
        // LoadFromEnumerable reads a uint in a key-typed column as a 0-based class index.
        var rows = images.SelectMany(i => z[i].Select(view => new HeadRow { Label = (uint)labels[i], Features = view, Weight = weights[i] })).ToList();

        // One MLContext per fit, seeded: runs never share state, and the same seed and data give the same model.
        var context = new MLContext(seed);
        var schema = SchemaDefinition.Create(typeof(HeadRow));
        schema[nameof(HeadRow.Label)].ColumnType = new KeyDataViewType(typeof(uint), classCount);
        schema[nameof(HeadRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dimension);
        var data = context.Data.LoadFromEnumerable(rows, schema);

        var trainer = context.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = nameof(HeadRow.Label),
            FeatureColumnName = nameof(HeadRow.Features),
            ExampleWeightColumnName = nameof(HeadRow.Weight),
            L1Regularization = options.L1Regularization,
            L2Regularization = l2,
            MaximumNumberOfIterations = options.MaximumIterations,
            NumberOfThreads = 1, // Deterministic sums: the same data and seed give the same weights.
        });

        var model = trainer.Fit(data);
        VBuffer<float>[] weightRows = [];
        model.Model.GetWeights(ref weightRows, out var numClasses);
        if (numClasses != classCount)
        {
            throw new InvalidOperationException($"The trainer returned {numClasses} classes instead of {classCount}.");
        }

        var rowsOut = new float[classCount][];
        for (var c = 0; c < classCount; c++)
        {
            rowsOut[c] = new float[dimension];
            weightRows[c].CopyTo(rowsOut[c]);
        }

        return (rowsOut, model.Model.GetBiases().ToArray(), model, context);
    }

    internal static (float[] Mean, float[] Scale) ComputeStandardization(List<float[]> features, int dimension)
    {
        var mean = new double[dimension];
        foreach (var f in features)
        {
            for (var j = 0; j < dimension; j++)
            {
                mean[j] += f[j];
            }
        }

        for (var j = 0; j < dimension; j++)
        {
            mean[j] /= features.Count;
        }

        var variance = new double[dimension];
        foreach (var f in features)
        {
            for (var j = 0; j < dimension; j++)
            {
                var d = f[j] - mean[j];
                variance[j] += d * d;
            }
        }

        var meanOut = new float[dimension];
        var scale = new float[dimension];
        for (var j = 0; j < dimension; j++)
        {
            meanOut[j] = (float)mean[j];
            var sd = Math.Sqrt(variance[j] / features.Count);
            scale[j] = sd > 1e-6 ? (float)(1 / sd) : 1f;
        }

        return (meanOut, scale);
    }

    /// <summary>One training row for ML.NET.</summary>
    internal sealed class HeadRow
    {
        public uint Label { get; set; }

        public float[] Features { get; set; } = [];

        public float Weight { get; set; }
    }
}
