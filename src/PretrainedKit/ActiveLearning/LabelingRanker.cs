using System.Globalization;
using PretrainedKit.Onnx;

namespace PretrainedKit.ActiveLearning;

/// <summary>
/// The arithmetic of labelling suggestions (pure: no image read, nothing trained): uncertainty from calibrated
/// probabilities, likely unknowns from the distance to the nearest labelled embedding, and an uncertainty-weighted greedy
/// k-center choice over the most uncertain candidates. <c>ImageClassifierModel.SuggestLabelsAsync</c> and the
/// active-learning experiment both call <see cref="Rank"/>.
/// </summary>
internal static class LabelingRanker
{
    /// <summary>The most candidates the diverse choice compares pairwise; asking for more suggestions than this ranks by uncertainty alone.</summary>
    public const int MaxCandidates = 4096;

    /// <summary>The fewest unlabelled images whose distances make a robust scale for "likely unknown".</summary>
    public const int MinImagesForUnknowns = 20;

    private const int Block = 1024;

    /// <summary>Ranks unlabelled images.</summary>
    /// <param name="paths">The images (names in the result).</param>
    /// <param name="probabilities">Each image's calibrated probabilities.</param>
    /// <param name="embeddings">Each image's embedding (length 1).</param>
    /// <param name="references">Embeddings of labelled images (and kernel centres), length 1; may be empty.</param>
    /// <param name="classes">The class names.</param>
    /// <param name="options">The options.</param>
    /// <returns>The suggestions, the likely unknowns and the typical candidate spacing.</returns>
    public static (List<LabelingSuggestion> Suggestions, List<LikelyUnknownImage> Unknown, double? TypicalDistance) Rank(
        IReadOnlyList<string> paths,
        IReadOnlyList<float[]> probabilities,
        IReadOnlyList<float[]> embeddings,
        IReadOnlyList<float[]> references,
        IReadOnlyList<string> classes,
        LabelingSuggestionOptions options)
    {
        var n = paths.Count;
        var uncertainty = probabilities.Select(p => Uncertainty(p, options.Uncertainty)).ToArray();
        var nearest = references.Count > 0 ? NearestSimilarity(embeddings, references) : null;

        // Likely unknown: the distance to the nearest labelled image is an outlier among the unlabelled images.
        var unknown = new List<LikelyUnknownImage>();
        var isUnknown = new bool[n];
        if (nearest is not null && n >= MinImagesForUnknowns)
        {
            var distances = nearest.Select(s => 1.0 - s).ToArray();
            var median = Median(distances);
            var mad = 1.4826 * Median(distances.Select(d => Math.Abs(d - median)).ToArray());
            if (mad > 1e-9)
            {
                for (var i = 0; i < n; i++)
                {
                    var z = (distances[i] - median) / mad;
                    if (z > options.UnknownScore)
                    {
                        isUnknown[i] = true;
                        var (best, bestP, _, _) = TopTwo(probabilities[i]);
                        unknown.Add(new LikelyUnknownImage(
                            paths[i],
                            classes[best],
                            bestP,
                            nearest[i],
                            z,
                            string.Create(CultureInfo.InvariantCulture, $"far from every labelled image: similarity {nearest[i]:F2} to the nearest (typical {1 - median:F2}), z {z:F1}; the model's guess '{classes[best]}' ({bestP:P0}) is likely wrong")));
                    }
                }
            }
        }

        unknown.Sort((a, b) => b.Score.CompareTo(a.Score));
        var typicality = options.Typicality && n > 1 ? TypicalityPercentile(embeddings) : null;
        var order = Enumerable.Range(0, n).Where(i => !isUnknown[i]).OrderByDescending(i => uncertainty[i]).ThenBy(i => i).ToArray();
        var top = Math.Min(options.Top, order.Length);
        var chosen = new List<(int Index, double? Distance)>();
        double? typical = null;
        if (!options.Diversity || top == 0 || top > MaxCandidates)
        {
            chosen.AddRange(order.Take(top).Select(i => (i, nearest is null ? (double?)null : 1.0 - nearest[i])));
        }
        else
        {
            var m = (int)Math.Min(order.Length, Math.Max(top, Math.Min(MaxCandidates, (long)top * options.CandidateFactor)));
            var candidates = order.Take(m).ToArray();
            var dimension = embeddings[0].Length;
            var matrix = MatrixProduct.Rows(candidates.Select(i => embeddings[i]).ToList(), dimension);
            var similarity = MatrixProduct.MultiplyTransposed(matrix, m, matrix, m, dimension);

            // The typical spacing: the median distance of a candidate to its nearest other candidate.
            var spacing = new double[m];
            for (var a = 0; a < m; a++)
            {
                var best = double.NegativeInfinity;
                for (var b = 0; b < m; b++)
                {
                    if (a != b)
                    {
                        best = Math.Max(best, similarity[((long)a * m) + b]);
                    }
                }

                spacing[a] = m > 1 ? 1.0 - best : 1.0;
            }

            var scale = Math.Max(Median(spacing), 1e-6);
            typical = scale;
            var distance = candidates.Select(i => nearest is null ? double.PositiveInfinity : 1.0 - nearest[i]).ToArray();
            var taken = new bool[m];
            for (var k = 0; k < top; k++)
            {
                var pick = -1;
                var pickScore = double.NegativeInfinity;
                for (var a = 0; a < m; a++)
                {
                    if (!taken[a])
                    {
                        var score = uncertainty[candidates[a]] * Math.Min(1.0, distance[a] / scale) * (typicality?[candidates[a]] ?? 1);
                        if (score > pickScore)
                        {
                            pick = a;
                            pickScore = score;
                        }
                    }
                }

                taken[pick] = true;
                chosen.Add((candidates[pick], double.IsPositiveInfinity(distance[pick]) ? null : Math.Max(0, distance[pick])));
                for (var b = 0; b < m; b++)
                {
                    distance[b] = Math.Min(distance[b], 1.0 - similarity[((long)pick * m) + b]);
                }
            }
        }

        var suggestions = chosen.Select((c, r) =>
        {
            var (best, bestP, second, secondP) = TopTwo(probabilities[c.Index]);
            var why = string.Create(CultureInfo.InvariantCulture, $"{(options.Uncertainty == UncertaintyMeasure.Margin ? "margin" : "normalised entropy")} {(options.Uncertainty == UncertaintyMeasure.Margin ? bestP - secondP : uncertainty[c.Index]):F2}: unsure between '{classes[best]}' ({bestP:P0}) and '{classes[second]}' ({secondP:P0})");
            if (c.Distance is { } d)
            {
                why += string.Create(CultureInfo.InvariantCulture, $"; distance {d:F2} to the nearest labelled or already suggested image{(typical is { } t ? $" (typical spacing {t:F2})" : string.Empty)}");
            }

            return new LabelingSuggestion(r + 1, paths[c.Index], classes[best], bestP, classes[second], secondP, uncertainty[c.Index], c.Distance, why);
        }).ToList();
        return (suggestions, unknown, typical);
    }

