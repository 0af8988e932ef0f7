using PretrainedKit;
using PretrainedKit.Imaging;

// POST /classify with an image (multipart field "image", or the raw bytes as the body) -> top-k JSON.
// Run: dotnet run --project samples/WebApi -- --model quickstart.pkmodel --urls http://127.0.0.1:5080
var builder = WebApplication.CreateBuilder(args);
var modelPath = builder.Configuration["model"] ?? "quickstart.pkmodel";
builder.Services.AddSingleton(_ => ImageClassifier.Load(modelPath)); // one model for all requests: PredictAsync is thread-safe
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = Limits.MaxBodyBytes);
var app = builder.Build();
var model = app.Services.GetRequiredService<ImageClassifierModel>(); // load now, so a bad model file stops the start

app.MapGet("/", () => new { model = Path.GetFullPath(modelPath), classes = model.Classes });

app.MapPost("/classify", async (HttpRequest request, ImageClassifierModel model, int? top) =>
{
    if (request.HasFormContentType && !request.ContentType!.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase))
    {
        // Not even read: a url-encoded form cannot carry a file, whatever its size.
        return Results.BadRequest(new { error = "A url-encoded form cannot carry an image. Upload it as a multipart/form-data field named 'image', or send its bytes as the body." });
    }

    var k = top ?? 3;
    if (k < 1)
    {
        return Results.BadRequest(new { error = "'top' must be at least 1." });
    }

    try
    {
        var files = request.HasFormContentType ? (await request.ReadFormAsync(request.HttpContext.RequestAborted)).Files : null;
        var upload = files is { Count: > 0 } ? files[0] : null;
        if (request.HasFormContentType && upload is null)
        {
            return Results.BadRequest(new { error = "The form holds no file. Upload the image in a multipart field named 'image'." });
        }

        // Read asynchronously (Kestrel forbids synchronous reads of the body) and bounded by ImageLimits.MaxFileBytes.
        await using var uploaded = upload?.OpenReadStream();
        var p = await model.PredictAsync(uploaded ?? request.Body, k, request.HttpContext.RequestAborted);
        return Results.Ok(new { label = p.Label, probability = p.Probability, predictions = p.TopK.Select(t => new { label = t.Label, probability = t.Probability }) });
    }
    catch (OperationCanceledException) when (request.HttpContext.RequestAborted.IsCancellationRequested)
    {
        return Results.Empty; // The client went away: nobody reads an answer.
    }
    catch (InvalidImageException ex)
    {
        return Results.BadRequest(new { error = ex.Message, reason = ex.Reason.ToString() });
    }
    catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
    {
        return Results.Json(new { error = $"The body is larger than {Limits.MaxBodyBytes:N0} bytes. Send a smaller image." }, statusCode: StatusCodes.Status413PayloadTooLarge);
    }
    catch (Exception ex) when (ex is BadHttpRequestException or InvalidDataException or IOException)
    {
        // A multipart body cut short, a form over the form reader's limits, a broken chunked encoding: the client's
        // mistake, so 400 (ASP.NET Core would answer 500). BadHttpRequestException is an IOException, caught first above.
        return Results.BadRequest(new { error = $"The request body is malformed or incomplete: {ex.Message} Send the image as a complete multipart/form-data field named 'image', or as the raw body." });
    }
}).DisableAntiforgery();

app.Run();

/// <summary>The sample's request limits.</summary>
internal static class Limits
{
    /// <summary>The largest request body accepted, in bytes (Kestrel's default, stated so that the 413 is documented); a larger one gets 413.</summary>
    public const long MaxBodyBytes = 30_000_000;
}
