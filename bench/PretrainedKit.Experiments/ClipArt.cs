using PretrainedKit.Models;
using PretrainedKit.Imaging;
using PretrainedKit.Training;

namespace PretrainedKit.Experiments;

/// <summary>
/// A colour check of the same methods: six topics of Debian's openclipart-png (CC0 clip art with transparency, composited
/// onto white), 40 images per topic, 10 per topic to train and the rest to test, over seeded draws. Clip art is not
/// photographs, but it is the colour image set this machine has; it guards the defaults against a Fashion-MNIST-only win.
/// </summary>
internal static class ClipArt
{
    public const string Source = "/usr/share/openclipart/png";
    public const int PerClass = 40;
    public const int TrainPerClass = 10;
    private static readonly string[] Topics = ["animals/mammals", "animals/birds", "animals/bugs", "food/fruit", "food/desserts", "transportation/vehicles"];

    public static List<ResultRow> Run(BothFeaturizer featurizer, string work, int draws)
    {
        if (!Directory.Exists(Source))
        {
            Console.WriteLine($"Clip-art check skipped: {Source} is missing (sudo apt-get install openclipart-png).");
            return [];
        }

        // The first 40 usable files of each topic in name order, so every run uses the same images. Files the library
        // refuses (for example a 10524x16000 apple, over the default pixel limit) are skipped and named, as training would.
        var files = Topics.Select(t => Directory.GetFiles(Path.Combine(Source, t), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Where(Usable).Take(PerClass).ToArray()).ToArray();
        var keyed = new Dictionary<int, string>();
        for (var c = 0; c < Topics.Length; c++)
        {
            for (var i = 0; i < files[c].Length; i++)
            {
                keyed[(c * 1000) + i] = files[c][i];
            }
        }

        var features = featurizer.Featurize(Path.GetFullPath(work), keyed);
        var rows = new List<ResultRow>();
        for (var d = 0; d < draws; d++)
        {
            var random = new Random(2000 + d);
            var train = new List<int>();
            var test = new List<int>();
            for (var c = 0; c < Topics.Length; c++)
            {
                var keys = Enumerable.Range(0, files[c].Length).Select(i => (c * 1000) + i).ToArray();
                random.Shuffle(keys);
                train.AddRange(keys.Take(TrainPerClass));
                test.AddRange(keys.Skip(TrainPerClass));
            }

            var y = train.Select(k => k / 1000).ToList();
            var testLabels = test.Select(k => k / 1000).ToArray();
            var testFeatures = test.Select((k, i) => (i, features[k])).ToDictionary(t => t.i, t => t.Item2);
            rows.Add(Methods.OursPooled(TrainPerClass, d, train.Select(k => features[k].Pooled[0]).ToList(), y, testFeatures, testLabels, Topics.Length));
            rows.Add(Methods.OursMultiStage(TrainPerClass, d, train.Select(k => features[k].MultiStage(0)).ToList(), y, testFeatures, testLabels, Topics.Length));
            rows.Add(Methods.Levers(TrainPerClass, d, train.Select(k => features[k]).ToList(), y, test.Select(k => features[k]).ToList(), testLabels, Topics.Length));
            rows.Add(Methods.Levers(TrainPerClass, d, train.Select(k => features[k]).ToList(), y, test.Select(k => features[k]).ToList(), testLabels, Topics.Length, autoRegularization: true));
            rows.Add(Methods.Levers(TrainPerClass, d, train.Select(k => features[k]).ToList(), y, test.Select(k => features[k]).ToList(), testLabels, Topics.Length, head: HeadKind.Kernel));
            Console.WriteLine("clip art: " + string.Join("  ", rows.TakeLast(5).Select(r => $"{r.Method}#{d}={r.Accuracy:F3}")));
        }

        return rows;
    }

    public static bool Usable(string path)
    {
        try
        {
            ImageDecoder.Probe(ImageDecoder.ReadFile(path), path, ImagePreprocessingOptions.Default);
            return true;
        }
        catch (InvalidImageException ex)
        {
            Console.WriteLine($"clip art: skipped {ex.Message}");
            return false;
        }
    }

    public static string Describe() => $"{Topics.Length} openclipart-png topics ({string.Join(", ", Topics)}), {PerClass} images each, {TrainPerClass} per topic to train, {PerClass - TrainPerClass} to test";
}
