using System.Diagnostics;
using System.Globalization;
using System.Text;
using PretrainedKit.Backbones;
using PretrainedKit.Imaging;
using PretrainedKit.Models;
using PretrainedKit.Training;

namespace PretrainedKit.Experiments;

/// <summary>One dataset of the automatic-lever evidence: features per image (both views), labels, and per draw a train/test split.</summary>
internal sealed record EvidenceSet(string Name, string Description, IReadOnlyList<string> Classes, IReadOnlyList<(int PerClass, int Draw, int[] Train, int[] Test)> Draws, Func<int, Features> FeaturesOf, Func<int, int> LabelOf);

/// <summary>One fixed combination of levers compared with automatic choice.</summary>
internal sealed record FixedCombination(string Name, FeatureLayout Layout, TrainingAugmentation Augmentation, TestTimeAugmentation TestTime, HeadOptions Head);

/// <summary>One result row of the automatic-lever evidence.</summary>
internal sealed record AutoRow(string Dataset, int PerClass, int Draw, string Method, double Accuracy, double MacroAccuracy, double SearchSeconds, double HeadSeconds, string Chosen);

/// <summary>
/// Issue #14's evidence: automatic lever choice (the new default) against the old default (pooled features, linear
/// head, L2 = 10) and fixed lever combinations, on Fashion-MNIST (official 10k test) and colour clip-art sets with
/// transparency and uneven classes (a held-out part per draw). The candidates, their grids and the selection rule were
/// fixed before this ran; the test parts decide nothing.
/// </summary>
internal static class AutoLevers
{
    public static readonly FixedCombination[] Combinations =
    [
        new("old-default (Pooled, linear L2 10)", FeatureLayout.Pooled, TrainingAugmentation.None, TestTimeAugmentation.None, LinearHeadOptions.Default),
        new("MultiStage, linear", FeatureLayout.MultiStage, TrainingAugmentation.None, TestTimeAugmentation.None, LinearHeadOptions.Default),
        new("MultiStage, mirror+TTA, linear", FeatureLayout.MultiStage, TrainingAugmentation.Mirror, TestTimeAugmentation.Mirror, LinearHeadOptions.Default),
        new("MultiStage, mirror+TTA, kernel", FeatureLayout.MultiStage, TrainingAugmentation.Mirror, TestTimeAugmentation.Mirror, KernelHeadOptions.Default),
        new("Grid, kernel", FeatureLayout.MultiStageGrid, TrainingAugmentation.None, TestTimeAugmentation.None, KernelHeadOptions.Default),
        new("Grid, mirror+TTA, linear", FeatureLayout.MultiStageGrid, TrainingAugmentation.Mirror, TestTimeAugmentation.Mirror, LinearHeadOptions.Default),
        new("Grid, mirror+TTA, kernel", FeatureLayout.MultiStageGrid, TrainingAugmentation.Mirror, TestTimeAugmentation.Mirror, KernelHeadOptions.Default),
        new("Grid, mirror+TTA, ridge", FeatureLayout.MultiStageGrid, TrainingAugmentation.Mirror, TestTimeAugmentation.Mirror, RidgeHeadOptions.Default),
    ];

    public const string Auto = "auto (new default)";

    /// <summary>
    /// The seed base of the colour sets' train/held-out splits. The first run (rule 1: one standard error of the best
    /// candidate's mean) used 3000; its results (bench/results/auto-levers-colour-rule1.md) led to the paired rule, so
    /// the run that reports the paired rule draws new splits from 4000, which nobody had looked at.
    /// </summary>
    public const int SplitSeed = 4000;

    public static List<AutoRow> Run(EvidenceSet set)
    {
        var rows = new List<AutoRow>();
        var stages = KnownBackbones.ResNet18.Stages;
        foreach (var (perClass, draw, train, test) in set.Draws)
        {
            var labels = train.Select(set.LabelOf).ToList();
            var testLabels = test.Select(set.LabelOf).ToArray();
            var classCount = set.Classes.Count;

            // Automatic choice, exactly as TrainingRun does it: search on the training features, then train the chosen head.
            var options = ImageClassifierOptions.Default with { Seed = draw };
            var space = LeverSearch.SpaceFor(options, backboneHasStages: true);
            var sw = Stopwatch.StartNew();
            var report = LeverSearch.Run(train.Select(i => set.FeaturesOf(i).Grid).ToList(), labels, classCount, space, stages, options.ClassWeighting, options.Seed, null, CancellationToken.None);
            var searchSeconds = sw.Elapsed.TotalSeconds;
            var c = report.Chosen ?? throw new InvalidOperationException($"The search was skipped on {set.Name}: {report.Reason}");
            var chosen = new FixedCombination(Auto, c.FeatureLayout, c.Augmentation, c.TestTimeAugmentation, c.Head);
            rows.Add(Evaluate(set, perClass, draw, train, test, labels, testLabels, chosen, options) with { SearchSeconds = searchSeconds, Chosen = c.Description });
            foreach (var combination in Combinations)
            {
                rows.Add(Evaluate(set, perClass, draw, train, test, labels, testLabels, combination, options));
            }

            Console.WriteLine($"{set.Name} {perClass}#{draw}: auto {rows[^(Combinations.Length + 1)].MacroAccuracy:F3} (search {searchSeconds:F1} s: {c.Description}); old default {rows[^Combinations.Length].MacroAccuracy:F3}; best fixed {rows.TakeLast(Combinations.Length).Max(r => r.MacroAccuracy):F3}");
        }

        return rows;
    }

