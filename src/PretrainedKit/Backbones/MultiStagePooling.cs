namespace PretrainedKit.Backbones;

/// <summary>
/// Pools stage activations into a multi-stage feature vector: per stage [sqrt(GAP) / ||.||, sqrt(GMP) / ||.||]; with the
/// grid, then per quadrant of each of the last <see cref="GridStages"/> stages sqrt(average) / ||.||.
/// </summary>
internal static class MultiStagePooling
{
    /// <summary>How many of the last stages are also pooled per quadrant in <see cref="FeatureLayout.MultiStageGrid"/>.</summary>
    public const int GridStages = 2;

    public static int FeatureSize(IReadOnlyList<BackboneStage> stages, FeatureLayout layout = FeatureLayout.MultiStage) =>
        (2 * stages.Sum(s => s.Channels)) + (layout == FeatureLayout.MultiStageGrid ? 4 * GridStagesOf(stages).Sum(s => s.Channels) : 0);

    /// <summary>Writes <paramref name="count"/> feature vectors end to end from the stage outputs (NCHW each).</summary>
    public static void Pool(IReadOnlyList<BackboneStage> stages, float[][] outputs, int count, Span<float> features, FeatureLayout layout = FeatureLayout.MultiStage)
    {
        var size = FeatureSize(stages, layout);
        var gridStages = layout == FeatureLayout.MultiStageGrid ? GridStagesOf(stages) : [];
        for (var n = 0; n < count; n++)
        {
            var offset = n * size;
            for (var s = 0; s < stages.Count; s++)
            {
                var stage = stages[s];
                var plane = stage.Height * stage.Width;
                var data = outputs[s].AsSpan(n * stage.Channels * plane, stage.Channels * plane);
                var average = features.Slice(offset, stage.Channels);
                var maximum = features.Slice(offset + stage.Channels, stage.Channels);
                for (var c = 0; c < stage.Channels; c++)
                {
                    var channel = data.Slice(c * plane, plane);
                    double sum = 0;
                    var max = float.NegativeInfinity;
                    foreach (var v in channel)
                    {
                        sum += v;
                        max = Math.Max(max, v);
                    }

                    average[c] = (float)(sum / plane);
                    maximum[c] = max;
                }

                RootAndNormalize(average);
                RootAndNormalize(maximum);
                offset += 2 * stage.Channels;
            }

            for (var g = 0; g < gridStages.Count; g++)
            {
                var stage = gridStages[g];
                var s = stages.Count - gridStages.Count + g;
                var data = outputs[s].AsSpan(n * stage.Channels * stage.Height * stage.Width, stage.Channels * stage.Height * stage.Width);
                for (var cell = 0; cell < 4; cell++)
                {
                    var block = features.Slice(offset, stage.Channels);
                    QuadrantAverage(data, stage, cell, block);
                    RootAndNormalize(block);
                    offset += stage.Channels;
                }
            }
        }
    }

    private static List<BackboneStage> GridStagesOf(IReadOnlyList<BackboneStage> stages) => stages.Skip(Math.Max(0, stages.Count - GridStages)).ToList();

    /// <summary>
    /// Averages each channel over one quadrant (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right). A quadrant spans
    /// ceil(size / 2) rows and columns, so for odd sizes the middle row and column belong to both halves.
    /// </summary>
    private static void QuadrantAverage(ReadOnlySpan<float> data, BackboneStage stage, int cell, Span<float> block)
    {
        var halfHeight = (stage.Height + 1) / 2;
        var halfWidth = (stage.Width + 1) / 2;
        var top = cell >= 2 ? stage.Height - halfHeight : 0;
        var left = cell % 2 == 1 ? stage.Width - halfWidth : 0;
        var plane = stage.Height * stage.Width;
        for (var c = 0; c < stage.Channels; c++)
        {
            double sum = 0;
            for (var y = top; y < top + halfHeight; y++)
            {
                foreach (var v in data.Slice((c * plane) + (y * stage.Width) + left, halfWidth))
                {
                    sum += v;
                }
            }

            block[c] = (float)(sum / (halfHeight * halfWidth));
        }
    }

    /// <summary>The raw global average pool of one stage, before root and norm (used by tests to compare with the backbone's own pooling).</summary>
    public static float[] AveragePool(BackboneStage stage, float[] output, int image)
    {
        var plane = stage.Height * stage.Width;
        var result = new float[stage.Channels];
        for (var c = 0; c < stage.Channels; c++)
        {
            double sum = 0;
            foreach (var v in output.AsSpan(((image * stage.Channels) + c) * plane, plane))
            {
                sum += v;
            }

            result[c] = (float)(sum / plane);
        }

        return result;
    }

    private static void RootAndNormalize(Span<float> block)
    {
        double norm = 0;
        for (var i = 0; i < block.Length; i++)
        {
            block[i] = MathF.Sqrt(Math.Max(0f, block[i]));
            norm += block[i] * block[i];
        }

        var scale = norm > 1e-12 ? (float)(1 / Math.Sqrt(norm)) : 0f;
        for (var i = 0; i < block.Length; i++)
        {
            block[i] *= scale;
        }
    }
}
