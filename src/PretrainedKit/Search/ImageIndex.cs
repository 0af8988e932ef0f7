using System.Numerics.Tensors;
using PretrainedKit.Backbones;
using PretrainedKit.Caching;
using PretrainedKit.Data;
using PretrainedKit.Imaging;
using PretrainedKit.Training;

namespace PretrainedKit.Search;

/// <summary>
/// A similar-image index: the embeddings of a set of images (see <see cref="ImageEmbedder"/>), built once, saved to one
/// file and searched for the images most similar to a query by cosine similarity. The search is exact (every indexed
/// embedding is compared with the query by <see cref="TensorPrimitives"/>); the README gives measured query times and says
/// from what size an approximate index would pay.
/// </summary>
/// <example>
/// <code>
/// using var embedder = ImageEmbedder.Open();
/// var index = await ImageIndex.BuildAsync(embedder, "photos");
/// index.Save("photos.pkindex");
/// IReadOnlyList&lt;SimilarImage&gt; hits = index.Search(embedder, "query.jpg", top: 10); // most similar first: hit.Path, hit.Similarity
/// </code>
/// </example>
/// <threadsafety>Immutable: every member is safe to call from many threads at once. <see cref="AddAsync"/> returns a new index.</threadsafety>
public sealed class ImageIndex
{
    /// <summary>The default number of neighbours a search returns.</summary>
    public const int DefaultTop = 10;

    private readonly string[] _paths;
    private readonly float[] _vectors;
    private readonly Dictionary<string, int> _byPath;

    internal ImageIndex(EmbeddingSpace space, string[] paths, float[] vectors, int dimension, IReadOnlyList<SkippedImage> skipped, int ignoredFileCount)
    {
        if ((long)paths.Length * dimension != vectors.Length)
        {
            throw new ArgumentException("The vectors do not match the paths and the dimension.", nameof(vectors));
        }

        Space = space;
        _paths = paths;
        _vectors = vectors;
        Dimension = dimension;
        Skipped = skipped;
        IgnoredFileCount = ignoredFileCount;
        _byPath = new Dictionary<string, int>(paths.Length, StringComparer.Ordinal);
        for (var i = 0; i < paths.Length; i++)
        {
            _byPath.TryAdd(paths[i], i);
        }
    }

    /// <summary>Gets the number of indexed images.</summary>
    public int Count => _paths.Length;

    /// <summary>Gets the length of each embedding.</summary>
    public int Dimension { get; }

    /// <summary>Gets the indexed images' absolute paths, in index order.</summary>
    public IReadOnlyList<string> Paths => _paths;

    /// <summary>Gets the embedding space's identifier (<see cref="ImageEmbedder.Id"/>); queries must come from an embedder with the same id.</summary>
    public string EmbeddingId => Space.Id;

    /// <summary>Gets the id of the backbone the embeddings come from.</summary>
    public string BackboneId => Space.BackboneId;

    /// <summary>Gets the images that the build (or the last <see cref="AddAsync"/>) could not read, each with the reason; not saved with the index.</summary>
    public IReadOnlyList<SkippedImage> Skipped { get; }

    /// <summary>Gets how many files of the folder were not images by their extension (and were not read), or paths given twice; not saved.</summary>
    public int IgnoredFileCount { get; }

    /// <summary>Gets the embedding space.</summary>
    internal EmbeddingSpace Space { get; }

    /// <summary>Gets the embeddings, row-major (<see cref="Count"/> x <see cref="Dimension"/>).</summary>
    internal ReadOnlyMemory<float> Vectors => _vectors;

