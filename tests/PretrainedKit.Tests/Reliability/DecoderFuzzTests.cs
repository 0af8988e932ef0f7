using System.Buffers.Binary;
using System.Diagnostics;
using PretrainedKit.Imaging;
using SkiaSharp;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// A seeded mutation fuzzer over valid PNG, JPEG, GIF, BMP and WebP bytes, run through the one decode-and-normalise path
/// (<see cref="ImageDecoder"/>). Every input must either decode or throw <see cref="InvalidImageException"/>; any other
/// exception, a hang or a native crash fails the run.
/// </summary>
/// <remarks>
/// Short mode (the default, for CI): <see cref="DefaultInputs"/> inputs. Long mode: set <c>PRETRAINEDKIT_FUZZ_SECONDS</c>
/// (for example 600) to fuzz for that long. <c>PRETRAINEDKIT_FUZZ_SEED</c> changes the seed. The input being decoded is
/// kept in <c>$TMPDIR/pretrainedkit-fuzz/current.bin</c>, so a native crash leaves its cause behind.
/// </remarks>
[Category("Fuzz")]
public class DecoderFuzzTests
{
    public const int DefaultInputs = 3000;
    private static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(30);

    [Test]
    public void DecodeNormalized_SeededMutations_DecodeOrThrowInvalidImageException()
    {
        var seconds = int.TryParse(Environment.GetEnvironmentVariable("PRETRAINEDKIT_FUZZ_SECONDS"), out var s) && s > 0 ? s : 0;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("PRETRAINEDKIT_FUZZ_SEED"), out var given) ? given : 20261127;
        var seeds = Seeds();
        var options = new ImagePreprocessingOptions { MaxPixels = 16_000_000 }; // bounds each input's memory on shared CI machines
        var crashDir = Path.Combine(Path.GetTempPath(), "pretrainedkit-fuzz");
        Directory.CreateDirectory(crashDir);
        var current = Path.Combine(crashDir, "current.bin");

