using System.Numerics.Tensors;

namespace PretrainedKit.Backbones;

/// <summary>
/// The distribution of one activation over a calibration pass, kept small and exact enough to clip its range at a
/// percentile: the exact minimum and maximum, and a histogram of <see cref="Bins"/> bins for each sign over
/// [0, limit], where the limit is a power of two that doubles (adjacent bins merged, so that no value changes bin
/// boundary) whenever a larger magnitude arrives. The same values in the same order always give the same histogram.
/// </summary>
/// <threadsafety>Not thread-safe: one calibration pass fills it.</threadsafety>
internal sealed class ActivationHistogram
{
    /// <summary>The number of bins on each side of zero.</summary>
    public const int Bins = 2048;

    private readonly long[] _positive = new long[Bins];
    private readonly long[] _negative = new long[Bins];
    private float _limit;

    /// <summary>Gets the smallest value seen (positive infinity before any).</summary>
    public float Min { get; private set; } = float.PositiveInfinity;

    /// <summary>Gets the largest value seen (negative infinity before any).</summary>
    public float Max { get; private set; } = float.NegativeInfinity;

    /// <summary>Gets how many values were added.</summary>
    public long Count { get; private set; }

    /// <summary>Adds values.</summary>
    /// <param name="values">The values; all finite.</param>
    /// <exception cref="ArgumentException">A value is not finite.</exception>
    public void Add(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        var min = TensorPrimitives.Min(values);
        var max = TensorPrimitives.Max(values);
        if (!float.IsFinite(min) || !float.IsFinite(max))
        {
            throw new ArgumentException("An activation holds a value that is not finite; the backbone cannot be calibrated on this input.", nameof(values));
        }

        Min = Math.Min(Min, min);
        Max = Math.Max(Max, max);
        Count += values.Length;
        var magnitude = Math.Max(-min, max);
        if (magnitude <= 0)
        {
            return; // All zeros: counted, in no bin.
        }

        if (_limit == 0)
        {
            _limit = 1f;
            while (_limit < magnitude)
            {
                _limit *= 2;
            }

            while (_limit / 2 >= magnitude)
            {
                _limit /= 2;
            }
        }

        while (magnitude > _limit)
        {
            Double(_positive);
            Double(_negative);
            _limit *= 2;
        }

        var scale = Bins / _limit;
        foreach (var v in values)
        {
            if (v > 0)
            {
                _positive[Math.Min((int)(v * scale), Bins - 1)]++;
            }
            else if (v < 0)
            {
                _negative[Math.Min((int)(-v * scale), Bins - 1)]++;
            }
        }
    }

    /// <summary>
    /// The range that leaves out the most extreme values: on each side at most <c>(100 - percentile) / 200</c> of all the
    /// values (ONNX Runtime's percentile calibration cuts the same share on each side), never wider than (min, max).
    /// </summary>
    /// <param name="percentile">The share of values kept, in percent (0, 100]; 100 gives the exact (min, max).</param>
    /// <returns>The clipped (min, max).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="percentile"/> is outside (0, 100].</exception>
    /// <exception cref="InvalidOperationException">No value was added.</exception>
    public (float Min, float Max) Range(double percentile)
    {
        if (!(percentile > 0 && percentile <= 100))
        {
            throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "The percentile must be in (0, 100].");
        }

        if (Count == 0)
        {
            throw new InvalidOperationException("No value was added to the histogram.");
        }

        if (percentile >= 100 || _limit == 0)
        {
            return (Min, Max);
        }

        var cut = (long)Math.Floor(Count * (100 - percentile) / 200);
        return (Math.Max(Min, -Edge(_negative, cut)), Math.Min(Max, Edge(_positive, cut)));
    }

    /// <summary>The smallest bin edge with at most <paramref name="cut"/> values of the side above it.</summary>
    private float Edge(long[] side, long cut)
    {
        var above = 0L;
        for (var i = Bins - 1; i >= 0; i--)
        {
            if (above + side[i] > cut)
            {
                return (i + 1) * (_limit / Bins);
            }

            above += side[i];
        }

        return 0;
    }

    private static void Double(long[] side)
    {
        for (var i = 0; i < Bins / 2; i++)
        {
            side[i] = side[2 * i] + side[(2 * i) + 1];
        }

        Array.Clear(side, Bins / 2, Bins / 2);
    }
}
