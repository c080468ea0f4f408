import type { Socket } from 'node:net';
import { ControlType, encodeControl, type GoodbyeReason } from '../wire/control.js';

/**
 * Refuses a stream that never becomes a P2PSocket (a refused certificate, a plaintext dialer on a
 * TLS port): writes a goodbye saying why, reads and drops until the remote closes its side, and
 * destroys the stream after `graceMs` if it has not closed by then.
 */
export function goodbyeAndClose(stream: Socket, reason: GoodbyeReason, message: string, graceMs: number): void {
  stream.on('error', () => undefined);
  const frame = encodeControl({ type: ControlType.Goodbye, reason, message });
  stream.end(Buffer.concat(frame.chunks));
  stream.resume(); // read (and drop) until the dialer closes its side
  const timer = setTimeout(() => stream.destroy(), graceMs).unref();
  stream.once('close', () => clearTimeout(timer));
}
