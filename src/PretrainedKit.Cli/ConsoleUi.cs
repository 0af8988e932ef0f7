using System.Globalization;
using PretrainedKit.Data;
using PretrainedKit.Evaluation;
using PretrainedKit.Models;
using PretrainedKit.Training;
using Spectre.Console;

namespace PretrainedKit.Cli;

/// <summary>
/// Everything the CLI shows. Results go to stdout, progress and messages to stderr. On a terminal: live progress bars
/// with ETA and coloured tables (Spectre.Console); otherwise (a pipe, a file, CI) plain text lines. <c>--quiet</c> and
/// <c>--json</c> turn progress and summaries off.
/// </summary>
internal sealed class ConsoleUi
{
    /// <summary>Set to <c>rich</c> or <c>plain</c> to override the terminal detection (default <c>auto</c>).</summary>
    public const string ConsoleVariable = "PRETRAINEDKIT_CONSOLE";

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public ConsoleUi(bool quiet, bool json)
    {
        Quiet = quiet;
        Json = json;
        var mode = Environment.GetEnvironmentVariable(ConsoleVariable)?.Trim().ToLowerInvariant();
        var forced = mode is "rich" or "plain";
        RichOut = mode == "rich" || (!forced && !Console.IsOutputRedirected);
        RichErr = mode == "rich" || (!forced && !Console.IsErrorRedirected);
        Out = Create(Console.Out, RichOut, forced);
        Err = Create(Console.Error, RichErr, forced);
    }

    public bool Quiet { get; }

    public bool Json { get; }

    /// <summary>Gets whether stdout gets tables and colours (a terminal, or <c>PRETRAINEDKIT_CONSOLE=rich</c>).</summary>
    public bool RichOut { get; }

    /// <summary>Gets whether stderr gets live progress bars.</summary>
    public bool RichErr { get; }

    /// <summary>Gets whether summaries are shown (neither quiet nor JSON).</summary>
    public bool ShowsSummary => !Quiet && !Json;

    public IAnsiConsole Out { get; }

    public IAnsiConsole Err { get; }

