using PretrainedKit.Backbones;
using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Training;

namespace PretrainedKit.Tests;

public class Scratch
{
    [Test]
    public async Task Tune()
    {
        using var session = BackboneSession.Open(KnownBackbones.ResNet18);
        var root = "/work/main/assets/fashion-mnist/";
        var tr = DatasetScanner.ScanFolder(root + "train");
        var te = DatasetScanner.ScanFolder(root + "test");
        var ftr = await FeaturePipeline.RunAsync(session, tr.Images.Select(i => i.Path).ToList(), Imaging.ImagePreprocessingOptions.Default, null, default);
        var fte = await FeaturePipeline.RunAsync(session, te.Images.Select(i => i.Path).ToList(), Imaging.ImagePreprocessingOptions.Default, null, default);
        var ltr = tr.Images.Select(i => tr.Classes.ToList().IndexOf(i.Label)).ToList();
        var lte = te.Images.Select(i => tr.Classes.ToList().IndexOf(i.Label)).ToList();
        foreach (var l2 in new[] { 0.01f, 0.1f, 1f, 3f, 10f, 30f, 100f })
        {
            var (head, _, _) = HeadTrainer.Train(ftr.Features.Select(f => f!).ToList(), ltr, 10, ImageClassifierOptions.Default with { L2Regularization = l2 }, default);
            var m = ClassificationMetrics.Compute(tr.Classes, lte, fte.Features.Select(f => (IReadOnlyList<float>)head.Probabilities(f!)).ToList());
            TestContext.Out.WriteLine($"l2 {l2}: acc {m.MicroAccuracy:F3} logloss {m.LogLoss:F3}");
        }
    }
}
