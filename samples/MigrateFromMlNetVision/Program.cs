// ML.NET's image-classification tutorial ("automated visual inspection using transfer learning", which trains
// ImageClassificationTrainer on a folder of labelled images) rewritten on PretrainedKit, step by step. README.md puts the
// two side by side.
//
//   dotnet run --project samples/MigrateFromMlNetVision            # assets/fashion-mnist/train, one sub-folder per class
//   dotnet run --project samples/MigrateFromMlNetVision -- FOLDER  # any folder with one sub-folder per class
using Microsoft.ML;
using Microsoft.ML.Data;
using PretrainedKit;
using PretrainedKit.Data;

var assets = args.Length > 0 ? args[0] : Path.Combine(FindRepositoryRoot(), "assets", "fashion-mnist", "train");

// 1. LoadImagesFromDirectory(folder, useFolderNameAsLabel: true): the folder name is the label.
var images = LoadImagesFromDirectory(assets);

// 2. ShuffleRows + two TrainTestSplits (70 % train, 15 % validation, 15 % test), with a fixed seed.
var random = new Random(1);
var shuffled = images.OrderBy(_ => random.Next()).ToList();
var trainCount = (int)(shuffled.Count * 0.7);
var validationCount = (int)(shuffled.Count * 0.15);
var trainSet = shuffled.Take(trainCount).ToList();
var validationSet = shuffled.Skip(trainCount).Take(validationCount).ToList();
var testSet = shuffled.Skip(trainCount + validationCount).ToList();

// 3. ImageClassificationTrainer.Options + Fit. No MapValueToKey, no LoadRawImageBytes, no Arch/Epoch/BatchSize/LearningRate
//    to choose: the pretrained backbone computes features once (cached on disk: ReuseTrainSetBottleneckCachedValues), and
//    the final layer is fitted to convergence on them. MetricsCallback becomes an IProgress.
using var model = await ImageClassifier.Create()
    .FromImages(trainSet)
    .WithValidationImages(validationSet)
    .WithSeed(1)
    .TrainAsync(new Progress<PretrainedKit.Training.TrainingProgress>(p => Console.WriteLine($"  {p.Phase}: {p.Completed}/{p.Total}")));
var report = model.TrainingReport!;
Console.WriteLine($"Trained on {report.ImagesUsed} images (training and validation); training-set accuracy {report.TrainingMetrics?.MicroAccuracy:P1}, validation {report.ValidationMetrics?.MicroAccuracy:P1}");

// 4. ClassifySingleImage: the tutorial makes a PredictionEngine; a PretrainedKit model predicts directly, from any thread.
var first = testSet[0];
var single = model.Predict(first.Path);
Console.WriteLine($"Image: {Path.GetFileName(first.Path)} | Actual value: {first.Label} | Predicted value: {single.Label} ({single.Probability:P1})");

// 5. ClassifyImages: the tutorial transforms the test IDataView; here, an evaluation of the test list (ML.NET's metric
//    names) and a batch prediction that returns one result per image, bad ones included.
var evaluation = await model.EvaluateAsync(testSet);
Console.WriteLine($"Test: MicroAccuracy {evaluation.Metrics.MicroAccuracy:P1}, MacroAccuracy {evaluation.Metrics.MacroAccuracy:P1}, LogLoss {evaluation.Metrics.LogLoss:F3}, LogLossReduction {evaluation.Metrics.LogLossReduction:F3}");
foreach (var result in model.PredictBatch(testSet.Take(3).Select(i => i.Path)))
{
    Console.WriteLine(result.Succeeded
        ? $"Image: {Path.GetFileName(result.Path)} | Predicted value: {result.Prediction!.Label}"
        : $"Image: {Path.GetFileName(result.Path)} | {result.Error!.Message}");
}

// 6. The same model inside an ML.NET pipeline, for code that already passes IDataViews around: LoadRawImageBytes gives
//    the byte column the tutorial uses, and ClassifyImages adds PredictedLabel and Score.
var mlContext = new MLContext(seed: 1);
var testData = mlContext.Data.LoadFromEnumerable(testSet.Select(i => new ImageData { ImagePath = i.Path, Label = i.Label }));
var pipeline = mlContext.Transforms.LoadRawImageBytes(outputColumnName: "Image", imageFolder: null, inputColumnName: nameof(ImageData.ImagePath))
    .Append(mlContext.Transforms.ClassifyImages(model, inputColumnName: "Image"));
var predicted = pipeline.Fit(testData).Transform(testData).GetColumn<string>("PredictedLabel").ToList();
var right = predicted.Zip(testSet).Count(p => p.First == p.Second.Label);
Console.WriteLine($"ML.NET pipeline (LoadRawImageBytes -> ClassifyImages): {right} of {testSet.Count} test images right");
return 0;

static List<LabeledImage> LoadImagesFromDirectory(string folder) =>
    Directory.GetDirectories(folder).Order(StringComparer.Ordinal)
        .SelectMany(d => Directory.GetFiles(d).Order(StringComparer.Ordinal).Where(f => Path.GetExtension(f) is ".png" or ".jpg" or ".jpeg").Select(f => new LabeledImage(f, Path.GetFileName(d))))
        .ToList();

static string FindRepositoryRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "PretrainedKit.sln")))
        {
            return dir.FullName;
        }
    }

    throw new DirectoryNotFoundException("Run from inside the repository, or give a folder with one sub-folder per class.");
}

/// <summary>The tutorial's input row.</summary>
internal sealed class ImageData
{
    public string ImagePath { get; set; } = string.Empty;

    public string Label { get; set; } = string.Empty;
}
