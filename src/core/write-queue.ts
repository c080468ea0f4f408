import type { Socket } from 'node:net';

/** Batches are built up to this size; small frames are copied into one write. */
const BATCH_BYTES = 64 * 1024;
const COPY_BELOW_BYTES = 4 * 1024;

/**
 * The write side of one connection. Frames are queued and flushed on the next
 * tick, coalescing small frames into few `write` calls. When the socket reports
 * backpressure the queue holds frames until `drain`. Its bytes, plus what the
 * socket itself still buffers, are what `maxQueueBytes` bounds.
 */
export class WriteQueue {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;
  private blocked = false;
  private closed = false;
  private readonly flushBound = () => this.flush();
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly socket: Socket) {
    socket.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
  }

  /** Bytes accepted but not yet handed to the kernel. */
  get queuedBytes(): number {
    return this.bytes + this.socket.writableLength;
  }

  push(chunks: Buffer[], size: number): void {
    for (const chunk of chunks) this.chunks.push(chunk);
    this.bytes += size;
    if (this.bytes >= BATCH_BYTES && !this.blocked) {
      this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushBound);
    }
  }

  /**
   * Resolves once this queue has handed everything to the socket (or is closed);
   * `socket.end()` then flushes the socket's own buffer before the FIN.
   */
  whenFlushed(): Promise<void> {
    if (this.closed || this.chunks.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops what is queued (the connection is gone); returns how many bytes were not delivered. */
  close(): number {
    const dropped = this.queuedBytes;
    this.closed = true;
    this.chunks = [];
    this.bytes = 0;
    this.notifyIdle();
    return dropped;
  }

  private flush(): void {
    this.scheduled = false;
    while (this.chunks.length > 0 && !this.blocked && !this.closed) {
      const batch = this.takeBatch();
      if (!this.socket.write(batch)) this.blocked = true;
    }
    if (this.chunks.length === 0 && this.idleWaiters.length > 0) this.notifyIdle();
  }

  /** Takes one large chunk as is, or copies a run of small chunks into one buffer. */
  private takeBatch(): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= COPY_BELOW_BYTES || this.chunks.length === 1) {
      this.chunks.shift();
      this.bytes -= first.length;
      return first;
    }
    let count = 0;
    let total = 0;
    while (count < this.chunks.length) {
      const next = this.chunks[count]!;
      if (next.length >= COPY_BELOW_BYTES || total + next.length > BATCH_BYTES) break;
      total += next.length;
      count++;
    }
    const batch = Buffer.concat(this.chunks.splice(0, count), total);
    this.bytes -= total;
    return batch;
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