    /// <summary>The outputs (uncalibrated logits) of one combination's head on each test image, and the seconds its training took.</summary>
    internal static (double[][] Outputs, double HeadSeconds) Outputs(EvidenceSet set, int[] train, int[] test, List<int> labels, FixedCombination combination, ImageClassifierOptions baseOptions)
    {
        var stages = KnownBackbones.ResNet18.Stages;
        var length = combination.Layout == FeatureLayout.Pooled ? 512 : MultiStagePooling.FeatureSize(stages, combination.Layout);
        float[] Slice(Features f, int view) => combination.Layout == FeatureLayout.Pooled ? f.Pooled[view] : f.Grid[view][..length];
        float[][] Views(Features f, bool mirror) => mirror ? [Slice(f, 0), Slice(f, 1)] : [Slice(f, 0)];
        var options = baseOptions with { FeatureLayout = combination.Layout, Augmentation = combination.Augmentation, TestTimeAugmentation = combination.TestTime, Head = combination.Head };
        var sw = Stopwatch.StartNew();
        var fit = HeadTrainer.Train(train.Select(i => Views(set.FeaturesOf(i), combination.Augmentation == TrainingAugmentation.Mirror)).ToList(), labels, set.Classes.Count, options, CancellationToken.None);
        var headSeconds = sw.Elapsed.TotalSeconds;
        var outputs = new double[test.Length][];
        Parallel.For(0, test.Length, i => outputs[i] = fit.Head.Logits(Views(set.FeaturesOf(test[i]), combination.TestTime == TestTimeAugmentation.Mirror)));
        return (outputs, headSeconds);
    }

    /// <summary>Accuracy and macro accuracy (mean per-class accuracy over the classes present) of the highest output per image.</summary>
    internal static (double Accuracy, double Macro) Score(double[][] outputs, int[] actual, int classCount) =>
        ActiveLearningExperiment.Score([.. outputs.Select(o => Array.IndexOf(o, o.Max()))], actual, classCount);

    internal static AutoRow Evaluate(EvidenceSet set, int perClass, int draw, int[] train, int[] test, List<int> labels, int[] testLabels, FixedCombination combination, ImageClassifierOptions baseOptions)
    {
        var (outputs, headSeconds) = Outputs(set, train, test, labels, combination, baseOptions);
        var (accuracy, macro) = Score(outputs, testLabels, set.Classes.Count);
        return new AutoRow(set.Name, perClass, draw, combination.Name, accuracy, macro, 0, headSeconds, string.Empty);
    }

