namespace PretrainedKit.Evaluation;

/// <summary>Precision, recall and F1 of one class.</summary>
/// <param name="Label">The class.</param>
/// <param name="Precision">Of the images predicted as this class, the fraction that are; 0 when none were predicted.</param>
/// <param name="Recall">Of the images of this class, the fraction predicted as it; 0 when there are none.</param>
/// <param name="F1">The harmonic mean of precision and recall; 0 when both are 0.</param>
/// <param name="Support">The number of images of this class.</param>
public sealed record ClassMetrics(string Label, double Precision, double Recall, double F1, int Support);

/// <summary>
/// Metrics of a classifier on a labelled set of images. Where ML.NET's <c>MulticlassClassificationMetrics</c> has a metric
/// with the same meaning, it has the same name and the same value (<see cref="MicroAccuracy"/>, <see cref="MacroAccuracy"/>,
/// <see cref="LogLoss"/>, <see cref="LogLossReduction"/>, <see cref="PerClassLogLoss"/>, <see cref="TopKAccuracyForAllK"/>;
/// a test compares every one with <c>mlContext.MulticlassClassification.Evaluate</c> on the same predictions).
/// </summary>
/// <remarks>
/// Two differ from ML.NET on purpose: <see cref="ConfusionMatrix"/> holds integer counts indexed by class (ML.NET's
/// <c>ConfusionMatrix</c> is an object of <see langword="double"/> counts, because its rows may be weighted; ours never are),
/// and <see cref="PerClass"/> gathers precision, recall, F1 and support per class with its name (ML.NET has only
/// <c>PerClassPrecision</c> and <c>PerClassRecall</c>, as bare lists). There is no single <c>TopKAccuracy</c> for a chosen K:
/// <see cref="TopKAccuracyForAllK"/> holds every K from 1 to 5.
/// </remarks>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
public sealed record ClassificationMetrics
{
    /// <summary>Gets the class names, in the order of <see cref="ConfusionMatrix"/>'s rows and columns.</summary>
    public required IReadOnlyList<string> Classes { get; init; }

    /// <summary>Gets the fraction of images whose top prediction is right (ML.NET's <c>MicroAccuracy</c>).</summary>
    public required double MicroAccuracy { get; init; }

    /// <summary>Gets the mean over classes (with images) of each class's recall, so that small classes count as much as big ones (ML.NET's <c>MacroAccuracy</c>).</summary>
    public required double MacroAccuracy { get; init; }

    /// <summary>Gets the mean of <c>-ln(p(true class))</c>, with p clipped at 1e-15 (ML.NET's <c>LogLoss</c>). Lower is better; 0 is perfect.</summary>
    public required double LogLoss { get; init; }

    /// <summary>
    /// Gets how much better <see cref="LogLoss"/> is than the log-loss of the prior, ML.NET's <c>LogLossReduction</c>:
    /// <c>(LL(prior) - LogLoss) / LL(prior)</c>, where the prior predicts every image with the class frequencies of the
    /// evaluated images (so LL(prior) is their entropy, <c>-Σ f·ln f</c>). 1 is perfect, 0 is no better than the class
    /// frequencies, below 0 is worse (confidently wrong).
    /// </summary>
    /// <value>The default is 0 (a report made by hand); it is 0 too when the images are all of one class (the prior is perfect).</value>
    public double LogLossReduction { get; init; }

    /// <summary>
    /// Gets the log-loss of the images of each class, in <see cref="Classes"/> order (ML.NET's <c>PerClassLogLoss</c>): the
    /// mean of <c>-ln(p(class))</c> over that class's images; 0 for a class without images.
    /// </summary>
    /// <value>The default is empty (a report made by hand).</value>
    public IReadOnlyList<double> PerClassLogLoss { get; init; } = [];

    /// <summary>
    /// Gets the top-k accuracy for k = 1 to min(5, classes): element k-1 is the fraction of images whose true class is
    /// among the k most probable (ML.NET's <c>TopKAccuracyForAllK</c>, with ML.NET's K fixed at min(5, classes); element 0
    /// equals <see cref="MicroAccuracy"/>). Ties in probability go to the class that comes first.
    /// </summary>
    public required IReadOnlyList<double> TopKAccuracyForAllK { get; init; }

