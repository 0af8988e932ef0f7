using System.Globalization;
using PretrainedKit.Imaging;
using PretrainedKit.Prediction;
using Spectre.Console;

namespace PretrainedKit.Cli;

/// <summary>
/// The output of <c>predict</c> without <c>--json</c>: a coloured table on a terminal (shown when all images are done),
/// otherwise one plain line per image as soon as it is classified.
/// </summary>
internal sealed class PredictionTable(ConsoleUi ui, string target, int topK)
{
    private readonly Table _table = CreateTable(topK);
    private int _rows;

    public void Add(string file, Prediction.Prediction p)
    {
        if (!ui.RichOut)
        {
            Console.WriteLine($"{file}: {string.Join(", ", p.TopK.Select(t => $"{t.Label} {t.Probability.ToString("P1", CultureInfo.InvariantCulture)}"))}");
            return;
        }

        var colour = p.Probability >= 0.8 ? "green" : p.Probability >= 0.5 ? "yellow" : "red";
        _table.AddRow(
            new Text(Name(file)),
            new Markup($"[bold]{Markup.Escape(p.Label)}[/]"),
            new Markup($"[{colour}]{p.Probability.ToString("P1", CultureInfo.InvariantCulture)}[/]"),
            new Text(string.Join(", ", p.TopK.Skip(1).Select(t => $"{t.Label} {t.Probability.ToString("P1", CultureInfo.InvariantCulture)}"))));
        _rows++;
    }

    public void AddError(string file, InvalidImageException ex)
    {
        if (ui.RichOut)
        {
            _table.AddRow(new Text(Name(file)), new Markup("[red]unreadable[/]"), new Text(string.Empty), new Text($"{ex.Reason}"));
            _rows++;
        }
    }

    public void Flush()
    {
        if (ui.RichOut && _rows > 0)
        {
            ui.Out.Write(_table);
        }
    }

    private static Table CreateTable(int topK)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("Image").AddColumn("Label").AddColumn(new TableColumn("Probability").RightAligned());
        table.AddColumn(topK > 1 ? "Next" : string.Empty);
        return table;
    }

    private string Name(string file) => Directory.Exists(target) ? Path.GetRelativePath(target, file) : Path.GetFileName(file);
}