        var random = new Random(seed);
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        var failures = new List<string>();
        var tried = 0;
        var inputStarted = Stopwatch.GetTimestamp();
        var stopwatch = Stopwatch.StartNew();
        byte[] input = [];
        var worker = new Thread(() =>
        {
            var rgb = new byte[224 * 224 * 3];
            while (seconds > 0 ? stopwatch.Elapsed.TotalSeconds < seconds : tried < DefaultInputs)
            {
                var (format, original) = seeds[random.Next(seeds.Count)];
                input = Mutate(original, seeds[random.Next(seeds.Count)].Bytes, random, fixPngCrcs: format.StartsWith("PNG", StringComparison.Ordinal) && random.Next(2) == 0);
                File.WriteAllBytes(current, input);
                Volatile.Write(ref inputStarted, Stopwatch.GetTimestamp());
                string outcome;
                try
                {
                    ImageDecoder.DecodeNormalized(input, "fuzz-input", options, 224, 224, rgb);
                    outcome = "decoded";
                }
                catch (InvalidImageException ex)
                {
                    outcome = ex.Reason.ToString();
                }
#pragma warning disable CA1031 // The fuzzer's job is to catch every other exception and report it.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    outcome = "UNEXPECTED " + ex.GetType().Name;
                    var saved = Path.Combine(crashDir, $"failure-{seed}-{tried}.bin");
                    File.WriteAllBytes(saved, input);
                    lock (failures)
                    {
                        failures.Add($"{format} input #{tried} ({saved}): {ex}");
                    }
                }

                lock (outcomes)
                {
                    outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
                }

                Interlocked.Increment(ref tried);
            }
        })
        { IsBackground = true, Name = "fuzz" };
        worker.Start();
        while (!worker.Join(100))
        {
            var running = Stopwatch.GetElapsedTime(Volatile.Read(ref inputStarted));
            if (running > HangLimit)
            {
                var saved = Path.Combine(crashDir, $"hang-{seed}-{tried}.bin");
                File.WriteAllBytes(saved, input);
                Assert.Fail($"input #{tried} has been decoding for {running.TotalSeconds:F0} s (a hang); saved to {saved}");
            }
        }

        File.Delete(current);
        var summary = string.Join(", ", outcomes.OrderByDescending(o => o.Value).Select(o => $"{o.Key} {o.Value}"));
        TestContext.Progress.WriteLine($"[fuzz] seed {seed}: {tried} inputs in {stopwatch.Elapsed.TotalSeconds:F1} s ({summary})");
        Assert.That(failures, Is.Empty, () => string.Join(Environment.NewLine, failures.Take(5)));
        Assert.That(outcomes.Keys, Has.Some.EqualTo("decoded").And.Some.Not.EqualTo("decoded"), "the mutations reach both outcomes");
    }

    /// <summary>The valid seed images: every format and the awkward variants of the corpus.</summary>
    private static List<(string Format, byte[] Bytes)> Seeds()
    {
        using var pattern = TestImages.Pattern(40, 30);
        using var rotated = TestImages.Rotate90(pattern, clockwise: true);
        return
        [
            ("PNG", TestImages.Png(pattern)),
            ("PNG interlaced", HostileCorpus.InterlacedPng(pattern)),
            ("PNG 16-bit grey", TestImages.Gray16Png(12, 9, (x, y) => (ushort)(x * y * 500))),
            ("PNG grey+alpha", TestImages.RawPng(4, 4, 8, 4, Enumerable.Range(0, 36).Select(i => (byte)(i * 7)).ToArray())),
            ("JPEG", TestImages.Jpeg(pattern)),
            ("JPEG EXIF 8", TestImages.WithExifOrientation(TestImages.Jpeg(rotated), 8)),
            ("JPEG CMYK", Convert.FromBase64String(TestImages.CmykRedJpegBase64)),
            ("GIF", TestImages.Gif(20, 10, SKColors.Red)),
            ("GIF animated", TestImages.Gif(12, 12, SKColors.Red, SKColors.Lime, SKColors.Blue)),
            ("BMP", TestImages.Bmp(pattern)),
            ("WebP lossless", TestImages.WebP(pattern)),
            ("WebP lossy", TestImages.Encode(pattern, SKEncodedImageFormat.Webp, 60)),
        ];
    }

    private static byte[] Mutate(byte[] original, byte[] other, Random random, bool fixPngCrcs)
    {
        var data = new List<byte>(original);
        ReadOnlySpan<uint> interesting = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF];
        var operations = random.Next(1, 4);
        for (var op = 0; op < operations && data.Count > 0; op++)
        {
            // Half of the positions fall in the first 64 bytes, where the headers and sizes are.
            int Position() => random.Next(2) == 0 ? random.Next(Math.Min(64, data.Count)) : random.Next(data.Count);
            switch (random.Next(8))
            {
                case 0:
                    for (var i = random.Next(1, 9); i > 0; i--)
                    {
                        var p = Position();
                        data[p] ^= (byte)(1 << random.Next(8));
                    }

                    break;
                case 1:
                    data[Position()] = (byte)interesting[random.Next(5)];
                    break;
                case 2:
                {
                    var p = Position();
                    var value = interesting[random.Next(interesting.Length)];
                    var width = random.Next(2) == 0 ? 2 : 4;
                    var bigEndian = random.Next(2) == 0;
                    for (var i = 0; i < width && p + i < data.Count; i++)
                    {
                        var shift = 8 * (bigEndian ? width - 1 - i : i);
                        data[p + i] = (byte)(value >> shift);
                    }

                    break;
                }

                case 3:
                {
                    var cut = random.Next(data.Count);
                    data.RemoveRange(cut, data.Count - cut);
                    break;
                }

                case 4:
                {
                    var p = Position();
                    data.RemoveRange(p, Math.Min(random.Next(1, 65), data.Count - p));
                    break;
                }

                case 5:
                {
                    var p = Position();
                    var q = random.Next(data.Count);
                    var chunk = data.GetRange(q, Math.Min(random.Next(1, 129), data.Count - q));
                    data.InsertRange(p, chunk);
                    break;
                }

                case 6:
                {
                    var p = Position();
                    var noise = new byte[random.Next(1, 33)];
                    random.NextBytes(noise);
                    data.InsertRange(p, noise);
                    break;
                }

                default:
                {
                    // Splice: a prefix of this image and a suffix of another.
                    var p = random.Next(data.Count);
                    var q = random.Next(other.Length);
                    data.RemoveRange(p, data.Count - p);
                    data.AddRange(other.AsSpan(q).ToArray());
                    break;
                }
            }
        }

        var bytes = data.ToArray();
        if (fixPngCrcs)
        {
            FixPngCrcs(bytes); // Gets past libpng's checksums so that the mutations reach the chunk parsers.
        }

        return bytes;
    }

    private static void FixPngCrcs(byte[] png)
    {
        var offset = 8;
        while (offset + 12 <= png.Length)
        {
            var length = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(offset));
            if (length > (uint)(png.Length - offset - 12))
            {
                return;
            }

            var crcAt = offset + 8 + (int)length;
            BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(crcAt), TestImages.Crc32(png.AsSpan(offset + 4, 4 + (int)length)));
            offset = crcAt + 4;
        }
    }
}
