using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using PretrainedKit.Tests.Backbones;

namespace PretrainedKit.Tests.Samples;

/// <summary>Runs the samples as processes on the bundled assets, the way a reader of their READMEs does.</summary>
[Category("Slow")]
public class SampleTests
{
    private string _work = null!;
    private string _modelPath = null!;
    private ImageClassifierModel _model = null!;

    [OneTimeSetUp]
    public async Task TrainOnTheBundledAssets()
    {
        _work = TestPaths.NewTempFolder("samples");
        _model = await ImageClassifier.Create().FromFolder(TestPaths.FashionTrain).WithSeed(1).TrainAsync();
        _modelPath = Path.Combine(_work, "fashion.pkmodel");
        _model.Save(_modelPath);
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    [Test]
    public void QuickStart_OnTheBundledAssets_TrainsEvaluatesAndPredicts()
    {
        var folder = TestPaths.NewTempFolder("quickstart");

        var (code, stdout, stderr) = Run("QuickStart", folder, Path.Combine(TestPaths.RepositoryRoot, "assets", "fashion-mnist"));

        Assert.That(code, Is.EqualTo(0), stderr);
        var accuracy = System.Text.RegularExpressions.Regex.Match(stdout, @"Test accuracy: ([0-9.]+) ?% on 200 images");
        Assert.That(accuracy.Success, Is.True, stdout);
        Assert.That(double.Parse(accuracy.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(60), "well above chance (10 %)");
        Assert.That(stdout, Does.Match(@"\.png: \S+ [0-9.]+ ?%, "), "the top 3 of one image");
        Assert.That(File.Exists(Path.Combine(folder, "quickstart.pkmodel")), Is.True);
    }

    [Test]
    public void MigrateFromMlNetVision_OnTheBundledTrainingImages_RunsEveryStepOfTheTutorial()
    {
        var (code, stdout, stderr) = Run("MigrateFromMlNetVision", TestPaths.NewTempFolder("migrate"), TestPaths.FashionTrain);

        Assert.That(code, Is.EqualTo(0), stderr);
        var accuracy = System.Text.RegularExpressions.Regex.Match(stdout, @"Test: MicroAccuracy ([0-9.]+) ?%");
        var pipeline = System.Text.RegularExpressions.Regex.Match(stdout, @"ML\.NET pipeline \(LoadRawImageBytes -> ClassifyImages\): ([0-9]+) of ([0-9]+) test images right");
        Assert.Multiple(() =>
        {
            Assert.That(stdout, Does.Contain("Trained on 170 images"), "70 % + 15 % of the 200 bundled training images (training and validation)");
            Assert.That(accuracy.Success && pipeline.Success, Is.True, stdout);
            Assert.That(double.Parse(accuracy.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(50), "well above chance (10 %)");
            Assert.That(pipeline.Groups[2].Value, Is.EqualTo("30"), "the 15 % test part");
            Assert.That(int.Parse(pipeline.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(15));
            Assert.That(stdout, Does.Match(@"Image: \S+\.png \| Actual value: \S+ \| Predicted value: \S+"));
        });
    }

    [Test]
    public void PredictFolder_OnTheTestImagesAndABadFile_WritesOneCsvRowPerImage()
    {
        var folder = Path.Combine(_work, "to-classify");
        foreach (var image in Directory.GetFiles(TestPaths.FashionTest, "*.png", SearchOption.AllDirectories))
        {
            var target = Path.Combine(folder, Path.GetRelativePath(TestPaths.FashionTest, image));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(image, target);
        }

        File.WriteAllText(Path.Combine(folder, "notes, not an image.png"), "hello");
        var csv = Path.Combine(_work, "predictions.csv");

        var (code, stdout, stderr) = Run("PredictFolder", _work, _modelPath, folder, csv);

        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("Wrote 201 rows (1 unreadable)"));
        var rows = File.ReadAllLines(csv);
        Assert.That(rows[0], Is.EqualTo("path,label,probability,top3,error"));
        var bad = rows.Single(r => r.Contains("notes, not an image.png", StringComparison.Ordinal));
        Assert.That(bad, Does.StartWith("\"").And.Contain("not").And.Not.EndWith(","), "the quoted path, empty prediction and a reason");

        var predictions = rows.Skip(1).Where(r => r != bad).Select(r => r.Split(',')).ToList();
        Assert.That(predictions, Has.Count.EqualTo(200));
        var right = predictions.Count(r => Path.GetFileName(Path.GetDirectoryName(r[0])) == r[1]);
        Assert.That(right / 200.0, Is.GreaterThan(0.6), "well above chance (0.1), like the library's own floor");
        var first = predictions[0];
        Assert.That(float.Parse(first[2], System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(_model.Predict(first[0]).Probability).Within(1e-5f));
    }

    [Test]
    public void CustomBackbone_WithAGeneratedOnnxFile_TrainsEvaluatesSavesAndReloads()
    {
        var folder = TestPaths.NewTempFolder("custom-sample");
        var onnx = TinyOnnx.Write(folder);

        var (code, stdout, stderr) = Run("CustomBackbone", folder, onnx, Path.Combine(TestPaths.RepositoryRoot, "assets", "fashion-mnist"));

        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("tiny-cnn").And.Contain("on 200 images").And.Contain("Reloaded with pixels 32x32 -> 8 features"));
        Assert.That(File.Exists(Path.Combine(folder, "custom-backbone.pkmodel")), Is.True);
    }

    [Test]
    public async Task WebApi_RealHttpRequests_MultipartAndRawBodiesClassifyConcurrentlyAndANonImageGets400()
    {
        var port = FreePort();
        using var server = StartWebApi(port, out var log);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
            await WaitUntilReady(http, server, log);

            var images = Directory.GetFiles(TestPaths.FashionTest, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Where((_, i) => i % 12 == 0).ToArray();
            var responses = await Task.WhenAll(images.Select(async image =>
            {
                using var form = new MultipartFormDataContent();
                var file = new ByteArrayContent(await File.ReadAllBytesAsync(image));
                file.Headers.ContentType = new MediaTypeHeaderValue("image/png");
                form.Add(file, "image", Path.GetFileName(image));
                using var response = await http.PostAsync(new Uri("/classify?top=3", UriKind.Relative), form);
                return (Image: image, Status: response.StatusCode, Body: await response.Content.ReadAsStringAsync());
            }));

            Assert.That(responses, Has.Length.GreaterThanOrEqualTo(16));
            foreach (var (image, status, body) in responses)
            {
                Assert.That(status, Is.EqualTo(HttpStatusCode.OK), body);
                using var json = JsonDocument.Parse(body);
                var expected = _model.Predict(image, topK: 3);
                var predictions = json.RootElement.GetProperty("predictions");
                Assert.That(predictions.GetArrayLength(), Is.EqualTo(3));
                Assert.That(json.RootElement.GetProperty("label").GetString(), Is.EqualTo(expected.Label), image);
                Assert.That(predictions[1].GetProperty("probability").GetSingle(), Is.EqualTo(expected.TopK[1].Probability).Within(1e-5f), image);
            }

            // The raw body works as well as a form: with a Content-Length, and chunked (no length known in advance). Kestrel
            // forbids synchronous reads of the body, so these pass only because the sample reads it with PredictAsync.
            var rawExpected = _model.Predict(images[1], topK: 3);
            using (var raw = new ByteArrayContent(await File.ReadAllBytesAsync(images[1])))
            using (var response = await http.PostAsync(new Uri("/classify?top=3", UriKind.Relative), raw))
            {
                var body = await response.Content.ReadAsStringAsync();
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), body);
                using var json = JsonDocument.Parse(body);
                Assert.That(json.RootElement.GetProperty("label").GetString(), Is.EqualTo(rawExpected.Label));
                Assert.That(json.RootElement.GetProperty("probability").GetSingle(), Is.EqualTo(rawExpected.Probability).Within(1e-5f));
            }

            using (var chunked = new StreamContent(new MemoryStream(await File.ReadAllBytesAsync(images[2]))))
            using (var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/classify?top=2", UriKind.Relative)) { Content = chunked })
            {
                request.Headers.TransferEncodingChunked = true;
                using var response = await http.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), body);
                using var json = JsonDocument.Parse(body);
                Assert.That(json.RootElement.GetProperty("label").GetString(), Is.EqualTo(_model.Predict(images[2]).Label));
                Assert.That(json.RootElement.GetProperty("predictions").GetArrayLength(), Is.EqualTo(2));
            }

            using (var text = new StringContent("this is plain text, not a picture", Encoding.UTF8, "text/plain"))
            using (var response = await http.PostAsync(new Uri("/classify", UriKind.Relative), text))
            {
                var body = await response.Content.ReadAsStringAsync();
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), body);
                using var json = JsonDocument.Parse(body);
                Assert.That(json.RootElement.GetProperty("reason").GetString(), Is.EqualTo("NotAnImage"));
                Assert.That(json.RootElement.GetProperty("error").GetString(), Does.Contain("JPEG").Or.Contain("image"));
            }

