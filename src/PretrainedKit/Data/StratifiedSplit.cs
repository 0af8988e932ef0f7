namespace PretrainedKit.Data;

/// <summary>A seeded, stratified train/validation split.</summary>
internal static class StratifiedSplit
{
    /// <summary>
    /// Splits each class on its own: <c>round(n * fraction)</c> images go to validation, but every class with two or more
    /// images keeps at least one in validation and one in training. The same seed and input give the same split.
    /// </summary>
    public static (List<int> Train, List<int> Validation) Split(IReadOnlyList<int> labels, int classCount, double fraction, int seed)
    {
        var train = new List<int>();
        var validation = new List<int>();
        var random = new Random(seed);
        for (var c = 0; c < classCount; c++)
        {
            var members = Enumerable.Range(0, labels.Count).Where(i => labels[i] == c).ToArray();
            random.Shuffle(members);
            var n = members.Length;
            var take = fraction <= 0 || n < 2 ? 0 : Math.Clamp((int)Math.Round(n * fraction, MidpointRounding.AwayFromZero), 1, n - 1);
            validation.AddRange(members.Take(take));
            train.AddRange(members.Skip(take));
        }

        train.Sort();
        validation.Sort();
        return (train, validation);
    }
}
