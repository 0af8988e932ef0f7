using System.Buffers.Binary;
using System.IO.Compression;
using PretrainedKit.Imaging;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// The child side of the decode-budget test: loads a model, predicts one image from many threads at once and prints
/// the process's peak resident memory (<c>VmHWM</c>), so the parent can assert the bound without risking itself.
/// </summary>
internal static class DecodeBudgetChild
{
    /// <summary>Gets the prefix of the line that carries the peak RSS in bytes.</summary>
    public const string PeakRssMarker = "PEAK_RSS";

    /// <summary><c>predict-rss MODEL IMAGE THREADS [BUDGET_BYTES]</c>.</summary>
    public static int Run(string[] args)
    {
        if (args.Length > 4)
        {
            ImageLimits.DecodeMemoryBudgetBytes = long.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture);
        }

        using var model = ImageClassifier.Load(args[1]);
        var threads = int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture);
        var baseline = PeakRss();
        using var start = new Barrier(threads);
        var labels = new string?[threads];
        var failures = new string?[threads];
        var workers = Enumerable.Range(0, threads).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            try
            {
                labels[i] = model.Predict(args[2]).Label;
            }
            catch (InvalidImageException ex)
            {
                failures[i] = ex.Reason.ToString();
            }
        })).ToList();
        workers.ForEach(t => t.Start());
        workers.ForEach(t => t.Join());

        Console.Out.WriteLine($"PREDICTED\t{labels.Count(l => l is not null)}");
        Console.Out.WriteLine($"REFUSED\t{string.Join(",", failures.Where(f => f is not null))}");
        Console.Out.WriteLine($"BASELINE_RSS\t{baseline}");
        Console.Out.WriteLine($"BUDGET_PEAK\t{DecodeBudget.Shared.Peak}");
        Console.Out.WriteLine($"BUDGET\t{ImageLimits.DecodeMemoryBudgetBytes}");
        Console.Out.WriteLine($"{PeakRssMarker}\t{PeakRss()}");
        return 0;
    }

    /// <summary>The process's peak resident set size in bytes, from <c>/proc/self/status</c>.</summary>
    public static long PeakRss()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>
    /// Writes a PNG whose every pixel is zero, made with a streaming encoder so that it costs no memory to build: a few
    /// hundred kilobytes on disk for any declared size, since zero rows compress about a thousandfold.
    /// </summary>
    public static void WriteZeroPng(string path, int width, int height, byte bitDepth, byte colorType, bool interlaced)
    {
        var channels = colorType switch { 0 or 3 => 1, 4 => 2, 2 => 3, _ => 4 };
        var bytesPerPixel = Math.Max(1, channels * bitDepth / 8);
        using var idat = new MemoryStream();
        using (var zlib = new ZLibStream(idat, CompressionLevel.Optimal, leaveOpen: true))
        {
            var zeros = new byte[1 + ((long)width * bytesPerPixel)];
            (int X, int Y, int Dx, int Dy)[] passes = interlaced
                ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
                : [(0, 0, 1, 1)];
            foreach (var (x0, y0, dx, dy) in passes)
            {
                var passWidth = (width - x0 + dx - 1) / dx;
                var passHeight = (height - y0 + dy - 1) / dy;
                if (passWidth <= 0 || passHeight <= 0)
                {
                    continue;
                }

                for (var row = 0; row < passHeight; row++)
                {
                    zlib.Write(zeros, 0, 1 + (passWidth * bytesPerPixel)); // Filter byte 0 (none), then the zero pixels.
                }
            }
        }

        using var file = File.Create(path);
        file.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = bitDepth;
        header[9] = colorType;
        header[12] = (byte)(interlaced ? 1 : 0);
        Chunk(file, "IHDR", header);
        Chunk(file, "IDAT", idat.ToArray());
        Chunk(file, "IEND", []);
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        s.Write(length);
        var typeAndData = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(length, TestImages.Crc32(typeAndData));
        s.Write(length);
    }
}
