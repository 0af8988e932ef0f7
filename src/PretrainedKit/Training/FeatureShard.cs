using System.Buffers.Binary;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Featurization;
using PretrainedKit.Imaging;
using PretrainedKit.Models;

namespace PretrainedKit.Training;

/// <summary>What <see cref="ImageClassifierBuilder.CacheFeaturesAsync"/> did for one shard.</summary>
/// <param name="ShardIndex">The shard, from 0.</param>
/// <param name="ShardCount">How many shards the images were split into.</param>
/// <param name="Images">The training and validation images listed (every shard lists them all).</param>
/// <param name="ImagesInShard">The images that fell in this shard.</param>
/// <param name="ViewsComputed">Feature vectors computed by the backbone and written to the cache.</param>
/// <param name="CacheHits">Feature vectors that were in the cache already.</param>
/// <param name="Skipped">Images of this shard that could not be used, with the reason.</param>
/// <param name="CacheDirectory">The cache folder written to.</param>
public sealed record FeatureShardReport(int ShardIndex, int ShardCount, int Images, int ImagesInShard, int ViewsComputed, int CacheHits, IReadOnlyList<SkippedImage> Skipped, string CacheDirectory);

/// <summary>
/// Computes into the feature cache the features a training run with the same options will need, for one shard of the
/// images, so that many processes or machines can share the work (a Kubernetes Indexed Job, a Slurm job array) and the
/// training then runs on cache hits alone.
/// </summary>
internal static class FeatureShard
{
    /// <summary>The shard of an image: its content's SHA-256, first 8 bytes as a big-endian number, modulo the shard count. Stable across machines, names and folders.</summary>
    /// <param name="imageBytes">The image file's bytes.</param>
    /// <param name="shardCount">How many shards.</param>
    /// <returns>The shard index, from 0.</returns>
    public static int Of(ReadOnlySpan<byte> imageBytes, int shardCount)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(imageBytes, digest);
        return (int)(BinaryPrimitives.ReadUInt64BigEndian(digest) % (ulong)shardCount);
    }

    public static async Task<FeatureShardReport> RunAsync(Func<FolderScan> source, ImageClassifierOptions options, int shardIndex, int shardCount, ILogger logger, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var reporter = new ProgressReporter(progress, logger);
        reporter.Report(TrainingPhase.Scanning, 0, 0, null);
        var scan = source();
        var validation = options.ValidationFolder is { } folder ? DatasetScanner.ScanFolder(folder) : null;
        reporter.EndPhase(TrainingPhase.Scanning);

        // Every view a training run may ask of an image: which images end up in the validation split depends on the
        // options and the images found usable, so training images get the validation views too.
        var (_, layout, trainViews, testViews) = TrainingRun.Plan(options);
        var allViews = trainViews.Concat(testViews).Distinct().ToList();
        var images = scan.Images.Select(i => (i.Path, Views: (IReadOnlyList<ImageView>)(validation is null ? allViews : trainViews)))
            .Concat((validation?.Images ?? []).Select(i => (i.Path, Views: testViews)))
            .GroupBy(i => i.Path, StringComparer.Ordinal)
            .Select(g => (Path: g.Key, Views: (IReadOnlyList<ImageView>)g.SelectMany(i => i.Views).Distinct().ToList()))
            .ToList();

        reporter.Report(TrainingPhase.Validating, 0, images.Count, null);
        // Placed by content, so each image is read here to hash it, and read again below only by the shard that owns it
        // (no image's bytes are held in between: memory stays flat however many images there are).
        var mine = new List<(string Path, IReadOnlyList<ImageView> Views)>();
        var skipped = new List<InvalidImageException>();
        for (var i = 0; i < images.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                if (Of(ImageDecoder.ReadFile(images[i].Path), shardCount) == shardIndex)
                {
                    mine.Add(images[i]);
                }
            }
            catch (InvalidImageException ex) when (shardIndex == 0)
            {
                skipped.Add(ex); // A file that cannot be read has no content to place it by: shard 0 reports it.
            }
            catch (InvalidImageException)
            {
                // Reported by shard 0.
            }

            reporter.Report(TrainingPhase.Validating, i + 1, images.Count, null);
        }

        reporter.EndPhase(TrainingPhase.Validating);
        reporter.Report(TrainingPhase.LoadingBackbone, 0, 1, null);
        var runtime = TrainingRun.OpenBackbone(options, layout, scan, logger, cancellationToken);
        var cache = new FeatureCache(options.FeatureCache);
        using var extractor = new FeatureExtractor(runtime, options.Image, cache);
        if (mine.Count > 0)
        {
            extractor.Warm(SessionProfile.Throughput);
        }

        reporter.EndPhase(TrainingPhase.LoadingBackbone);
        var features = await extractor.ExtractAsync(
            mine.Select(m => ImageInput.FromFile(m.Path)).ToList(),
            i => mine[i].Views,
            (d, n, eta) => reporter.Report(TrainingPhase.Featurizing, d, n, eta),
            cancellationToken).ConfigureAwait(false);
        reporter.EndPhase(TrainingPhase.Featurizing);
        reporter.Complete();
        skipped.AddRange(features.Errors);
        var views = mine.Select((m, i) => features.Views[i] is null ? 0 : m.Views.Count).Sum();
        return new FeatureShardReport(
            shardIndex,
            shardCount,
            images.Count,
            mine.Count,
            views - features.CacheHits,
            features.CacheHits,
            skipped.Select(e => new SkippedImage(e.Path ?? string.Empty, e.Reason, e.Message)).ToList(),
            cache.Directory);
    }
}
