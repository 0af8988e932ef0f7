namespace PretrainedKit.Internal;

/// <summary>
/// Lets many callers use a native resource at once and makes disposal wait for them: after <see cref="Close"/> every new
/// call gets <see cref="ObjectDisposedException"/>, and calls already in flight finish before the resource is freed.
/// </summary>
internal sealed class UsageGuard
{
    private readonly object _gate = new();
    private int _active;
    private bool _closed;

    public Lease Enter(string owner)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closed, owner);
            _active++;
            return new Lease(this);
        }
    }

    /// <summary>Refuses new callers and waits until the ones in flight have left. Returns false if already closed.</summary>
    public bool Close()
    {
        lock (_gate)
        {
            if (_closed)
            {
                return false;
            }

            _closed = true;
            while (_active > 0)
            {
                Monitor.Wait(_gate);
            }

            return true;
        }
    }

    private void Exit()
    {
        lock (_gate)
        {
            _active--;
            if (_active == 0)
            {
                Monitor.PulseAll(_gate);
            }
        }
    }

    internal readonly struct Lease : IDisposable
    {
        private readonly UsageGuard? _guard;

        public Lease(UsageGuard guard) => _guard = guard;

        public void Dispose() => _guard?.Exit();
    }
}
