using System.Numerics.Tensors;
using PretrainedKit.Models;

namespace PretrainedKit.Training;

/// <summary>
/// Kernel ridge regression onto one-hot class targets with a Gaussian (RBF) kernel on standardised features: the
/// <see cref="HeadKind.Kernel"/> head. Every training row becomes a centre; the head scores a feature vector z by
/// sum over rows i of A[i, c] * exp(-gamma * |z - z_i|^2), with A solved from (K + lambda / w_i on the diagonal) A = Y
/// by a Cholesky factorisation. No iterations and no random numbers: the same rows give the same head.
/// </summary>
internal static class KernelTrainer
{

    /// <summary>
    /// The kernel scores are regression outputs near 0 and 1; they are multiplied by this to act as logits, so that
    /// softmax gives confident answers before calibration. Calibration then fits the temperature on validation images.
    /// </summary>
    public const float LogitScale = 10;

    /// <summary>
    /// The most training views the kernel head takes: the factorisation grows with the cube of their number and the
    /// model file holds every one of them.
    /// </summary>
    public const int MaxRows = 8000;

    /// <summary>Gets the kernel width for a feature size: gamma = 1 / (2 D), the inverse of the mean squared distance between standardised vectors.</summary>
    public static float Gamma(int featureSize) => 1f / (2f * featureSize);

    /// <summary>Trains on standardised rows (each row one view of one image) with per-row labels and weights.</summary>
    /// <returns>The centres (the rows themselves) and the final layer, one weight per centre and class.</returns>
    public static (float[][] Centres, float[][] Weights) Train(IReadOnlyList<float[]> rows, IReadOnlyList<int> labels, IReadOnlyList<float> rowWeights, int classCount, CancellationToken cancellationToken)
    {
        var n = rows.Count;
        if (n > MaxRows)
        {
            throw new InvalidOperationException($"The kernel head takes at most {MaxRows:N0} training views (images x augmentation views); this training set has {n:N0}. Use HeadKind.Linear, or fewer augmentation views.");
        }

        var gamma = Gamma(rows[0].Length);
        var centres = rows.ToArray();
        var squaredNorms = centres.Select(r => TensorPrimitives.Dot<float>(r, r)).ToArray();

        // Lower triangle of K + diag(lambda / w), in double for the factorisation.
        var matrix = new double[n][];
        Parallel.For(0, n, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            var row = new double[i + 1];
            for (var j = 0; j <= i; j++)
            {
                row[j] = KernelHeadDefinition.Kernel(squaredNorms[i], squaredNorms[j], TensorPrimitives.Dot<float>(centres[i], centres[j]), gamma);
            }

            row[i] += KernelHeadOptions.Ridge / rowWeights[i];
            matrix[i] = row;
        });

        Cholesky(matrix, cancellationToken);

        // Solve L L^T A = Y, one class column at a time.
        var weights = new float[classCount][];
        Parallel.For(0, classCount, c =>
        {
            var y = new double[n];
            for (var i = 0; i < n; i++)
            {
                y[i] = labels[i] == c ? 1 : 0;
            }

            for (var i = 0; i < n; i++)
            {
                y[i] = (y[i] - TensorPrimitives.Dot<double>(matrix[i].AsSpan(0, i), y.AsSpan(0, i))) / matrix[i][i];
            }

            for (var i = n - 1; i >= 0; i--)
            {
                y[i] /= matrix[i][i];
                var yi = y[i];
                var row = matrix[i];
                for (var j = 0; j < i; j++)
                {
                    y[j] -= row[j] * yi;
                }
            }

            weights[c] = y.Select(v => (float)(v * LogitScale)).ToArray();
        });

        return (centres, weights);
    }


    /// <summary>
    /// Replaces the lower triangle of a symmetric positive-definite matrix (jagged rows, row i of length i + 1) with its
    /// Cholesky factor L (A = L L^T), column by column; the rows below each diagonal entry are computed in parallel.
    /// </summary>
    public static void Cholesky(double[][] a, CancellationToken cancellationToken)
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
            if (n - j - 1 < 64)
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
}
