using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace PretrainedKit.Training;

/// <summary>Trains the final layer with ML.NET's L-BFGS maximum entropy trainer (softmax regression) on standardised features.</summary>
internal static class HeadTrainer
{
    public static (LinearHead Head, ITransformer MlNetModel, MLContext Context) Train(
        IReadOnlyList<float[]> features,
        IReadOnlyList<int> labels,
        int classCount,
        ImageClassifierOptions options,
        CancellationToken cancellationToken)
    {
        var dimension = features[0].Length;
        var (mean, scale) = ComputeStandardization(features, dimension);

        var counts = new int[classCount];
        foreach (var label in labels)
        {
            counts[label]++;
        }

        // LoadFromEnumerable reads a uint in a key-typed column as a 0-based class index.
        var rows = new List<HeadRow>(features.Count);
        for (var i = 0; i < features.Count; i++)
        {
            var z = new float[dimension];
            for (var j = 0; j < dimension; j++)
            {
                z[j] = (features[i][j] - mean[j]) * scale[j];
            }

            var weight = options.ClassWeighting == ClassWeighting.Balanced
                ? (float)features.Count / (classCount * counts[labels[i]])
                : 1f;
            rows.Add(new HeadRow { Label = (uint)labels[i], Features = z, Weight = weight });
        }

        // One MLContext per run, seeded: runs never share state, and the same seed and data give the same model.
        var context = new MLContext(options.Seed);
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
            L2Regularization = options.L2Regularization,
            MaximumNumberOfIterations = options.MaximumIterations,
            NumberOfThreads = 1, // Deterministic sums: the same data and seed give the same weights.
        });

        cancellationToken.ThrowIfCancellationRequested();
        var model = trainer.Fit(data);
        cancellationToken.ThrowIfCancellationRequested();

        VBuffer<float>[] weights = [];
        model.Model.GetWeights(ref weights, out var numClasses);
        if (numClasses != classCount)
        {
            throw new InvalidOperationException($"The trainer returned {numClasses} classes instead of {classCount}.");
        }

        var rowsOut = new float[classCount][];
        for (var c = 0; c < classCount; c++)
        {
            rowsOut[c] = new float[dimension];
            weights[c].CopyTo(rowsOut[c]);
        }

        var biases = model.Model.GetBiases().ToArray();
        return (new LinearHead(mean, scale, rowsOut, biases), model, context);
    }

    private static (float[] Mean, float[] Scale) ComputeStandardization(IReadOnlyList<float[]> features, int dimension)
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
