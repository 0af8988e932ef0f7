using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using PretrainedKit.Onnx;

namespace PretrainedKit.Backbones;

/// <summary>
/// What turns a float backbone into its int8 graph besides its weights: the calibrated (min, max) of each quantised
/// activation and the integer types. With the backbone's weights it decides the quantised graph exactly
/// (<see cref="Int8Backbone.Build"/> is deterministic), so a model file stores this and not the graph.
/// </summary>
/// <param name="Ranges">Each quantised activation's name and calibrated range, in graph order.</param>
/// <param name="Types">The integer types.</param>
/// <param name="ImageCount">How many images the ranges were measured on.</param>
/// <threadsafety>Immutable; safe to share between threads.</threadsafety>
internal sealed record Int8Calibration(IReadOnlyList<Int8Range> Ranges, QuantizedTypes Types, int ImageCount)
{
    /// <summary>The most training images a calibration pass reads.</summary>
    public const int MaxImages = 300;

    /// <summary>
    /// The integer types every int8 model uses: 7-bit weights. Full 8-bit weights (U8S8) saturate in AVX2's 16-bit
    /// multiply-add on CPUs without VNNI (ResNet18 feature cosine to float 0.82 instead of 0.99, bench/results), and U8U8
    /// is barely faster than float there; 7-bit weights are as fast as U8S8 and accurate on every CPU, so the graph is
    /// the same wherever the model is loaded.
    /// </summary>
    public const QuantizedTypes DefaultTypes = QuantizedTypes.U8S7;

    /// <summary>
    /// The share of each activation's calibration values (in percent) that new calibrations keep inside the range
    /// (<see cref="ActivationHistogram.Range"/>); 100 would be the plain (min, max). Chosen on images that no accuracy
    /// figure uses (bench/results/int8-fidelity.md): of 100, 99.999, 99.99 and 99.9, 99.99 gave the int8 features closest
    /// to float on both Fashion-MNIST and colour clip art.
    /// </summary>
    public const double DefaultPercentile = 99.99;

    /// <summary>
    /// Gets the share of each activation's calibration values (in percent) that its range was clipped to hold; 100
    /// (the default, and every calibration written before clipping existed) means the plain (min, max). It does not
    /// change how the graph is built from <see cref="Ranges"/>; it records how they were chosen, and is part of
    /// <see cref="Digest"/> when below 100.
    /// </summary>
    /// <value>The default is 100.</value>
    public double Percentile { get; init; } = 100;

    /// <summary>The calibration of a pass's statistics, each range clipped at <paramref name="percentile"/>.</summary>
    /// <param name="statistics">The statistics.</param>
    /// <param name="percentile">The share of values kept, in percent (0, 100].</param>
    /// <returns>The calibration (validated).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="percentile"/> is outside (0, 100].</exception>
    public static Int8Calibration FromStatistics(Int8Statistics statistics, double percentile)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        var ranges = statistics.Activations.Select(a =>
        {
            var (min, max) = a.Histogram.Range(percentile);
            return new Int8Range(a.Value, min, max);
        });
        var calibration = new Int8Calibration([.. ranges], DefaultTypes, statistics.ImageCount) { Percentile = percentile };
        calibration.Validate();
        return calibration;
    }

    /// <summary>Gets a short, stable digest of the ranges, types and percentile, part of the feature-cache key of an int8 model.</summary>
    public string Digest
    {
        get
        {
            var text = new StringBuilder().Append(Types.ToString()).Append(';');
            if (Percentile < 100)
            {
                // Only for clipped ranges, so that the digests of min/max calibrations (and their cached features) stay as they were.
                text.Append("percentile=").Append(Percentile.ToString("R", CultureInfo.InvariantCulture)).Append(';');
            }

            foreach (var range in Ranges)
            {
                text.Append(range.Value).Append('=')
                    .Append(BitConverter.SingleToInt32Bits(range.Min).ToString("x8", CultureInfo.InvariantCulture)).Append(',')
                    .Append(BitConverter.SingleToInt32Bits(range.Max).ToString("x8", CultureInfo.InvariantCulture)).Append(';');
            }

            return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..16].ToLowerInvariant();
        }
    }

    /// <summary>Gets the ranges by activation name.</summary>
    /// <returns>A dictionary of (min, max).</returns>
    public IReadOnlyDictionary<string, (float Min, float Max)> ToDictionary() =>
        Ranges.ToDictionary(r => r.Value, r => (r.Min, r.Max), StringComparer.Ordinal);

    /// <summary>Checks that every range is finite and ordered and the types known.</summary>
    /// <exception cref="ArgumentException">A problem, named.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Types))
        {
            throw new ArgumentException($"Unknown int8 types {Types}.");
        }

        if (!(Percentile > 0 && Percentile <= 100))
        {
            throw new ArgumentException($"The int8 calibration percentile {Percentile} is outside (0, 100].");
        }

        if (Ranges.Count == 0 || ImageCount < 1)
        {
            throw new ArgumentException("An int8 calibration needs at least one range and one image.");
        }

        foreach (var range in Ranges)
        {
            if (string.IsNullOrEmpty(range.Value) || !float.IsFinite(range.Min) || !float.IsFinite(range.Max) || range.Min > range.Max)
            {
                throw new ArgumentException($"The int8 range of '{range.Value}' ({range.Min}, {range.Max}) is not a finite, ordered pair.");
            }
        }
    }
}

/// <summary>One quantised activation's calibrated range.</summary>
/// <param name="Value">The ONNX value name.</param>
/// <param name="Min">The smallest value kept (the smallest seen when <see cref="Int8Calibration.Percentile"/> is 100).</param>
/// <param name="Max">The largest value kept (the largest seen when <see cref="Int8Calibration.Percentile"/> is 100).</param>
internal sealed record Int8Range(string Value, float Min, float Max);
