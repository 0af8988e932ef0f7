namespace PretrainedKit.Imaging;

/// <summary>
/// The process-wide memory budget for image decoding: a counting semaphore in bytes, first come first served, so that
/// many concurrent decodes of huge images wait for each other instead of allocating together until the process dies.
/// </summary>
/// <threadsafety>Safe to use from many threads at once.</threadsafety>
internal sealed class DecodeBudget
{
    private readonly object _gate = new();
    private readonly LinkedList<Waiter> _queue = new();
    private long _capacity;
    private long _inUse;
    private long _peak;

    public DecodeBudget(long capacity) => _capacity = capacity;

    /// <summary>Gets the budget that every decode shares (<see cref="ImageLimits.DecodeMemoryBudgetBytes"/>).</summary>
    public static DecodeBudget Shared { get; } = new(ImageLimits.DefaultDecodeMemoryBudgetBytes);

    /// <summary>Gets or sets the budget in bytes; raising it lets waiting decodes proceed.</summary>
    public long Capacity
    {
        get
        {
            lock (_gate)
            {
                return _capacity;
            }
        }

        set
        {
            lock (_gate)
            {
                _capacity = value;
                GrantWaiters();
            }
        }
    }

    /// <summary>Gets the most bytes held at once since the last <see cref="ResetPeak"/> (for tests and benchmarks).</summary>
    public long Peak
    {
        get
        {
            lock (_gate)
            {
                return _peak;
            }
        }
    }

    /// <summary>Gets the bytes held now.</summary>
    public long InUse
    {
        get
        {
            lock (_gate)
            {
                return _inUse;
            }
        }
    }

    /// <summary>Forgets the peak.</summary>
    public void ResetPeak()
    {
        lock (_gate)
        {
            _peak = _inUse;
        }
    }

    /// <summary>Waits until <paramref name="bytes"/> fit in the budget, then holds them until the lease is disposed.</summary>
    /// <returns>The lease, or <see langword="null"/> when <paramref name="bytes"/> exceed the whole budget (the caller refuses the image).</returns>
    /// <exception cref="OperationCanceledException">Cancelled while waiting; nothing is held.</exception>
    public Lease? Acquire(long bytes, CancellationToken cancellationToken = default)
    {
        Waiter waiter;
        lock (_gate)
        {
            if (bytes > _capacity)
            {
                return null;
            }

            if (_queue.Count == 0 && _inUse + bytes <= _capacity)
            {
                Take(bytes);
                return new Lease(this, bytes);
            }

            waiter = new Waiter(bytes);
            waiter.Node = _queue.AddLast(waiter);
        }

        try
        {
            waiter.Granted.Wait(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            lock (_gate)
            {
                if (waiter.Node is { List: not null } node)
                {
                    _queue.Remove(node);
                    GrantWaiters(); // The head may have been this waiter, holding back smaller ones behind it.
                    throw;
                }
            }

            if (!waiter.Refused)
            {
                Release(bytes); // Granted just as the wait was cancelled: give it back.
            }

            throw;
        }
        finally
        {
            waiter.Granted.Dispose();
        }

        return waiter.Refused ? null : new Lease(this, bytes);
    }

    private void Take(long bytes)
    {
        _inUse += bytes;
        _peak = Math.Max(_peak, _inUse);
    }

    private void Release(long bytes)
    {
        lock (_gate)
        {
            _inUse -= bytes;
            GrantWaiters();
        }
    }

    /// <summary>Grants waiters in arrival order while they fit; one that no longer fits a lowered budget is refused.</summary>
    private void GrantWaiters()
    {
        while (_queue.First is { } first)
        {
            var waiter = first.Value;
            if (waiter.Bytes > _capacity)
            {
                waiter.Refused = true;
            }
            else if (_inUse + waiter.Bytes <= _capacity)
            {
                Take(waiter.Bytes);
            }
            else
            {
                return;
            }

            _queue.RemoveFirst();
            waiter.Granted.Set();
        }
    }

    /// <summary>Holds bytes of the budget until disposed.</summary>
    internal sealed class Lease : IDisposable
    {
        private DecodeBudget? _owner;

        public Lease(DecodeBudget owner, long bytes)
        {
            _owner = owner;
            Bytes = bytes;
        }

        /// <summary>Gets the bytes held.</summary>
        public long Bytes { get; }

        public void Dispose() => Interlocked.Exchange(ref _owner, null)?.Release(Bytes);
    }

    private sealed class Waiter(long bytes)
    {
        public long Bytes { get; } = bytes;

        public ManualResetEventSlim Granted { get; } = new(false);

        public LinkedListNode<Waiter>? Node { get; set; }

        public bool Refused { get; set; }
    }
}
