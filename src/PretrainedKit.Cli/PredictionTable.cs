using System.Globalization;
using PretrainedKit.Imaging;
using Spectre.Console;

namespace PretrainedKit.Cli;

/// <summary>
/// The output of <c>predict</c> without <c>--json</c>: a coloured table on a terminal (shown when all images are done),
/// otherwise one plain line per image as soon as it is classified.
/// </summary>
internal sealed class PredictionTable(ConsoleUi ui, string target, int topK)
{
    /// <summary>What is shown instead of the label when a prediction is below the unknown threshold.</summary>
    public const string Unknown = "unknown";

    private readonly Table _table = CreateTable(topK);
    private int _rows;
    private float? _unknownThreshold;

    public void Add(string file, Prediction p)
    {
        if (!ui.RichOut)
        {
            var unknown = p.IsUnknown ? $"{Unknown} (best guess below the {Percent(p.UnknownThreshold!.Value)} threshold): " : string.Empty;
            Console.WriteLine($"{file}: {unknown}{string.Join(", ", p.TopK.Select(t => $"{t.Label} {Percent(t.Probability)}"))}");
            return;
        }

        var colour = p.IsUnknown ? "yellow" : p.Probability >= 0.8 ? "green" : p.Probability >= 0.5 ? "yellow" : "red";
        if (p.IsUnknown)
        {
            _unknownThreshold = p.UnknownThreshold;
        }

        _table.AddRow(
            new Text(Name(file)),
            new Markup(p.IsUnknown ? $"[bold yellow]{Unknown}[/] (best guess: {Markup.Escape(p.Label)})" : $"[bold]{Markup.Escape(p.Label)}[/]"),
            new Markup($"[{colour}]{Percent(p.Probability)}[/]"),
            new Text(string.Join(", ", p.TopK.Skip(1).Select(t => $"{t.Label} {Percent(t.Probability)}"))));
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
            if (_unknownThreshold is { } threshold)
            {
                _table.Caption($"{Unknown}: top probability below the threshold {Percent(threshold)}");
            }

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

    private static string Percent(float value) => value.ToString("P1", CultureInfo.InvariantCulture);

    private string Name(string file) => Directory.Exists(target) ? Path.GetRelativePath(target, file) : Path.GetFileName(file);
}