    /// <summary>The uncertainty of one prediction, from 0 (sure) to 1.</summary>
    /// <param name="p">The calibrated probabilities.</param>
    /// <param name="measure">The measure.</param>
    /// <returns>The uncertainty.</returns>
    public static double Uncertainty(float[] p, UncertaintyMeasure measure)
    {
        if (p.Length < 2)
        {
            return 0;
        }

        if (measure == UncertaintyMeasure.Margin)
        {
            var (_, first, _, second) = TopTwo(p);
            return 1.0 - (first - second);
        }

        double entropy = 0;
        foreach (var v in p)
        {
            entropy -= v > 0 ? v * Math.Log(v) : 0;
        }

        return entropy / Math.Log(p.Length);
    }

    /// <summary>Per embedding, the percentile (0 to 1) of its mean similarity to its 10 nearest others: 1 for the most typical.</summary>
    public static double[] TypicalityPercentile(IReadOnlyList<float[]> embeddings)
    {
        const int Neighbours = 10;
        var n = embeddings.Count;
        var k = Math.Min(Neighbours, n - 1);
        var dimension = embeddings[0].Length;
        var all = MatrixProduct.Rows(embeddings, dimension);
        var density = new double[n];
        for (var start = 0; start < n; start += Block)
        {
            var rows = Math.Min(Block, n - start);
            var similarity = MatrixProduct.MultiplyTransposed(all.AsMemory(start * dimension, rows * dimension), rows, all, n, dimension);
            Parallel.For(0, rows, r =>
            {
                var row = similarity.AsSpan(r * n, n).ToArray();
                row[start + r] = float.NegativeInfinity;
                Array.Sort(row);
                double sum = 0;
                for (var j = 1; j <= k; j++)
                {
                    sum += row[n - j];
                }

                density[start + r] = sum / k;
            });
        }

        var order = Enumerable.Range(0, n).OrderBy(i => density[i]).ThenBy(i => i).ToArray();
        var percentile = new double[n];
        for (var r = 0; r < n; r++)
        {
            percentile[order[r]] = n == 1 ? 1 : (double)r / (n - 1);
        }

        return percentile;
    }

    /// <summary>The cosine similarity of each embedding to its nearest reference (blocks of rows through <see cref="MatrixProduct"/>).</summary>
    public static double[] NearestSimilarity(IReadOnlyList<float[]> embeddings, IReadOnlyList<float[]> references)
    {
        var dimension = references[0].Length;
        var refs = MatrixProduct.Rows(references, dimension);
        var result = new double[embeddings.Count];
        for (var start = 0; start < embeddings.Count; start += Block)
        {
            var rows = Math.Min(Block, embeddings.Count - start);
            var block = MatrixProduct.Rows(embeddings.Skip(start).Take(rows).ToList(), dimension);
            var similarity = MatrixProduct.MultiplyTransposed(block, rows, refs, references.Count, dimension);
            for (var r = 0; r < rows; r++)
            {
                var best = float.NegativeInfinity;
                for (var j = 0; j < references.Count; j++)
                {
                    best = Math.Max(best, similarity[((long)r * references.Count) + j]);
                }

                result[start + r] = best;
            }
        }

        return result;
    }

    private static (int Best, float BestP, int Second, float SecondP) TopTwo(float[] p)
    {
        int best = 0, second = p.Length > 1 ? 1 : 0;
        if (p.Length > 1 && p[1] > p[0])
        {
            (best, second) = (1, 0);
        }

        for (var c = 2; c < p.Length; c++)
        {
            if (p[c] > p[best])
            {
                second = best;
                best = c;
            }
            else if (p[c] > p[second])
            {
                second = c;
            }
        }

        return (best, p[best], second, p[second]);
    }

    private static double Median(double[] values)
    {
        if (values.Length == 0)
        {
            return 0;
        }

        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