            using (var empty = new MultipartFormDataContent { { new StringContent("x"), "comment" } })
            using (var response = await http.PostAsync(new Uri("/classify", UriKind.Relative), empty))
            {
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
                Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("multipart field named 'image'"));
            }
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    [Test]
    public async Task WebApi_TruncatedOrOversizedBodies_Answer400Or413NotA500()
    {
        var port = FreePort();
        using var server = StartWebApi(port, out var log);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
            await WaitUntilReady(http, server, log);
            var image = Directory.GetFiles(TestPaths.FashionTest, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();

            // A multipart body cut in the middle of the image (complete as HTTP, Content-Length right, no closing boundary).
            using var form = new MultipartFormDataContent();
            form.Add(new ByteArrayContent(await File.ReadAllBytesAsync(image)), "image", "image.png");
            var whole = await form.ReadAsByteArrayAsync();
            using var truncated = new ByteArrayContent(whole[..(whole.Length / 2)]);
            truncated.Headers.ContentType = form.Headers.ContentType;
            var (status, body) = await Post(http, truncated);
            Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), body);
            Assert.That(body, Does.Contain("malformed or incomplete"));

            // 29 MB of url-encoded form: it cannot carry a file.
            var urlEncoded = new byte[29_000_000];
            Array.Fill(urlEncoded, (byte)'A');
            "image="u8.CopyTo(urlEncoded);
            using var form29 = new ByteArrayContent(urlEncoded);
            form29.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
            (status, body) = await Post(http, form29);
            Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), body);
            Assert.That(body, Does.Contain("multipart/form-data field named 'image'"));

            // 29 MB in one multipart field that is not a file.
            using var bigField = new MultipartFormDataContent { { new ByteArrayContent(urlEncoded), "comment" } };
            (status, body) = await Post(http, bigField);
            Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), body);

            // Over the sample's 30,000,000-byte limit: 413 (sent with Expect: 100-continue, as curl does for large bodies,
            // so that the server can answer before the body is sent).
            using var huge = new ByteArrayContent(new byte[31_000_000]);
            (status, body) = await Post(http, huge, expectContinue: true);
            Assert.That(status, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge), body);
            Assert.That(body, Does.Contain("larger than 30,000,000 bytes"));

            // The server is still well.
            using var good = new ByteArrayContent(await File.ReadAllBytesAsync(image));
            (status, body) = await Post(http, good);
            Assert.That(status, Is.EqualTo(HttpStatusCode.OK), body);
            string text;
            lock (log)
            {
                text = log.ToString();
            }

            Assert.That(text, Does.Not.Contain("unhandled exception").IgnoreCase, "no request reached ASP.NET Core's 500 path");
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    private static async Task<(HttpStatusCode Status, string Body)> Post(HttpClient http, HttpContent content, bool expectContinue = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/classify", UriKind.Relative)) { Content = content };
        request.Headers.ExpectContinue = expectContinue;
        using var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task WaitUntilReady(HttpClient http, Process server, StringBuilder log)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (DateTime.UtcNow < deadline)
        {
            Assert.That(server.HasExited, Is.False, () => "the server stopped: " + log);
            try
            {
                using var response = await http.GetAsync(new Uri("/", UriKind.Relative));
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(250);
        }

        Assert.Fail("the server did not answer within 2 minutes: " + log);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts the WebApi sample on a loopback port, collecting its output in <paramref name="log"/>.</summary>
    private Process StartWebApi(int port, out StringBuilder log)
    {
        var server = Process.Start(StartInfo("WebApi", _work, "--model", _modelPath, "--urls", $"http://127.0.0.1:{port}"))!;
        var collected = new StringBuilder();
        server.OutputDataReceived += (_, e) => { lock (collected) { collected.AppendLine(e.Data); } };
        server.ErrorDataReceived += (_, e) => { lock (collected) { collected.AppendLine(e.Data); } };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        log = collected;
        return server;
    }

    private static ProcessStartInfo StartInfo(string sample, string workingDirectory, params string[] args)
    {
        // tests/PretrainedKit.Tests/bin/<Configuration>/net10.0/ -> samples/<sample>/bin/<Configuration>/net10.0/
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var dll = Path.Combine(TestPaths.RepositoryRoot, "samples", sample, "bin", configuration, "net10.0", sample + ".dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        info.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        return info;
    }

    private static (int ExitCode, string Out, string Err) Run(string sample, string workingDirectory, params string[] args)
    {
        using var process = Process.Start(StartInfo(sample, workingDirectory, args))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.That(process.WaitForExit(TimeSpan.FromMinutes(4)), Is.True, "the sample finished");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
