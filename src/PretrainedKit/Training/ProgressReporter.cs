using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace PretrainedKit.Training;

/// <summary>
/// The one progress reporter of training and evaluation: it times the phases, logs each phase's duration, and delivers
/// reports one at a time (the featurisation pass reports from several threads, and a receiver must never run
/// concurrently with itself or see <see cref="TrainingProgress.Elapsed"/> out of order).
/// </summary>
internal sealed class ProgressReporter
{
    private readonly IProgress<TrainingProgress>? _progress;
    private readonly ILogger _logger;
    private readonly Stopwatch _total = Stopwatch.StartNew();
    private readonly Stopwatch _phase = Stopwatch.StartNew();
    private readonly Dictionary<TrainingPhase, TimeSpan> _durations = [];
    private readonly object _gate = new();

    public ProgressReporter(IProgress<TrainingProgress>? progress, ILogger logger)
    {
        _progress = progress;
        _logger = logger;
    }

    /// <summary>Gets the time spent in each phase ended so far.</summary>
    public IReadOnlyDictionary<TrainingPhase, TimeSpan> Durations => _durations;

    /// <summary>Gets the time since the run started.</summary>
    public TimeSpan Elapsed => _total.Elapsed;

    /// <summary>Reports progress in a phase.</summary>
    /// <param name="phase">The phase.</param>
    /// <param name="done">Items done.</param>
    /// <param name="count">Items in all.</param>
    /// <param name="eta">The estimated time left, if known.</param>
    public void Report(TrainingPhase phase, int done, int count, TimeSpan? eta)
    {
        if (_progress is null)
        {
            return;
        }

        lock (_gate)
        {
            _progress.Report(new TrainingProgress(phase, done, count, _total.Elapsed, eta));
        }
    }

    /// <summary>Ends a phase: its duration is recorded (added to, if the phase ran before) and logged.</summary>
    /// <param name="phase">The phase.</param>
    public void EndPhase(TrainingPhase phase)
    {
        var elapsed = _phase.Elapsed;
        _durations[phase] = _durations.GetValueOrDefault(phase) + elapsed;
        TrainingLog.PhaseDone(_logger, phase, elapsed);
        _phase.Restart();
    }

    /// <summary>Reports the run as completed.</summary>
    public void Complete() => Report(TrainingPhase.Completed, 1, 1, TimeSpan.Zero);
}

/// <summary>The training layer's log messages (source-generated, free when logging is off).</summary>
internal static partial class TrainingLog
{
    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "{Phase} took {Elapsed}")]
    public static partial void PhaseDone(ILogger logger, TrainingPhase phase, TimeSpan elapsed);
}