    /// <summary>Runs <paramref name="work"/> with a progress sink suited to the output: live bars, plain lines, or none.</summary>
    public async Task<T> WithProgressAsync<T>(Func<IProgress<TrainingProgress>?, Task<T>> work)
    {
        if (!ShowsSummary)
        {
            return await work(null);
        }

        if (!RichErr)
        {
            return await work(new PlainProgress());
        }

        return await Err.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var bars = new BarProgress(context);
                try
                {
                    return await work(bars);
                }
                finally
                {
                    bars.Finish();
                }
            });
    }

    /// <summary>A line of information on stdout (shown unless quiet or JSON).</summary>
    public void Info(string text)
    {
        if (!ShowsSummary)
        {
            return;
        }

        if (RichOut)
        {
            Out.MarkupLine($"[green]>[/] {Markup.Escape(text)}");
        }
        else
        {
            Console.WriteLine(text);
        }
    }

    /// <summary>A plain line on stdout, for lists under an <see cref="Info"/> heading (shown unless quiet or JSON).</summary>
    public void Line(string text)
    {
        if (!ShowsSummary)
        {
            return;
        }

        if (RichOut)
        {
            Out.WriteLine(text);
        }
        else
        {
            Console.WriteLine(text);
        }
    }

    /// <summary>A one-line error on stderr (in red on a terminal), shown even when quiet.</summary>
    public void Error(string text)
    {
        if (RichErr)
        {
            Err.MarkupLine($"[red]error:[/] {Markup.Escape(text)}");
        }
        else
        {
            Console.Error.WriteLine($"error: {text}");
        }
    }

    public void Warning(string text)
    {
        if (!ShowsSummary)
        {
            return;
        }

        if (RichOut)
        {
            Out.MarkupLine($"[yellow]warning:[/] {Markup.Escape(text)}");
        }
        else
        {
            Console.WriteLine($"warning: {text}");
        }
    }

    /// <summary>What automatic lever choice did: the choice, why, its time, then every candidate with its score.</summary>
    public void LeverSearch(LeverSearchReport search)
    {
        if (search.Chosen is not { } chosen)
        {
            Info($"Automatic lever choice {search.Reason}");
            return;
        }

        Info(string.Create(CultureInfo.InvariantCulture, $"Automatic lever choice ({search.Duration.TotalSeconds:F1} s, {search.Folds}-fold cross-validation x{search.Repetitions} on {search.ImagesUsed} training images; kept as given: {(search.Fixed == AutoLevers.None ? "none" : search.Fixed.ToString())}): {chosen.Description}."));
        Info("Why: " + search.Reason + ".");
        if (chosen.TestTimeAugmentation != TestTimeAugmentation.None)
        {
            Info("Each prediction runs the backbone twice (image and mirror image); train with --single-view to keep it to one run.");
        }

        if (!ShowsSummary)
        {
            return;
        }

        Info(string.Create(CultureInfo.InvariantCulture, $"{search.Candidates.Count} candidates (held-out log-loss +/- standard error, accuracy):"));
        foreach (var c in search.Candidates)
        {
            Line(string.Create(CultureInfo.InvariantCulture, $"  {(c == chosen ? "*" : " ")} {c.MeanLogLoss:F3} +/- {c.StandardError:F3}  {c.Accuracy:P1}  {c.Description}"));
        }
    }

    public void Skipped(IReadOnlyCollection<SkippedImage> skipped, int ignored)
    {
        if (!ShowsSummary)
        {
            return;
        }

        if (skipped.Count > 0)
        {
            if (RichOut)
            {
                var table = new Table().Border(TableBorder.Rounded).Title($"[yellow]Skipped {skipped.Count} bad image{Plural(skipped.Count)}[/]");
                table.AddColumns("Reason", "File and problem");
                foreach (var s in skipped)
                {
                    table.AddRow(new Markup($"[yellow]{s.Reason}[/]"), new Text(s.Message));
                }

                Out.Write(table);
            }
            else
            {
                Console.WriteLine($"Skipped {skipped.Count} bad image{Plural(skipped.Count)}:");
                foreach (var s in skipped)
                {
                    Console.WriteLine($"  [{s.Reason}] {s.Message}");
                }
            }
        }

        if (ignored > 0)
        {
            Info($"Ignored {ignored} file{Plural(ignored)} without an image extension or outside class folders.");
        }
    }

    public void Metrics(string on, ClassificationMetrics m)
    {
        if (!ShowsSummary)
        {
            return;
        }

        if (!RichOut)
        {
            Console.WriteLine($"Metrics on {m.Count} {on} images:");
            Console.WriteLine($"  micro accuracy {F3(m.MicroAccuracy)}   macro accuracy {F3(m.MacroAccuracy)}   log-loss {F3(m.LogLoss)}   log-loss reduction {F3(m.LogLossReduction)}");
            Console.WriteLine("  top-k accuracy " + string.Join("  ", m.TopKAccuracyForAllK.Select((a, i) => $"top-{i + 1} {F3(a)}")));
            var width = Math.Max(5, m.Classes.Max(c => c.Length));
            Console.WriteLine($"  {"class".PadRight(width)}  precision  recall     f1  support");
            foreach (var c in m.PerClass)
            {
                Console.WriteLine($"  {c.Label.PadRight(width)}  {F3(c.Precision),9}  {F3(c.Recall),6}  {F3(c.F1),5}  {c.Support,7}");
            }

            return;
        }

        var summary = new Table().Border(TableBorder.Rounded).Title($"[bold]Metrics on {m.Count} {on} images[/]");
        summary.AddColumn("Metric").AddColumn(new TableColumn("Value").RightAligned());
        summary.AddRow(new Text("micro accuracy"), Score(m.MicroAccuracy));
        summary.AddRow(new Text("macro accuracy"), Score(m.MacroAccuracy));
        summary.AddRow(new Text("log-loss"), new Text(F3(m.LogLoss)));
        summary.AddRow(new Text("log-loss reduction"), new Text(F3(m.LogLossReduction)));
        for (var k = 0; k < m.TopKAccuracyForAllK.Count; k++)
        {
            summary.AddRow(new Text($"top-{k + 1} accuracy"), Score(m.TopKAccuracyForAllK[k]));
        }

        var perClass = new Table().Border(TableBorder.Rounded).Title("[bold]Per class[/]");
        perClass.AddColumn("Class");
        foreach (var name in new[] { "Precision", "Recall", "F1", "Support" })
        {
            perClass.AddColumn(new TableColumn(name).RightAligned());
        }

        foreach (var c in m.PerClass)
        {
            perClass.AddRow(new Text(c.Label), Score(c.Precision), Score(c.Recall), Score(c.F1), new Text(c.Support.ToString(Invariant)));
        }

        Out.Write(summary);
        Out.Write(perClass);
    }

    private static IAnsiConsole Create(TextWriter writer, bool rich, bool forced) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(writer),
        Ansi = rich ? AnsiSupport.Yes : AnsiSupport.No,
        ColorSystem = !rich ? ColorSystemSupport.NoColors : forced ? ColorSystemSupport.Standard : ColorSystemSupport.Detect,
        Interactive = rich ? InteractionSupport.Yes : InteractionSupport.No,
    });

    private static Markup Score(double value)
    {
        var colour = value >= 0.9 ? "green" : value >= 0.7 ? "yellow" : "red";
        return new Markup($"[{colour}]{F3(value)}[/]");
    }

    private static string F3(double value) => value.ToString("F3", Invariant);

    private static string Plural(int count) => count == 1 ? string.Empty : "s";

    private static string Describe(TrainingPhase phase) => phase switch
    {
        TrainingPhase.Scanning => "Scanning folders",
        TrainingPhase.Validating => "Checking images",
        TrainingPhase.Featurizing => "Computing features",
        TrainingPhase.Training => "Training the head",
        TrainingPhase.Evaluating => "Computing metrics",
        _ => phase.ToString(),
    };

    /// <summary>One live bar per phase, with percentage, ETA and elapsed time.</summary>
    private sealed class BarProgress(ProgressContext context) : IProgress<TrainingProgress>
    {
        private readonly Lock _gate = new();
        private TrainingPhase? _phase;
        private ProgressTask? _task;

        public void Report(TrainingProgress value)
        {
            lock (_gate)
            {
                if (value.Phase == TrainingPhase.Completed)
                {
                    FinishCurrent();
                    return;
                }

                if (value.Phase != _phase || _task is null)
                {
                    FinishCurrent();
                    _phase = value.Phase;
                    _task = context.AddTask(Describe(value.Phase), autoStart: true, maxValue: Math.Max(1, value.Total));
                }

                _task.IsIndeterminate = value.Total <= 1 && value.Completed < Math.Max(1, value.Total);
                if (value.Total > 0)
                {
                    _task.MaxValue = value.Total;
                    _task.Value = value.Completed;
                }
            }
        }

        public void Finish()
        {
            lock (_gate)
            {
                FinishCurrent();
            }
        }

        private void FinishCurrent()
        {
            if (_task is { StopTime: null })
            {
                _task.IsIndeterminate = false;
                _task.Value = _task.MaxValue;
                _task.StopTask(); // Freezes the elapsed time shown for the phase.
            }

            _task = null;
            _phase = null;
        }
    }

    /// <summary>Plain text for pipes and logs: one line per phase on stderr, and the featurising count every 25 %.</summary>
    private sealed class PlainProgress : IProgress<TrainingProgress>
    {
        private readonly Lock _gate = new();
        private TrainingPhase? _last;
        private int _lastPercent = -1;

        public void Report(TrainingProgress value)
        {
            lock (_gate)
            {
                if (value.Phase != _last)
                {
                    _last = value.Phase;
                    _lastPercent = -1;
                    if (value.Phase != TrainingPhase.Completed)
                    {
                        Console.Error.WriteLine($"{Describe(value.Phase)}...");
                    }
                }

                if (value.Phase == TrainingPhase.Featurizing && value.Total > 0)
                {
                    var percent = 100 * value.Completed / value.Total;
                    if (percent / 25 != _lastPercent / 25)
                    {
                        _lastPercent = percent;
                        Console.Error.WriteLine(string.Create(Invariant, $"  {value.Completed}/{value.Total} images, {value.Elapsed.TotalSeconds:F0} s elapsed, ETA {value.EstimatedRemaining?.TotalSeconds ?? 0:F0} s"));
                    }
                }
            }
        }
    }
}
