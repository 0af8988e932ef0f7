namespace PretrainedKit.Backbones;

/// <summary>Pools stage activations into a multi-stage feature vector: per stage [sqrt(GAP) / ||.||, sqrt(GMP) / ||.||].</summary>
internal static class MultiStagePooling
{
    public static int FeatureSize(IReadOnlyList<BackboneStage> stages) => 2 * stages.Sum(s => s.Channels);

    /// <summary>Writes <paramref name="count"/> feature vectors end to end from the stage outputs (NCHW each).</summary>
    public static void Pool(IReadOnlyList<BackboneStage> stages, float[][] outputs, int count, Span<float> features)
    {
        var size = FeatureSize(stages);
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
