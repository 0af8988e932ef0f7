using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using PretrainedKit.Backbones;
using PretrainedKit.Imaging;
using PretrainedKit.Models;

namespace PretrainedKit.Search;

/// <summary>
/// What decides an embedding besides the image: the backbone and its weights, the feature layout, the image options and
/// the head's scaling (none for a backbone on its own). Embeddings of two spaces cannot be compared.
/// </summary>
/// <param name="BackboneId">The backbone's id.</param>
/// <param name="WeightsSha256">The SHA-256 of the backbone weights.</param>
/// <param name="Layout">The feature layout.</param>
/// <param name="Image">How images are decoded and normalised.</param>
/// <param name="Scaling">The head's scaling, or <see langword="null"/> for raw features.</param>
/// <param name="Int8Digest">For an int8 model's embeddings, the digest of its calibrated integer backbone; <see langword="null"/> for float features.</param>
internal sealed record EmbeddingSpace(string BackboneId, string WeightsSha256, FeatureLayout Layout, ImagePreprocessingOptions Image, FeatureScaling? Scaling, string? Int8Digest = null)
{
    /// <summary>Gets the identifier: readable parts, then a hash of everything (the scaling's numbers and an int8 backbone's digest included; float ids are as before int8 existed).</summary>
    public string Id { get; } = MakeId(BackboneId, WeightsSha256, Layout, Image, Scaling, Int8Digest);

    private static string MakeId(string backboneId, string weightsSha256, FeatureLayout layout, ImagePreprocessingOptions image, FeatureScaling? scaling, string? int8Digest)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{backboneId}|{weightsSha256.ToUpperInvariant()}|{layout}|{image.Background}|{image.ResizeMode}|{image.MaxPixels}");
        if (int8Digest is not null)
        {
            text.Append("|int8=").Append(int8Digest);
        }

        var suffix = "raw";
        if (scaling is not null)
        {
            var bytes = new byte[(scaling.Mean.Length + scaling.Scale.Length) * sizeof(float)];
            Buffer.BlockCopy(scaling.Mean, 0, bytes, 0, scaling.Mean.Length * sizeof(float));
            Buffer.BlockCopy(scaling.Scale, 0, bytes, scaling.Mean.Length * sizeof(float), scaling.Scale.Length * sizeof(float));
            suffix = $"{scaling.Kind}-{Convert.ToHexString(SHA256.HashData(bytes))[..16]}";
        }

        text.Append('|').Append(suffix);
        return $"{backboneId}/{layout}/{suffix}/{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..16]}";
    }
}
