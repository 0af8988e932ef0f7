using System.Globalization;

namespace PretrainedKit.Training;

/// <summary>
/// Temperature scaling and the choice of the "unknown" threshold, both on the validation images. Pure functions of
/// logits, probabilities and labels, so that each is tested on synthetic numbers.
/// </summary>
internal static class Calibration
{
    /// <summary>The smallest temperature searched.</summary>
    public const double MinimumTemperature = 0.05;

    /// <summary>The largest temperature searched.</summary>
    public const double MaximumTemperature = 20;

    /// <summary>The number of equal-width confidence bins of the expected calibration error.</summary>
    public const int CalibrationErrorBins = 10;

    /// <summary>Below this many validation images a chosen threshold gets a warning that it is noisy.</summary>
    public const int ReliableThresholdImages = 100;

    private const int GoldenSectionSteps = 60;

    /// <summary>
    /// Calibrates on the validation logits as <paramref name="options"/> say: fits the temperature (unless turned off or
    /// there are too few images), measures log-loss and calibration error before and after, and chooses the unknown
    /// threshold when a precision target is set.
    /// </summary>
    public static CalibrationReport Calibrate(IReadOnlyList<double[]> logits, IReadOnlyList<int> labels, ImageClassifierOptions options)
    {
        var n = logits.Count;
        if (n == 0)
        {
            return new CalibrationReport
            {
                ValidationImages = 0,
                Temperature = 1,
                CalibrationSkippedReason = "there are no validation images (validation split 0 and no validation folder)",
                UnknownPrecisionTarget = options.UnknownPrecisionTarget,
            };
        }

        string? skipped = null;
        var temperature = 1.0;
        if (!options.Calibrate)
        {
            skipped = "calibration is turned off";
        }
        else if (n < ImageClassifierOptions.MinimumCalibrationImages)
        {
            skipped = string.Create(CultureInfo.InvariantCulture, $"there are only {n} validation images; at least {ImageClassifierOptions.MinimumCalibrationImages} are needed to fit a temperature");
        }
        else
        {
            temperature = FitTemperature(logits, labels);
        }

        var (topBefore, correctBefore) = TopAndCorrect(logits, labels, 1);
        var (topAfter, correctAfter) = temperature == 1 ? (topBefore, correctBefore) : TopAndCorrect(logits, labels, temperature);
        var report = new CalibrationReport
        {
            ValidationImages = n,
            Temperature = temperature,
            CalibrationSkippedReason = skipped,
            LogLossBefore = NegativeLogLikelihood(logits, labels, 1),
            LogLossAfter = NegativeLogLikelihood(logits, labels, temperature),
            ExpectedCalibrationErrorBefore = ExpectedCalibrationError(topBefore, correctBefore),
            ExpectedCalibrationErrorAfter = ExpectedCalibrationError(topAfter, correctAfter),
            UnknownPrecisionTarget = options.UnknownPrecisionTarget,
        };
        if (options.UnknownPrecisionTarget is not { } target)
        {
            return report;
        }

        var choice = ChooseThreshold(topAfter, correctAfter, target);
        return report with
        {
            UnknownThreshold = choice.Threshold,
            ValidationPrecision = choice.Precision,
            ValidationCoverage = choice.Coverage,
            TargetReached = choice.TargetReached,
        };
    }

