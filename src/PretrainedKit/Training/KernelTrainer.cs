using System.Numerics.Tensors;
using PretrainedKit.Models;

namespace PretrainedKit.Training;

/// <summary>The kernel of a ridge head: how two standardised feature vectors are compared.</summary>
internal enum RidgeKernel
{
    /// <summary>k(a, b) = a . b + 1: a linear head with a bias (stored as a <see cref="LinearHeadDefinition"/>).</summary>
    Linear,

    /// <summary>k(a, b) = exp(-gamma |a - b|^2), gamma = 1 / (2 x feature size): the <see cref="HeadKind.Kernel"/> head.</summary>
    Gaussian,
}

/// <summary>
/// Ridge regression onto one-hot class targets in kernel form, for the <see cref="HeadKind.Kernel"/> head (Gaussian
/// kernel) and the ridge linear head (linear kernel). With at most <c>maxCentres</c> training rows every row is a centre
/// and A is solved from (K + lambda / w_i on the diagonal) A = Y by a Cholesky factorisation. With more rows, a seeded,
/// class-stratified subset of <c>maxCentres</c> rows are the centres (Nystroem subset of regressors): A minimises
/// sum_i w_i |y_i - K_iM A|^2 + lambda A^T K_MM A, solved from (K_MN W K_NM + lambda K_MM) A = K_MN W Y, so that training
/// grows linearly with the rows and the model file stays bounded. No iterations: the same rows and seed give the same head.
/// </summary>
internal static class KernelTrainer
{
    /// <summary>
    /// The kernel scores are regression outputs near 0 and 1; they are multiplied by this to act as logits, so that
    /// softmax gives confident answers before calibration. Calibration then fits the temperature on validation images.
    /// </summary>
    public const float LogitScale = 10;

    /// <summary>Gets the kernel width for a feature size: gamma = 1 / (2 D), the inverse of the mean squared distance between standardised vectors.</summary>
    public static float Gamma(int featureSize) => 1f / (2f * featureSize);

    /// <summary>One kernel value from the squared norms and the dot product of two vectors.</summary>
    public static double Value(RidgeKernel kernel, float aSquared, float bSquared, float dot, float gamma) =>
        kernel == RidgeKernel.Linear ? dot + 1.0 : KernelHeadDefinition.Kernel(aSquared, bSquared, dot, gamma);

    /// <summary>Trains a ridge head on standardised rows (each row one view of one image) with per-row labels and weights.</summary>
    /// <returns>The head: a <see cref="KernelHeadDefinition"/> for the Gaussian kernel, a <see cref="LinearHeadDefinition"/> for the linear one.</returns>
    public static HeadDefinition Train(
        FeatureScaling scaling, IReadOnlyList<float[]> rows, IReadOnlyList<int> labels, IReadOnlyList<float> rowWeights, int classCount,
        RidgeKernel kernel, double ridge, int maxCentres, int seed, CancellationToken cancellationToken)
    {
        var (centres, coefficients) = Solve(rows, labels, rowWeights, classCount, kernel, ridge, maxCentres, seed, cancellationToken);
        var dimension = rows[0].Length;
        if (kernel == RidgeKernel.Gaussian)
        {
            var weights = Enumerable.Range(0, classCount).Select(c => coefficients.Select(a => (float)(a[c] * LogitScale)).ToArray()).ToArray();
            return new KernelHeadDefinition(scaling, centres, Gamma(dimension), weights, new float[classCount]);
        }

        // Linear kernel: w_c = sum_m A[m, c] z_m and b_c = sum_m A[m, c] (the "+ 1" of the kernel is the bias feature).
        var w = new float[classCount][];
        var b = new float[classCount];
        for (var c = 0; c < classCount; c++)
        {
            var sum = new double[dimension];
            double bias = 0;
            for (var m = 0; m < centres.Length; m++)
            {
                var a = coefficients[m][c];
                bias += a;
                var centre = centres[m];
                for (var j = 0; j < dimension; j++)
                {
                    sum[j] += a * centre[j];
                }
            }

            w[c] = sum.Select(v => (float)(v * LogitScale)).ToArray();
            b[c] = (float)(bias * LogitScale);
        }

        return new LinearHeadDefinition(scaling, w, b);
    }

