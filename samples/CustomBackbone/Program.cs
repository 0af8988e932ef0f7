using PretrainedKit;
using PretrainedKit.Backbones;

// Bring your own ONNX image model: declare its input/output names, input size, feature size and preprocessing.
var assets = Path.Combine(AppContext.BaseDirectory, "../../../../../assets");
var onnx = args.Length > 0 ? args[0] : Path.Combine(assets, "tiny-backbone", "tiny-cnn.onnx");
var data = args.Length > 1 ? args[1] : Path.Combine(assets, "fashion-mnist");

var backbone = Backbone.FromOnnx(onnx, new BackboneDefinition
{
    Id = "tiny-cnn",
    InputName = "pixels",                       // NCHW float input
    OutputName = "features",                    // [N, 8]
    InputWidth = 32,
    InputHeight = 32,
    FeatureSize = 8,
    ChannelOrder = ChannelOrder.Rgb,
    Scale = 1f / 255,                           // pixels to 0-1, then (x - mean) / std per channel
    Mean = BackboneDefinition.ImageNetMeanRgb,
    Std = BackboneDefinition.ImageNetStdRgb,
});

using var model = await ImageClassifier.Create()
    .FromFolder(Path.Combine(data, "train"))
    .WithBackbone(backbone)
    .WithSeed(1)
    .TrainAsync();
var test = await model.EvaluateAsync(Path.Combine(data, "test"));
Console.WriteLine($"{model.Backbone}: test accuracy {test.Metrics.MicroAccuracy:P1} on {test.Metrics.Count} images");

// The definition is saved in the model file, so Load needs no backbone argument while the .onnx file stays where it
// was (or sits next to the model file).
model.Save("custom-backbone.pkmodel");
using var loaded = ImageClassifier.Load("custom-backbone.pkmodel");
Console.WriteLine($"Reloaded with {loaded.Backbone.Definition.InputName} {loaded.Backbone.InputWidth}x{loaded.Backbone.InputHeight} -> {loaded.Backbone.FeatureSize} features");