    /// <summary>Indexes every image below a folder (sub-folders included; files are judged by content, and those without an image extension are not read).</summary>
    /// <param name="embedder">The embedder (a model's, or <see cref="ImageEmbedder.Open"/>); queries need one with the same <see cref="ImageEmbedder.Id"/>.</param>
    /// <param name="folder">The folder.</param>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the build within the images in flight.</param>
    /// <returns>The index; bad images are in <see cref="Skipped"/>.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist; the message names it.</exception>
    /// <exception cref="ObjectDisposedException">The embedder was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static Task<ImageIndex> BuildAsync(ImageEmbedder embedder, string folder, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        var (images, ignored) = ImageFolder.List(folder);
        return BuildCoreAsync(embedder, images, ignored, progress, cancellationToken);
    }

    /// <summary>Indexes a list of image files; a path given twice is indexed once.</summary>
    /// <param name="embedder">The embedder.</param>
    /// <param name="paths">The image files.</param>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the build within the images in flight.</param>
    /// <returns>The index; bad images are in <see cref="Skipped"/>.</returns>
    /// <exception cref="ArgumentException">A path is <see langword="null"/> or empty.</exception>
    /// <exception cref="ObjectDisposedException">The embedder was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static Task<ImageIndex> BuildAsync(ImageEmbedder embedder, IEnumerable<string> paths, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        var (images, duplicates) = Distinct(FullPaths(paths), null);
        return BuildCoreAsync(embedder, images, duplicates, progress, cancellationToken);
    }

    /// <summary>
    /// Returns a new index with more images: only the new ones are embedded (through the feature cache), the embeddings
    /// already indexed are kept as they are, so the result equals an index built from scratch over all the images. Paths
    /// already indexed are not embedded again (they count in <see cref="IgnoredFileCount"/>).
    /// </summary>
    /// <param name="embedder">An embedder of the index's space (<see cref="OpenEmbedder"/>, or the one that built it).</param>
    /// <param name="paths">Image files, or a single folder to index below.</param>
    /// <param name="progress">Receives progress; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the pass within the images in flight.</param>
    /// <returns>The larger index; this one is unchanged.</returns>
    /// <exception cref="ArgumentException">The embedder's space is not the index's.</exception>
    /// <exception cref="DirectoryNotFoundException">A single path was given that looks like a folder but does not exist.</exception>
    /// <exception cref="ObjectDisposedException">The embedder was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public async Task<ImageIndex> AddAsync(ImageEmbedder embedder, IEnumerable<string> paths, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        ArgumentNullException.ThrowIfNull(paths);
        CheckSpace(embedder);
        var given = paths.ToList();
        var ignored = 0;
        List<string> files;
        if (given.Count == 1 && Directory.Exists(given[0]))
        {
            (files, ignored) = ImageFolder.List(given[0]);
        }
        else
        {
            files = FullPaths(given);
        }

        var (fresh, repeated) = Distinct(files, _byPath);
        var (vectors, _, skipped) = await embedder.EmbedFilesAsync(fresh, progress, cancellationToken).ConfigureAwait(false);
        var added = Enumerable.Range(0, fresh.Count).Where(i => vectors[i] is not null).ToList();
        var matrix = new float[_vectors.Length + ((long)added.Count * Dimension)];
        _vectors.CopyTo(matrix, 0);
        for (var k = 0; k < added.Count; k++)
        {
            vectors[added[k]]!.CopyTo(matrix, _vectors.Length + (k * Dimension));
        }

        return new ImageIndex(Space, [.. _paths, .. added.Select(i => fresh[i])], matrix, Dimension, skipped, ignored + repeated);
    }

    /// <summary>Finds the indexed images most similar to an embedding.</summary>
    /// <param name="embedding">An embedding of the index's space (length 1, <see cref="Dimension"/> values).</param>
    /// <param name="top">How many to return; capped at <see cref="Count"/>.</param>
    /// <returns>The most similar images, most similar first (ties: index order).</returns>
    /// <exception cref="ArgumentException">The embedding's length is not <see cref="Dimension"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="top"/> is below 1.</exception>
    public IReadOnlyList<SimilarImage> Search(ReadOnlySpan<float> embedding, int top = DefaultTop)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        if (embedding.Length != Dimension)
        {
            throw new ArgumentException($"The embedding has {embedding.Length} values; this index holds embeddings of {Dimension}.", nameof(embedding));
        }

        top = Math.Min(top, Count);
        // A min-heap of the best so far: its root is the weakest kept, replaced when a better one comes.
        var heap = new PriorityQueue<int, (float Similarity, int Index)>(top + 1, Weakest.Instance);
        var vectors = _vectors.AsSpan();
        for (var i = 0; i < Count; i++)
        {
            var similarity = TensorPrimitives.Dot(vectors.Slice(i * Dimension, Dimension), embedding);
            if (heap.Count < top)
            {
                heap.Enqueue(i, (similarity, i));
            }
            else if (heap.TryPeek(out _, out var weakest) && similarity > weakest.Similarity)
            {
                heap.DequeueEnqueue(i, (similarity, i));
            }
        }

        var result = new SimilarImage[heap.Count];
        for (var r = result.Length - 1; r >= 0; r--)
        {
            heap.TryDequeue(out var index, out var key);
            result[r] = new SimilarImage(r + 1, _paths[index], key.Similarity);
        }

        return result;
    }

    /// <summary>Embeds an image file and finds the indexed images most similar to it (an indexed image is its own nearest neighbour).</summary>
    /// <param name="embedder">An embedder of the index's space.</param>
    /// <param name="imagePath">The query image.</param>
    /// <param name="top">How many to return.</param>
    /// <returns>The most similar images, most similar first.</returns>
    /// <exception cref="ArgumentException">The embedder's space is not the index's.</exception>
    /// <exception cref="InvalidImageException">The query cannot be read or is not a usable image; the message names it.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="top"/> is below 1.</exception>
    public IReadOnlyList<SimilarImage> Search(ImageEmbedder embedder, string imagePath, int top = DefaultTop)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        CheckSpace(embedder);
        return Search(embedder.Embed(imagePath), top);
    }

    /// <summary>
    /// Opens the embedder this index's queries need: its backbone (the known one recorded by id, or the one given), the
    /// recorded feature layout, image options and scaling; the installed weights must be the recorded ones.
    /// </summary>
    /// <param name="backbone">The backbone to use, for a custom one (see <see cref="Backbone.FromOnnx"/>); by default the known backbone recorded.</param>
    /// <param name="featureCache">The feature cache for <see cref="AddAsync"/>; by default <see cref="FeatureCacheOptions.Default"/>.</param>
    /// <returns>The embedder; dispose it when done.</returns>
    /// <exception cref="ArgumentException">The backbone is not the recorded one, or its weights differ, or the index holds an int8 model's embeddings (which only that model's <see cref="ImageEmbedder"/> computes).</exception>
    /// <exception cref="BackboneNotFoundException">The backbone's files are not installed.</exception>
    public ImageEmbedder OpenEmbedder(Backbone? backbone = null, FeatureCacheOptions? featureCache = null)
    {
        backbone ??= KnownBackbones.FindById(Space.BackboneId)
            ?? throw new ArgumentException($"The index was built with the backbone '{Space.BackboneId}', which PretrainedKit does not know; pass that backbone (Backbone.FromOnnx).", nameof(backbone));
        if (!string.Equals(backbone.Id, Space.BackboneId, StringComparison.Ordinal))
        {
            throw new ArgumentException($"The index was built with the backbone '{Space.BackboneId}', not '{backbone.Id}'.", nameof(backbone));
        }

        if (Space.Int8Digest is not null)
        {
            throw new ArgumentException("The index holds embeddings of an int8 model; query it with that model's Embedder (ImageClassifier.Load(model).Embedder), or build the index with a float model or with the backbone alone.");
        }

        return ImageEmbedder.OpenSpace(backbone, Space.Layout, Space.Image, Space.Scaling, Space.WeightsSha256, featureCache ?? FeatureCacheOptions.Default);
    }

    /// <summary>
    /// Writes the index to one file, atomically (a temporary file next to it, then a rename; a failed save leaves the
    /// previous file intact). The file holds the embedding space, the paths, the embeddings and a SHA-256 of all of it.
    /// </summary>
    /// <param name="path">The file to write (by convention <c>*.pkindex</c>).</param>
    /// <exception cref="DirectoryNotFoundException">The target's folder does not exist.</exception>
    /// <exception cref="IOException">The file cannot be written; the previous file, if any, is unchanged.</exception>
    public void Save(string path) => ImageIndexFile.Save(path, this);

    /// <summary>Reads an index written by <see cref="Save"/>, checking its size, format version, checksum and every number.</summary>
    /// <param name="path">The index file.</param>
    /// <returns>The index.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ImageIndexFormatException">The file is corrupt, truncated, altered, too large, or from a newer format version; the message names it.</exception>
    public static ImageIndex Load(string path) => ImageIndexFile.Load(path);

    /// <summary>Throws when an embedder's space is not this index's.</summary>
    internal void CheckSpace(ImageEmbedder embedder)
    {
        if (!string.Equals(embedder.Id, EmbeddingId, StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"The embedder's space ({embedder.Id}) is not the index's ({EmbeddingId}): its embeddings cannot be compared. Use index.OpenEmbedder(), or the model or backbone the index was built with.",
                nameof(embedder));
        }
    }

    private static async Task<ImageIndex> BuildCoreAsync(ImageEmbedder embedder, List<string> images, int ignored, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var (vectors, _, skipped) = await embedder.EmbedFilesAsync(images, progress, cancellationToken).ConfigureAwait(false);
        var kept = Enumerable.Range(0, images.Count).Where(i => vectors[i] is not null).ToList();
        var matrix = new float[(long)kept.Count * embedder.Dimension];
        for (var k = 0; k < kept.Count; k++)
        {
            vectors[kept[k]]!.CopyTo(matrix, k * embedder.Dimension);
        }

        return new ImageIndex(embedder.Space, kept.Select(i => images[i]).ToArray(), matrix, embedder.Dimension, skipped, ignored);
    }

    private static List<string> FullPaths(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return paths.Select(p =>
        {
            ArgumentException.ThrowIfNullOrEmpty(p, nameof(paths));
            return Path.GetFullPath(p);
        }).ToList();
    }

    /// <summary>The paths not seen before (in order), and how many were repeats or already indexed.</summary>
    private static (List<string> Fresh, int Repeated) Distinct(List<string> paths, Dictionary<string, int>? existing)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var fresh = paths.Where(p => (existing is null || !existing.ContainsKey(p)) && seen.Add(p)).ToList();
        return (fresh, paths.Count - fresh.Count);
    }

    /// <summary>Orders heap keys so that the root is the weakest kept: lower similarity, then the later index.</summary>
    private sealed class Weakest : IComparer<(float Similarity, int Index)>
    {
        public static readonly Weakest Instance = new();

        public int Compare((float Similarity, int Index) x, (float Similarity, int Index) y) =>
            x.Similarity != y.Similarity ? x.Similarity.CompareTo(y.Similarity) : y.Index.CompareTo(x.Index);
    }
}

/// <summary>One neighbour found by a search.</summary>
/// <param name="Rank">1 for the most similar.</param>
/// <param name="Path">The indexed image.</param>
/// <param name="Similarity">The cosine similarity to the query, from -1 to 1 (1: the same embedding).</param>
public sealed record SimilarImage(int Rank, string Path, float Similarity);