    /// <summary>
    /// One cross-validation fold of kernel ridge regression on a precomputed kernel: fits one-hot targets on
    /// <paramref name="trainRows"/> (ridge divided by each row's weight on the diagonal; one Cholesky on this thread) and
    /// returns the regression scores (before <see cref="LogitScale"/>) of <paramref name="heldRows"/>, in their order.
    /// </summary>
    public static double[][] FoldScores(
        Func<int, int, double> kernel, int[] trainRows, int[] heldRows, Func<int, int> labelOf, Func<int, double> weightOf, double ridge, int classCount, CancellationToken cancellationToken)
    {
        var m = trainRows.Length;
        var matrix = new double[m][];
        for (var i = 0; i < m; i++)
        {
            var row = new double[i + 1];
            for (var j = 0; j <= i; j++)
            {
                row[j] = kernel(trainRows[i], trainRows[j]);
            }

            row[i] += ridge / weightOf(trainRows[i]);
            matrix[i] = row;
        }

        Cholesky(matrix, cancellationToken, parallel: false);
        var targets = Enumerable.Range(0, classCount).Select(c => trainRows.Select(t => labelOf(t) == c ? 1.0 : 0.0).ToArray()).ToArray();
        var coefficients = SolveColumns(matrix, targets, parallel: false);
        var scores = new double[heldRows.Length][];
        for (var h = 0; h < heldRows.Length; h++)
        {
            var score = new double[classCount];
            for (var t = 0; t < m; t++)
            {
                var k = kernel(heldRows[h], trainRows[t]);
                for (var c = 0; c < classCount; c++)
                {
                    score[c] += k * coefficients[c][t];
                }
            }

            scores[h] = score;
        }

        return scores;
    }

    /// <summary>Solves for the centres and their coefficients (one row per centre, one column per class), before <see cref="LogitScale"/>.</summary>
    public static (float[][] Centres, double[][] Coefficients) Solve(
        IReadOnlyList<float[]> rows, IReadOnlyList<int> labels, IReadOnlyList<float> rowWeights, int classCount,
        RidgeKernel kernel, double ridge, int maxCentres, int seed, CancellationToken cancellationToken)
    {
        var n = rows.Count;
        var gamma = Gamma(rows[0].Length);
        var chosen = n <= maxCentres ? null : ChooseCentres(labels, classCount, maxCentres, seed);
        if (kernel == RidgeKernel.Gaussian && Math.Min(n, maxCentres) > KernelHeadOptions.FullPrecisionCentres)
        {
            // More centres than the full-precision budget: the model file stores them as 16-bit floats, so they are
            // rounded before the fit (each centre is also a training row: its rounded copy is used throughout).
            var rounded = rows.ToArray();
            foreach (var i in chosen ?? Enumerable.Range(0, n))
            {
                rounded[i] = RoundToHalf(rows[i]);
            }

            rows = rounded;
        }

        var squaredNorms = rows.Select(r => TensorPrimitives.Dot<float>(r, r)).ToArray();
        if (chosen is null)
        {
            // Lower triangle of K + diag(lambda / w), in double for the factorisation.
            var matrix = new double[n][];
            Parallel.For(0, n, new ParallelOptions { CancellationToken = cancellationToken }, i =>
            {
                var row = new double[i + 1];
                for (var j = 0; j <= i; j++)
                {
                    row[j] = Value(kernel, squaredNorms[i], squaredNorms[j], TensorPrimitives.Dot<float>(rows[i], rows[j]), gamma);
                }

                row[i] += ridge / rowWeights[i];
                matrix[i] = row;
            });

            Cholesky(matrix, cancellationToken);
            var targets = Enumerable.Range(0, classCount).Select(c => Enumerable.Range(0, n).Select(i => labels[i] == c ? 1.0 : 0.0).ToArray()).ToArray();
            return (rows.ToArray(), Transpose(SolveColumns(matrix, targets), n));
        }

        var m = chosen.Length;
        var centres = chosen.Select(i => rows[i]).ToArray();

        // kT[a][i] = k(centre a, row i).
        var kT = new double[m][];
        Parallel.For(0, m, new ParallelOptions { CancellationToken = cancellationToken }, a =>
        {
            var line = new double[n];
            var centre = rows[chosen[a]];
            var cs = squaredNorms[chosen[a]];
            for (var i = 0; i < n; i++)
            {
                line[i] = Value(kernel, cs, squaredNorms[i], TensorPrimitives.Dot<float>(centre, rows[i]), gamma);
            }

            kT[a] = line;
        });

        // (K_MN W K_NM + lambda K_MM), lower triangle, plus a small jitter for numerical safety.
        var weighted = kT.Select(line => line.Select((v, i) => v * rowWeights[i]).ToArray()).ToArray();
        var system = new double[m][];
        Parallel.For(0, m, new ParallelOptions { CancellationToken = cancellationToken }, a =>
        {
            var row = new double[a + 1];
            for (var b = 0; b <= a; b++)
            {
                row[b] = TensorPrimitives.Dot<double>(weighted[a], kT[b]) + (ridge * kT[b][chosen[a]]);
            }

            system[a] = row;
        });
        var trace = Enumerable.Range(0, m).Sum(a => system[a][a]);
        for (var a = 0; a < m; a++)
        {
            system[a][a] += 1e-9 * trace / m;
        }

        Cholesky(system, cancellationToken);
        var rhs = Enumerable.Range(0, classCount).Select(c =>
        {
            var y = new double[m];
            for (var a = 0; a < m; a++)
            {
                double sum = 0;
                for (var i = 0; i < n; i++)
                {
                    if (labels[i] == c)
                    {
                        sum += weighted[a][i];
                    }
                }

                y[a] = sum;
            }

            return y;
        }).ToArray();
        return (centres, Transpose(SolveColumns(system, rhs), m));
    }

