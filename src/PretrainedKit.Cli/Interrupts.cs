using System.Runtime.InteropServices;

namespace PretrainedKit.Cli;

/// <summary>
/// Turns the first SIGINT (Ctrl-C) or SIGTERM into a cancellation: the signal's default action (killing the process) is
/// suppressed and <see cref="Token"/> is cancelled, so the running command stops at its next check, prints
/// "Cancelled." and exits with 130 after its cleanup. A second SIGINT or SIGTERM is left to its default action and ends the
/// process at once, as does SIGQUIT (Ctrl-\), which is never intercepted: both are the user's way out when the
/// cancellation takes too long, and like any kill they may leave a hidden <c>.NAME.GUID.tmp</c> file behind.
/// </summary>
internal sealed class Interrupts : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _received;

    public Interrupts()
    {
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)];
    }

    /// <summary>Gets the token cancelled by the first SIGINT or SIGTERM.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>Gets a value indicating whether a SIGINT or SIGTERM has arrived.</summary>
    public bool Received => Volatile.Read(ref _received) > 0;

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _source.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _received) > 1)
        {
            return; // The second one: default action, the process ends now.
        }

        context.Cancel = true;
        _source.Cancel();
    }
}
