namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// A write-only wrapper that counts bytes and calls <c>onWrite(writtenSoFar, count)</c> before each write, so a test
/// can fail the write (a full disk) or stop the process part-way (a kill during save).
/// </summary>
internal sealed class WriteFaultStream(Stream inner, Action<Stream, long, int> onWrite) : Stream
{
    private long _written;

    public override bool CanRead => false;

    public override bool CanSeek => inner.CanSeek;

    public override bool CanWrite => true;

    public override long Length => inner.Length;

    public override long Position { get => inner.Position; set => inner.Position = value; }

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

    public override void SetLength(long value) => inner.SetLength(value);

    public override void Write(byte[] buffer, int offset, int count)
    {
        onWrite(inner, _written, count);
        inner.Write(buffer, offset, count);
        _written += count;
    }
}
