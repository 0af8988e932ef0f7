using PretrainedKit;
using PretrainedKit.Imaging;

// POST /classify with an image (multipart field "image", or the raw bytes as the body) -> top-k JSON.
// Run: dotnet run --project samples/WebApi -- --model quickstart.pkmodel --urls http://127.0.0.1:5080
var builder = WebApplication.CreateBuilder(args);
var modelPath = builder.Configuration["model"] ?? "quickstart.pkmodel";
builder.Services.AddSingleton(_ => ImageClassifier.Load(modelPath)); // one model for all requests: Predict is thread-safe
var app = builder.Build();
var model = app.Services.GetRequiredService<ImageClassifierModel>(); // load now, so a bad model file stops the start

app.MapGet("/", () => new { model = Path.GetFullPath(modelPath), classes = model.Classes });

app.MapPost("/classify", async (HttpRequest request, ImageClassifierModel model, int? top) =>
{
    byte[] bytes;
    using (var buffer = new MemoryStream())
    {
        var files = request.HasFormContentType ? (await request.ReadFormAsync()).Files : null;
        var upload = files is { Count: > 0 } ? files[0] : null;
        if (request.HasFormContentType && upload is null)
        {
            return Results.BadRequest(new { error = "The form holds no file. Upload the image in a multipart field named 'image'." });
        }

        await (upload?.OpenReadStream() ?? request.Body).CopyToAsync(buffer);
        bytes = buffer.ToArray();
    }

    try
    {
        var p = model.Predict(bytes, top ?? 3);
        return Results.Ok(new { label = p.Label, probability = p.Probability, predictions = p.TopK.Select(t => new { label = t.Label, probability = t.Probability }) });
    }
    catch (InvalidImageException ex)
    {
        return Results.BadRequest(new { error = ex.Message, reason = ex.Reason.ToString() });
    }
    catch (ArgumentOutOfRangeException)
    {
        return Results.BadRequest(new { error = "'top' must be at least 1." });
    }
}).DisableAntiforgery();

app.Run();
