using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Models;
using PretrainedKit.Training;

namespace PretrainedKit.Cli;

internal static partial class Commands
{
    /// <summary>Environment variables that carry a job's shard index, in the order they are read.</summary>
    internal static readonly string[] ShardIndexVariables = ["PRETRAINEDKIT_SHARD_INDEX", "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

    public static Command Featurize()
    {
        var data = new Argument<string>("DATA_DIR") { Description = "The training folder, as given to 'train' (one sub-folder per class)." };
        var shard = new Option<string?>("--shard") { Description = "This process's share: K/N (shard K of N, from 0), or N alone to read K from the environment (PRETRAINEDKIT_SHARD_INDEX, JOB_COMPLETION_INDEX of a Kubernetes Indexed Job, or SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN of a Slurm job array). Default: 0/1 (every image)." };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "The feature cache folder to fill (shared by all shards, then used by 'train' through PRETRAINEDKIT_CACHE_DIR). Default: PRETRAINEDKIT_CACHE_DIR, else the per-user cache." };
        var features = new Option<FeatureLayout>("--features") { Description = "As for 'train': the features must be computed with the options training will use.", DefaultValueFactory = _ => ImageClassifierOptions.Default.FeatureLayout };
        var augment = new Option<TrainingAugmentation>("--augment") { Description = "As for 'train'.", DefaultValueFactory = _ => ImageClassifierOptions.Default.Augmentation };
        var tta = new Option<TestTimeAugmentation>("--tta") { Description = "As for 'train'.", DefaultValueFactory = _ => ImageClassifierOptions.Default.TestTimeAugmentation };
        var noAuto = new Option<bool>("--no-auto") { Description = "As for 'train'." };
        var singleView = new Option<bool>("--single-view") { Description = "As for 'train'." };
        var precision = new Option<Precision>("--precision") { Description = "As for 'train'.", DefaultValueFactory = _ => ImageClassifierOptions.Default.Precision };
        var (quiet, json) = OutputOptions("a summary object: {shardIndex, shardCount, images, imagesInShard, viewsComputed, cacheHits, skipped, cacheDirectory}");
        var command = new Command("featurize", Help(
            "Compute the features 'train' will need for one shard of the images into a (shared) feature cache, so that many machines share the work and 'train' then runs on cache hits. Give the same --features, --augment, --tta, --no-auto, --single-view and --precision as to 'train'.",
            "pretrainedkit featurize photos --shard 0/4 --cache-dir /shared/cache",
            "pretrainedkit featurize photos --shard 4 --cache-dir /shared/cache   # index from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID",
            "PRETRAINEDKIT_CACHE_DIR=/shared/cache pretrainedkit train photos --model pets.pkmodel"))
        {
            data, shard, cacheDir, features, augment, tta, noAuto, singleView, precision, quiet, json,
        };
        command.SetAction((parse, cancellationToken) => Run(async () =>
        {
            var ui = new ConsoleUi(parse.GetValue(quiet), parse.GetValue(json));
            var (index, count) = ParseShard(parse.GetValue(shard), Environment.GetEnvironmentVariable);
            var builder = ImageClassifier.Create().FromFolder(parse.GetValue(data)!);
            if (parse.GetValue(cacheDir) is { } dir)
            {
                builder.WithFeatureCacheDirectory(dir);
            }

            var options = builder.Options with { Auto = !parse.GetValue(noAuto), SingleViewPrediction = parse.GetValue(singleView), Precision = parse.GetValue(precision) };
            options = Commands.Given(parse, features) ? options with { FeatureLayout = parse.GetValue(features) } : options;
            options = Commands.Given(parse, augment) ? options with { Augmentation = parse.GetValue(augment) } : options;
            options = Commands.Given(parse, tta) ? options with { TestTimeAugmentation = parse.GetValue(tta) } : options;
            builder.WithOptions(options);
            var report = await ui.WithProgressAsync(progress => builder.CacheFeaturesAsync(index, count, progress, cancellationToken));
            ui.Skipped(report.Skipped, 0);
            ui.Info(string.Create(CultureInfo.InvariantCulture, $"Shard {report.ShardIndex}/{report.ShardCount}: {report.ImagesInShard} of {report.Images} images; {report.ViewsComputed} feature vectors computed, {report.CacheHits} already cached, in {report.CacheDirectory}"));
            if (ui.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(report, JsonOutput.Indented));
            }
        }));
        return command;
    }

    /// <summary>Reads <c>--shard</c>: <c>K/N</c>, or <c>N</c> with K from the first of <see cref="ShardIndexVariables"/> that is set.</summary>
    internal static (int Index, int Count) ParseShard(string? value, Func<string, string?> environment)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return (0, 1);
        }

        var parts = value.Split('/');
        if (parts.Length > 2 || !int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count < 1)
        {
            throw new UserException($"--shard '{value}' is not K/N or N: give for example 0/4 (shard 0 of 4), or 4 to read the index from the environment.");
        }

        int index;
        if (parts.Length == 2)
        {
            if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out index))
            {
                throw new UserException($"--shard '{value}': the index '{parts[0]}' is not a whole number from 0 to {count - 1}.");
            }
        }
        else
        {
            var name = ShardIndexVariables.FirstOrDefault(v => !string.IsNullOrWhiteSpace(environment(v)))
                ?? throw new UserException($"--shard {count} reads the shard index from the environment, but none of {string.Join(", ", ShardIndexVariables)} is set. Give it as --shard K/{count}.");
            var text = environment(name)!;
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out index))
            {
                throw new UserException($"{name}='{text}' is not a whole number, so it cannot be the shard index.");
            }

            if (name == "SLURM_ARRAY_TASK_ID" && int.TryParse(environment("SLURM_ARRAY_TASK_MIN"), NumberStyles.None, CultureInfo.InvariantCulture, out var min))
            {
                index -= min; // Slurm arrays may start at 1 (--array=1-4).
            }
        }

        if (index < 0 || index >= count)
        {
            throw new UserException($"--shard '{value}': the index {index} is not from 0 to {count - 1}.");
        }

        return (index, count);
    }
}
