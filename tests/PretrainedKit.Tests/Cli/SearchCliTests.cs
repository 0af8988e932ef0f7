using System.Text.Json;
using SkiaSharp;

namespace PretrainedKit.Tests.Cli;

/// <summary>Issue #16's commands run as a separate process: index, similar (text, JSON, gallery page), suggest.</summary>
[Category("Slow")]
public class SearchCliTests
{
    private string _data = null!;
    private string _work = null!;
    private string _model = null!;
    private string _pool = null!;

    [OneTimeSetUp]
    public async Task CreateOnce()
    {
        _data = SmallDataset.Create(4);
        _work = TestPaths.NewTempFolder("search-cli");
        _model = Path.Combine(_work, "colours.pkmodel");
        using (var model = await ImageClassifier.Create().FromFolder(_data).WithSeed(6).WithAutomaticLevers(false).TrainAsync())
        {
            model.Save(_model);
        }

        _pool = TestPaths.NewTempFolder("search-cli-pool");
        TestImages.WriteClass(_pool, "reds", 3, new SKColor(200, 30, 30), 21);
        using var mixed = TestImages.Bitmap(32, 32, (x, _) => x < 16 ? new SKColor(30, 40, 200) : new SKColor(30, 180, 40));
        File.WriteAllBytes(Path.Combine(_pool, "mixed.png"), TestImages.Png(mixed));
    }

    [Test]
    public void IndexThenSimilar_FindsTheQueryFirst_InTextJsonAndTheGallery()
    {
        var index = Path.Combine(_work, "data.pkindex");
        var (code, _, err) = CliProcess.Run(null, "index", _data, "--out", index, "--quiet");
        Assert.That(code, Is.EqualTo(0), err);
        var query = Directory.GetFiles(Path.Combine(_data, "green"), "*.png").Order(StringComparer.Ordinal).First();
        var page = Path.Combine(_work, "neighbours.html");
        var (jsonCode, json, jsonErr) = CliProcess.Run(null, "similar", index, query, "--top", "3", "--json", "--html", page);
        Assert.That(jsonCode, Is.EqualTo(0), jsonErr);
        using var document = JsonDocument.Parse(json);
        var neighbours = document.RootElement.GetProperty("neighbours").EnumerateArray().ToList();
        var (textCode, text, _) = CliProcess.Run(null, "similar", index, query);
        var html = File.ReadAllText(page);
        Assert.Multiple(() =>
        {
            Assert.That(document.RootElement.GetProperty("indexed").GetInt32(), Is.EqualTo(12));
            Assert.That(neighbours, Has.Count.EqualTo(3));
            Assert.That(neighbours[0].GetProperty("path").GetString(), Is.EqualTo(query));
            Assert.That(neighbours.Skip(1).All(n => n.GetProperty("path").GetString()!.Contains("/green/", StringComparison.Ordinal)), Is.True, "the nearest colours are the same class");
            Assert.That(textCode, Is.EqualTo(0));
            Assert.That(text, Does.Contain(query));
            Assert.That(html, Does.Contain("data:image/jpeg;base64,").And.Contain("similarity").And.Not.Contain("<script"));
        });
    }

    [Test]
    public void IndexAdd_AddsOnlyTheNewImages()
    {
        var index = Path.Combine(_work, "grow.pkindex");
        Assert.That(CliProcess.Run(null, "index", Path.Combine(_data, "red"), "--out", index, "--quiet").ExitCode, Is.EqualTo(0));
        var (code, json, err) = CliProcess.Run(null, "index", _data, "--out", index, "--add", "--json");
        Assert.That(code, Is.EqualTo(0), err);
        using var document = JsonDocument.Parse(json);
        Assert.Multiple(() =>
        {
            Assert.That(document.RootElement.GetProperty("images").GetInt32(), Is.EqualTo(12));
            Assert.That(document.RootElement.GetProperty("ignored").GetInt32(), Is.EqualTo(4), "the red images already indexed");
        });
    }

    [Test]
    public void IndexWithModel_QueriesAreEmbeddedWithTheModelsScaling()
    {
        var index = Path.Combine(_work, "model.pkindex");
        var (code, json, err) = CliProcess.Run(null, "index", _data, "--out", index, "--model", _model, "--json");
        Assert.That(code, Is.EqualTo(0), err);
        using var built = JsonDocument.Parse(json);
        var query = Directory.GetFiles(Path.Combine(_data, "blue"), "*.png").Order(StringComparer.Ordinal).Last();
        var (similarCode, similar, similarErr) = CliProcess.Run(null, "similar", index, query, "--top", "1", "--json");
        Assert.That(similarCode, Is.EqualTo(0), similarErr);
        using var found = JsonDocument.Parse(similar);
        var top = found.RootElement.GetProperty("neighbours")[0];
        Assert.Multiple(() =>
        {
            Assert.That(built.RootElement.GetProperty("embeddingId").GetString(), Does.Contain("/Standardize-"), "the model's scaling is part of the space");
            Assert.That(top.GetProperty("path").GetString(), Is.EqualTo(query));
            Assert.That(top.GetProperty("similarity").GetDouble(), Is.EqualTo(1).Within(1e-4));
        });
    }

    [Test]
    public void Similar_CorruptIndex_ExitsWith2NamingTheFile()
    {
        var index = Path.Combine(_work, "corrupt.pkindex");
        File.WriteAllText(index, "PKINDEX1 but nothing else of an index file");
        var (code, _, err) = CliProcess.Run(null, "similar", index, Directory.GetFiles(_data, "*.png", SearchOption.AllDirectories)[0]);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(err, Does.Contain(index));
            Assert.That(err, Does.Not.Contain("   at "));
        });
    }

    [Test]
    public void Suggest_Json_HonoursTop_PutsTheAmbiguousImageFirst_AndCopies()
    {
        var copies = Path.Combine(_work, "to-label");
        var (code, json, err) = CliProcess.Run(null, "suggest", _model, _pool, "--top", "2", "--labelled", _data, "--copy-to", copies, "--json");
        Assert.That(code, Is.EqualTo(0), err);
        using var document = JsonDocument.Parse(json);
        var suggestions = document.RootElement.GetProperty("suggestions").EnumerateArray().ToList();
        Assert.Multiple(() =>
        {
            Assert.That(suggestions, Has.Count.EqualTo(2));
            Assert.That(suggestions[0].GetProperty("path").GetString(), Is.EqualTo(Path.Combine(_pool, "mixed.png")));
            Assert.That(suggestions[0].GetProperty("reason").GetString(), Does.Contain("unsure between"));
            Assert.That(suggestions.Select(s => s.GetProperty("path").GetString()), Is.Unique);
            Assert.That(document.RootElement.GetProperty("references").GetInt32(), Is.EqualTo(12));
            Assert.That(Directory.GetFiles(copies), Has.Length.EqualTo(2));
            Assert.That(File.Exists(Path.Combine(_pool, "mixed.png")), Is.True, "copied, not moved");
        });
    }
}