    /// <summary>Writes the CSV, the markdown summary (mean and sd per method, the best fixed combination, auto's gap) and the plot.</summary>
    public static void Write(List<AutoRow> rows, string outDir, string machine)
    {
        var csv = new StringBuilder("dataset,perClass,draw,method,accuracy,macroAccuracy,searchSeconds,headSeconds,chosen\n");
        foreach (var r in rows)
        {
            csv.AppendLine(CultureInfo.InvariantCulture, $"{r.Dataset},{r.PerClass},{r.Draw},\"{r.Method}\",{r.Accuracy:F4},{r.MacroAccuracy:F4},{r.SearchSeconds:F2},{r.HeadSeconds:F2},\"{r.Chosen}\"");
        }

        File.WriteAllText(Path.Combine(outDir, "auto-levers.csv"), csv.ToString());
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# Automatic lever choice: evidence ({DateTime.UtcNow:yyyy-MM-dd}, {machine})");
        md.AppendLine();
        md.AppendLine("Macro accuracy (mean per-class accuracy; equals accuracy on balanced Fashion-MNIST) on the held-out part, mean +/- sd over draws. `bench/PretrainedKit.Experiments -- --auto`.");
        md.AppendLine();
        md.AppendLine("| Dataset | Per class | Draws | Auto | Old default | Best fixed combination | Auto - best fixed | Auto - old default (old default's sd) | Search s (mean / max) |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var group in rows.GroupBy(r => (r.Dataset, r.PerClass)))
        {
            (double Mean, double Sd) Stat(string method)
            {
                var v = group.Where(r => r.Method == method).Select(r => r.MacroAccuracy).ToArray();
                var mean = v.Average();
                return (mean, Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / Math.Max(1, v.Length - 1)));
            }

            var auto = Stat(Auto);
            var old = Stat(Combinations[0].Name);
            var best = Combinations.Select(c => (c.Name, Stat: Stat(c.Name))).MaxBy(c => c.Stat.Mean);
            var search = group.Where(r => r.Method == Auto).Select(r => r.SearchSeconds).ToArray();
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {group.Key.Dataset} | {(group.Key.PerClass > 0 ? group.Key.PerClass : "uneven")} | {search.Length} | {auto.Mean:F3} +/- {auto.Sd:F3} | {old.Mean:F3} +/- {old.Sd:F3} | {best.Stat.Mean:F3} +/- {best.Stat.Sd:F3} ({best.Name}) | {auto.Mean - best.Stat.Mean:+0.000;-0.000} | {auto.Mean - old.Mean:+0.000;-0.000} ({old.Sd:F3}) | {search.Average():F1} / {search.Max():F1} |");
        }

        md.AppendLine();
        md.AppendLine("Every method, mean macro accuracy:");
        md.AppendLine();
        var methods = new[] { Auto }.Concat(Combinations.Select(c => c.Name)).ToArray();
        md.AppendLine("| Dataset | Per class | " + string.Join(" | ", methods) + " |");
        md.AppendLine("|---|---|" + string.Concat(methods.Select(_ => "---|")));
        foreach (var group in rows.GroupBy(r => (r.Dataset, r.PerClass)))
        {
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {group.Key.Dataset} | {(group.Key.PerClass > 0 ? group.Key.PerClass : "uneven")} | ") + string.Join(" | ", methods.Select(m => group.Where(r => r.Method == m).Average(r => r.MacroAccuracy).ToString("F3", CultureInfo.InvariantCulture))) + " |");
        }

        md.AppendLine();
        md.AppendLine("What auto chose, per draw:");
        md.AppendLine();
        foreach (var r in rows.Where(r => r.Method == Auto))
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- {r.Dataset} {(r.PerClass > 0 ? $"{r.PerClass}/class" : "(uneven classes)")} draw {r.Draw}: {r.Chosen} ({r.SearchSeconds:F1} s)");
        }

        File.WriteAllText(Path.Combine(outDir, "auto-levers.md"), md.ToString());
        Report.PlotAuto(rows, methods, Path.Combine(outDir, "auto-levers.png"));
        Console.WriteLine($"Wrote {Path.Combine(outDir, "auto-levers.csv")}, .md and .png");
    }

    /// <summary>A colour clip-art set: topics of Debian's openclipart-png with a cap per topic (uneven on purpose), split per draw into a training and a held-out part.</summary>
    /// <summary>A colour set's files per class, and keyed (class x 10,000 + rank in class), as <see cref="ClipArtSet"/> uses them.</summary>
    public static (string[][] Files, Dictionary<int, string> Keyed) ClipArtFiles((string Topic, int Cap)[] topics)
    {
        var files = topics.Select(t => Directory.GetFiles(Path.Combine(ClipArt.Source, t.Topic), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Where(ClipArt.Usable).Take(t.Cap).ToArray()).ToArray();
        var keyed = new Dictionary<int, string>();
        for (var c = 0; c < topics.Length; c++)
        {
            for (var i = 0; i < files[c].Length; i++)
            {
                keyed[(c * 10000) + i] = files[c][i];
            }
        }

        return (files, keyed);
    }

    public static EvidenceSet? ClipArtSet(BothFeaturizer featurizer, string name, (string Topic, int Cap)[] topics, string work, int draws, double trainFraction, int splitSeed = SplitSeed)
    {
        if (!Directory.Exists(ClipArt.Source))
        {
            Console.WriteLine($"Colour set {name} skipped: {ClipArt.Source} is missing (sudo apt-get install openclipart-png).");
            return null;
        }

        var (files, keyed) = ClipArtFiles(topics);
        var features = featurizer.Featurize(Path.GetFullPath(Path.Combine(work, name)), keyed);
        var splits = new List<(int, int, int[], int[])>();
        for (var d = 0; d < draws; d++)
        {
            var random = new Random(splitSeed + d);
            var train = new List<int>();
            var test = new List<int>();
            for (var c = 0; c < topics.Length; c++)
            {
                var keys = Enumerable.Range(0, files[c].Length).Select(i => (c * 10000) + i).ToArray();
                random.Shuffle(keys);
                var take = Math.Max(3, (int)Math.Round(keys.Length * trainFraction));
                train.AddRange(keys.Take(take));
                test.AddRange(keys.Skip(take));
            }

            splits.Add((0, d, train.ToArray(), test.ToArray()));
        }

        var description = $"{string.Join(", ", topics.Select((t, c) => $"{t.Topic} ({files[c].Length})"))}; {trainFraction:P0} of each class to train, the rest held out";
        return new EvidenceSet(name, description, topics.Select(t => t.Topic).ToList(), splits, k => features[k], k => k / 10000);
    }
}
