using PretrainedKit.Featurization;
using PretrainedKit.Models;
using PretrainedKit.Tests.Featurization;
using Microsoft.Extensions.Logging;
using PretrainedKit.Backbones;

namespace PretrainedKit.Tests.Backbones;

public class ExecutionProviderTests
{
    [Test]
    public void Open_WithoutCuda_FallsBackToTheCpuWithALogLine()
    {
        var logger = new ListLogger();
        using var session = TestSession.Open(KnownBackbones.ResNet18, logger);
        var features = new float[512];
        session.Run(new float[session.TensorLength], features);
        Assert.That(features.Any(f => f != 0), Is.True, "the session works");
        // This machine has the CPU-only ONNX Runtime package: either the CUDA provider is missing (fallback logged)
        // or it was found (logged as well). Either way the choice is logged, never silent.
        Assert.That(logger.Messages, Has.Some.Contains("the backbone runs on the CPU").Or.Some.Contains("Backbone runs on CUDA"));
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add(formatter(state, exception));
    }
}