    /// <summary>The warnings a calibration report deserves: a temperature at the edge of its range, a missed target, a threshold chosen on few images.</summary>
    public static IEnumerable<string> Warnings(CalibrationReport report)
    {
        var n = report.ValidationImages;
        if (report.Calibrated && report.Temperature <= MinimumTemperature * 1.01)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"The calibration temperature reached its lower limit ({MinimumTemperature}): the model was right and confident on nearly all {n} validation images, so its probabilities were sharpened as far as allowed and may be over-confident on new images. More (or harder) validation images give a more trustworthy calibration.");
        }
        else if (report.Calibrated && report.Temperature >= MaximumTemperature * 0.99)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"The calibration temperature reached its upper limit ({MaximumTemperature}): the model is close to guessing on the {n} validation images. Check the labels and add training images.");
        }

        if (report.UnknownThreshold is not { } threshold)
        {
            yield break;
        }

        var accepted = (int)Math.Round(report.ValidationCoverage!.Value * n);
        if (report.TargetReached == false)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"The unknown-answer precision target {report.UnknownPrecisionTarget:P1} was not reached on the validation images: the most precise threshold, {threshold:0.####}, gives {report.ValidationPrecision:P1} precision, accepting {accepted} of {n} images. Lower the target or add training images.");
        }

        if (n < ReliableThresholdImages)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"The unknown threshold {threshold:0.####} was chosen on only {n} validation images ({accepted} accepted at {report.ValidationPrecision:P1} precision), so the precision on new images may differ. Use a larger validation split or a validation folder with {ReliableThresholdImages} or more images.");
        }
    }

    /// <summary>
    /// Fits T in [<see cref="MinimumTemperature"/>, <see cref="MaximumTemperature"/>] that minimises the mean negative
    /// log-likelihood of softmax(logits / T), by golden-section search over log T. The likelihood is convex in 1/T, so it
    /// has one minimum over log T and the search finds it (or the nearer bound).
    /// </summary>
    public static double FitTemperature(IReadOnlyList<double[]> logits, IReadOnlyList<int> labels)
    {
        CheckLengths(logits.Count, labels.Count);
        var phi = (Math.Sqrt(5) - 1) / 2;
        double lo = Math.Log(MinimumTemperature), hi = Math.Log(MaximumTemperature);
        var a = hi - (phi * (hi - lo));
        var b = lo + (phi * (hi - lo));
        var fa = NegativeLogLikelihood(logits, labels, Math.Exp(a));
        var fb = NegativeLogLikelihood(logits, labels, Math.Exp(b));
        for (var step = 0; step < GoldenSectionSteps; step++)
        {
            if (fa <= fb)
            {
                hi = b;
                b = a;
                fb = fa;
                a = hi - (phi * (hi - lo));
                fa = NegativeLogLikelihood(logits, labels, Math.Exp(a));
            }
            else
            {
                lo = a;
                a = b;
                fa = fb;
                b = lo + (phi * (hi - lo));
                fb = NegativeLogLikelihood(logits, labels, Math.Exp(b));
            }
        }

        return Math.Clamp(Math.Exp((lo + hi) / 2), MinimumTemperature, MaximumTemperature);
    }

    /// <summary>The mean of <c>-ln softmax(logits / T)[label]</c>, computed with log-sum-exp in double precision.</summary>
    public static double NegativeLogLikelihood(IReadOnlyList<double[]> logits, IReadOnlyList<int> labels, double temperature)
    {
        CheckLengths(logits.Count, labels.Count);
        double total = 0;
        for (var n = 0; n < logits.Count; n++)
        {
            var l = logits[n];
            var max = l.Max();
            double sum = 0;
            foreach (var v in l)
            {
                sum += Math.Exp((v - max) / temperature);
            }

            total += Math.Log(sum) - ((l[labels[n]] - max) / temperature);
        }

        return total / logits.Count;
    }

    /// <summary>
    /// The expected calibration error: the images are put in <see cref="CalibrationErrorBins"/> equal-width bins by their
    /// top probability, and the gaps between each bin's accuracy and its mean top probability are averaged, weighted by the
    /// bin's share of the images.
    /// </summary>
    public static double ExpectedCalibrationError(IReadOnlyList<float> topProbabilities, IReadOnlyList<bool> correct)
    {
        CheckLengths(topProbabilities.Count, correct.Count);
        var count = new int[CalibrationErrorBins];
        var confidence = new double[CalibrationErrorBins];
        var hits = new int[CalibrationErrorBins];
        for (var i = 0; i < topProbabilities.Count; i++)
        {
            var bin = Math.Clamp((int)(topProbabilities[i] * CalibrationErrorBins), 0, CalibrationErrorBins - 1);
            count[bin]++;
            confidence[bin] += topProbabilities[i];
            hits[bin] += correct[i] ? 1 : 0;
        }

        double error = 0;
        for (var b = 0; b < CalibrationErrorBins; b++)
        {
            if (count[b] > 0)
            {
                error += Math.Abs(((double)hits[b] / count[b]) - (confidence[b] / count[b])) * count[b];
            }
        }

        return error / topProbabilities.Count;
    }

    /// <summary>
    /// Chooses the "unknown" threshold: the lowest validation top probability t such that the images with a top
    /// probability of at least t are right at least <paramref name="target"/> of the time. When no t reaches the target,
    /// the t with the highest precision (the lowest such t on ties) is chosen and <see cref="ThresholdChoice.TargetReached"/>
    /// is <see langword="false"/>.
    /// </summary>
    public static ThresholdChoice ChooseThreshold(IReadOnlyList<float> topProbabilities, IReadOnlyList<bool> correct, double target)
    {
        CheckLengths(topProbabilities.Count, correct.Count);
        var order = Enumerable.Range(0, topProbabilities.Count).OrderByDescending(i => topProbabilities[i]).ToArray();
        ThresholdChoice? reached = null;
        ThresholdChoice? best = null;
        var accepted = 0;
        var right = 0;
        for (var i = 0; i < order.Length; i++)
        {
            accepted++;
            right += correct[order[i]] ? 1 : 0;

            // Images with the same probability are accepted or refused together.
            if (i + 1 < order.Length && topProbabilities[order[i + 1]] == topProbabilities[order[i]])
            {
                continue;
            }

            var precision = (double)right / accepted;
            var choice = new ThresholdChoice(topProbabilities[order[i]], precision, (double)accepted / order.Length, accepted, precision >= target);
            if (choice.TargetReached)
            {
                reached = choice; // Lower thresholds come later: the last one that reaches the target is the lowest.
            }

            if (best is null || precision >= best.Precision)
            {
                best = choice;
            }
        }

        return reached ?? best!;
    }

    /// <summary>The top probability of softmax(logits / T) and whether its class (the first on ties, as in a prediction) is the label.</summary>
    private static (List<float> Top, List<bool> Correct) TopAndCorrect(IReadOnlyList<double[]> logits, IReadOnlyList<int> labels, double temperature)
    {
        var top = new List<float>(logits.Count);
        var correct = new List<bool>(logits.Count);
        for (var i = 0; i < logits.Count; i++)
        {
            var p = Models.ModelDefinition.Softmax(logits[i], temperature);
            var best = 0;
            for (var c = 1; c < p.Length; c++)
            {
                if (p[c] > p[best])
                {
                    best = c;
                }
            }

            top.Add(p[best]);
            correct.Add(best == labels[i]);
        }

        return (top, correct);
    }

    private static void CheckLengths(int values, int labels)
    {
        if (values != labels || values == 0)
        {
            throw new ArgumentException("Calibration needs at least one image, and one label per image.");
        }
    }

    /// <summary>A chosen threshold and what it gives on the images it was chosen on.</summary>
    /// <param name="Threshold">Top probabilities below this are "unknown".</param>
    /// <param name="Precision">The fraction of accepted images whose top class is right.</param>
    /// <param name="Coverage">The fraction of images accepted.</param>
    /// <param name="Accepted">The number of images accepted.</param>
    /// <param name="TargetReached">Whether <paramref name="Precision"/> reaches the target.</param>
    internal sealed record ThresholdChoice(float Threshold, double Precision, double Coverage, int Accepted, bool TargetReached);
}
