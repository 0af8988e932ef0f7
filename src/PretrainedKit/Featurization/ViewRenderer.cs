using PretrainedKit.Backbones;
using PretrainedKit.Imaging;

namespace PretrainedKit.Featurization;

/// <summary>
/// Decode once, apply each view, preprocess: the one place where an image's bytes become backbone input tensors, used
/// by the many-image pass and the single-image path alike. One instance per thread (it owns pixel buffers).
/// </summary>
internal sealed class ViewRenderer
{
    private readonly BackboneRuntime _runtime;
    private readonly ImagePreprocessingOptions _image;
    private readonly byte[] _rgb;
    private byte[]? _viewRgb;
    private bool _decoded;

    public ViewRenderer(BackboneRuntime runtime, ImagePreprocessingOptions image)
    {
        _runtime = runtime;
        _image = image;
        _rgb = new byte[runtime.RgbLength];
    }

    /// <summary>Starts on a new image: nothing is decoded until a tensor is asked for.</summary>
    public void Reset() => _decoded = false;

    /// <summary>Writes the input tensor of one view of the image, decoding the image on the first call after <see cref="Reset"/>.</summary>
    /// <param name="bytes">The encoded image.</param>
    /// <param name="path">Its path, for error messages.</param>
    /// <param name="view">The view.</param>
    /// <param name="tensor">Receives <see cref="BackboneRuntime.TensorLength"/> values.</param>
    /// <param name="cancellationToken">Stops a wait for decoding memory (see <see cref="ImageLimits.DecodeMemoryBudgetBytes"/>).</param>
    /// <exception cref="InvalidImageException">The image cannot be decoded.</exception>
    public void Render(byte[] bytes, string? path, ImageView view, Span<float> tensor, CancellationToken cancellationToken = default)
    {
        var backbone = _runtime.Backbone;
        Decode(bytes, path, cancellationToken);
        if (view == ImageView.Original)
        {
            _runtime.Preprocess(_rgb, tensor);
        }
        else
        {
            _viewRgb ??= new byte[_rgb.Length];
            ImageViews.Apply(view, _rgb, _viewRgb, backbone.InputWidth, backbone.InputHeight);
            _runtime.Preprocess(_viewRgb, tensor);
        }
    }

    /// <summary>Decodes the image unless it was decoded since <see cref="Reset"/>: a bad image fails here, before any tensor is needed.</summary>
    /// <param name="bytes">The encoded image.</param>
    /// <param name="path">Its path, for error messages.</param>
    /// <param name="cancellationToken">Stops a wait for decoding memory.</param>
    /// <exception cref="InvalidImageException">The image cannot be decoded.</exception>
    public void Decode(byte[] bytes, string? path, CancellationToken cancellationToken = default)
    {
        if (!_decoded)
        {
            var backbone = _runtime.Backbone;
            ImageDecoder.DecodeNormalized(bytes, path, _image, backbone.InputWidth, backbone.InputHeight, _rgb, cancellationToken);
            _decoded = true;
        }
    }
}