    /// <summary>Gets precision, recall, F1 and support per class, in <see cref="Classes"/> order.</summary>
    public required IReadOnlyList<ClassMetrics> PerClass { get; init; }

    /// <summary>Gets the confusion matrix: <c>ConfusionMatrix[actual][predicted]</c>, in <see cref="Classes"/> order.</summary>
    public required IReadOnlyList<IReadOnlyList<int>> ConfusionMatrix { get; init; }

    /// <summary>Gets the number of images the metrics were computed on.</summary>
    public required int Count { get; init; }

    /// <summary>Computes every metric from true labels and predicted probabilities.</summary>
    /// <param name="classes">The class names.</param>
    /// <param name="actual">The true class index of each image.</param>
    /// <param name="probabilities">The predicted probabilities of each image, in <paramref name="classes"/> order.</param>
    /// <returns>The metrics.</returns>
    /// <exception cref="ArgumentException">The inputs disagree in length, or there are no images.</exception>
    public static ClassificationMetrics Compute(IReadOnlyList<string> classes, IReadOnlyList<int> actual, IReadOnlyList<IReadOnlyList<float>> probabilities)
    {
        ArgumentNullException.ThrowIfNull(classes);
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(probabilities);
        if (actual.Count != probabilities.Count || actual.Count == 0)
        {
            throw new ArgumentException("Metrics need at least one image, and one probability vector per label.");
        }

        var k = classes.Count;
        var maxTop = Math.Min(5, k);
        var confusion = new int[k][];
        for (var i = 0; i < k; i++)
        {
            confusion[i] = new int[k];
        }

        var topHits = new int[maxTop];
        var classLogLoss = new double[k];
        double logLoss = 0;
        for (var n = 0; n < actual.Count; n++)
        {
            var p = probabilities[n];
            var truth = actual[n];
            var order = Enumerable.Range(0, k).OrderByDescending(c => p[c]).ThenBy(c => c).ToArray();
            confusion[truth][order[0]]++;
            var rank = Array.IndexOf(order, truth);
            for (var t = rank; t < maxTop; t++)
            {
                topHits[t]++;
            }

            var loss = -Math.Log(Math.Max(p[truth], EvaluatedImage.MinimumProbability));
            logLoss += loss;
            classLogLoss[truth] += loss;
        }

        var perClass = new ClassMetrics[k];
        var recalls = new List<double>();
        for (var c = 0; c < k; c++)
        {
            var tp = confusion[c][c];
            var support = confusion[c].Sum();
            var predicted = Enumerable.Range(0, k).Sum(r => confusion[r][c]);
            var precision = predicted == 0 ? 0 : (double)tp / predicted;
            var recall = support == 0 ? 0 : (double)tp / support;
            var f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            perClass[c] = new ClassMetrics(classes[c], precision, recall, f1, support);
            if (support > 0)
            {
                recalls.Add(recall);
            }
        }

        var total = actual.Count;
        var priorLogLoss = 0.0;
        for (var c = 0; c < k; c++)
        {
            var support = perClass[c].Support;
            if (support > 0)
            {
                var frequency = (double)support / total;
                priorLogLoss -= frequency * Math.Log(frequency);
            }
        }

        return new ClassificationMetrics
        {
            Classes = classes.ToArray(),
            MicroAccuracy = (double)topHits[0] / total,
            MacroAccuracy = recalls.Count == 0 ? 0 : recalls.Average(),
            LogLoss = logLoss / total,
            LogLossReduction = priorLogLoss > 0 ? (priorLogLoss - (logLoss / total)) / priorLogLoss : 0,
            PerClassLogLoss = perClass.Select((c, i) => c.Support == 0 ? 0 : classLogLoss[i] / c.Support).ToArray(),
            TopKAccuracyForAllK = topHits.Select(h => (double)h / total).ToArray(),
            PerClass = perClass,
            ConfusionMatrix = confusion,
            Count = total,
        };
    }
}