    /// <summary>Rounds every value to the nearest 16-bit float (what the model file stores for centres above <see cref="KernelHeadOptions.FullPrecisionCentres"/>).</summary>
    internal static float[] RoundToHalf(float[] values)
    {
        var rounded = new float[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            rounded[i] = (float)(Half)values[i];
        }

        return rounded;
    }

    /// <summary>
    /// Picks <paramref name="count"/> rows as centres: each class gets a share proportional to its rows (at least one),
    /// drawn by a seeded shuffle; returned in row order.
    /// </summary>
    public static int[] ChooseCentres(IReadOnlyList<int> labels, int classCount, int count, int seed)
    {
        var random = new Random(seed);
        var byClass = Enumerable.Range(0, classCount).Select(c => Enumerable.Range(0, labels.Count).Where(i => labels[i] == c).ToArray()).ToArray();
        var chosen = new List<int>();
        var remaining = count;
        var rowsLeft = labels.Count;
        foreach (var members in byClass.OrderBy(m => m.Length))
        {
            if (members.Length == 0)
            {
                continue;
            }

            var share = Math.Clamp((int)Math.Round((double)remaining * members.Length / rowsLeft), 1, members.Length);
            random.Shuffle(members);
            chosen.AddRange(members.Take(share));
            remaining -= share;
            rowsLeft -= members.Length;
        }

        return [.. chosen.Order()];
    }

    /// <summary>Solves L L^T x = y for each right-hand side, in place of the factor's lower triangle (jagged rows).</summary>
    public static double[][] SolveColumns(double[][] factor, double[][] rightHandSides, bool parallel = true)
    {
        var n = factor.Length;
        var solutions = new double[rightHandSides.Length][];
        Parallel.For(0, rightHandSides.Length, new ParallelOptions { MaxDegreeOfParallelism = parallel ? -1 : 1 }, c =>
        {
            var y = (double[])rightHandSides[c].Clone();
            for (var i = 0; i < n; i++)
            {
                y[i] = (y[i] - TensorPrimitives.Dot<double>(factor[i].AsSpan(0, i), y.AsSpan(0, i))) / factor[i][i];
            }

            for (var i = n - 1; i >= 0; i--)
            {
                y[i] /= factor[i][i];
                var yi = y[i];
                var row = factor[i];
                for (var j = 0; j < i; j++)
                {
                    y[j] -= row[j] * yi;
                }
            }

            solutions[c] = y;
        });
        return solutions;
    }

    /// <summary>
    /// Replaces the lower triangle of a symmetric positive-definite matrix (jagged rows, row i of length i + 1) with its
    /// Cholesky factor L (A = L L^T), column by column; the rows below each diagonal entry are computed in parallel
    /// unless <paramref name="parallel"/> is off (for callers that run many small factorisations in parallel).
    /// </summary>
    public static void Cholesky(double[][] a, CancellationToken cancellationToken, bool parallel = true)
    {
        var n = a.Length;
        for (var j = 0; j < n; j++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rowJ = a[j];
            var diagonal = rowJ[j] - TensorPrimitives.Dot<double>(rowJ.AsSpan(0, j), rowJ.AsSpan(0, j));
            if (!(diagonal > 0))
            {
                throw new InvalidOperationException($"The kernel matrix is not positive definite at row {j} ({diagonal}): a feature vector holds a non-finite value.");
            }

            var pivot = Math.Sqrt(diagonal);
            rowJ[j] = pivot;
            var column = j;
            var prefix = rowJ;
            if (!parallel || n - j - 1 < 64)
            {
                for (var i = j + 1; i < n; i++)
                {
                    a[i][column] = (a[i][column] - TensorPrimitives.Dot<double>(a[i].AsSpan(0, column), prefix.AsSpan(0, column))) / pivot;
                }
            }
            else
            {
                Parallel.For(j + 1, n, i => a[i][column] = (a[i][column] - TensorPrimitives.Dot<double>(a[i].AsSpan(0, column), prefix.AsSpan(0, column))) / pivot);
            }
        }
    }

    private static double[][] Transpose(double[][] byClass, int rows) =>
        Enumerable.Range(0, rows).Select(i => byClass.Select(column => column[i]).ToArray()).ToArray();
}
