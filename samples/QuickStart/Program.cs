using PretrainedKit;

// Train on a folder with one sub-folder per class (default: the bundled Fashion-MNIST subset).
var root = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "../../../../../assets/fashion-mnist");

using var model = await ImageClassifier.Create()
    .FromFolder(Path.Combine(root, "train"))
    .WithValidationSplit(0.2)
    .WithSeed(42)
    .TrainAsync();

var test = await model.EvaluateAsync(Path.Combine(root, "test"));
Console.WriteLine($"Test accuracy: {test.Metrics.MicroAccuracy:P1} on {test.Metrics.Count} images");

model.Save("quickstart.pkmodel");
using var loaded = ImageClassifier.Load("quickstart.pkmodel");
var image = Directory.EnumerateFiles(Path.Combine(root, "test"), "*.png", SearchOption.AllDirectories).First();
var prediction = loaded.Predict(image, topK: 3);
Console.WriteLine($"{Path.GetFileName(image)}: " + string.Join(", ", prediction.TopK.Select(p => $"{p.Label} {p.Probability:P1}")));
