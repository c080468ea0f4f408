/**
 * The read side of one connection: feeds what the socket reads to the frame decoder, tells
 * a TLS ClientHello sent to a plaintext node from a broken frame, looks after the partial
 * frame (FrameWatch: stalls, the node's budget), and pauses, resumes and stops reading.
 * Its host (ReaderHost) takes each frame and closes the connection when the input breaks
 * the protocol.
 */

import type { Socket } from 'node:net';
import { P2PError, P2PHandshakeError, P2PProtocolError, type PeerRef } from '../common/errors.js';
import { FrameScanner, type FrameAt } from '../wire/codec.js';
import { GoodbyeReason } from '../wire/control.js';
import { FrameWatch } from './frame-watch.js';
import type { PartialFrameBudget } from './partial-frames.js';
import { looksLikeTls } from './secure-channel.js';

/** What the reader needs from its connection. */
export interface ReaderHost {
  /** One whole frame, its body `bytes[start, end)`, called as it is (unbound); throwing closes the connection with a protocol error. */
  readonly onFrame: FrameAt;
  ref(): PeerRef;
  /** Closes the connection with a goodbye giving `reason`. */
  fail(error: Error, reason: GoodbyeReason): void;
  /** A stalled partial frame, or one the node's budget cannot hold: close at once, even a draining duplicate. */
  cut(message: string): void;
}

export interface ReaderOptions {
  maxFrameBytes: number;
  frameStallMs: number;
  partialFrames?: PartialFrameBudget;
  /** TLS-secured: the first bytes are already past the TLS layer, so none of them is sniffed. */
  secure: boolean;
}

export class FrameReader {
  /** When bytes last arrived (Date.now()). */
  lastReadAt = Date.now();
  private sawData = false;
  private readonly decoder: FrameScanner;
  private readonly watch: FrameWatch;

  constructor(
    private readonly raw: Socket,
    private readonly host: ReaderHost,
    private readonly options: ReaderOptions,
  ) {
    this.watch = new FrameWatch(
      { partial: () => this.decoder.partial, progress: () => this.decoder.partialProgress(), cut: (message) => this.cut(message) },
      options.frameStallMs,
      options.partialFrames,
    );
    this.decoder = new FrameScanner(
      options.maxFrameBytes,
      host.onFrame,
      (allocated) => this.watch.allocated(allocated),
    );
  }

  /** Bytes read from the socket. */
  push(chunk: Buffer): void {
    this.lastReadAt = Date.now();
    const first = !this.sawData;
    this.sawData = true;
    // A TLS ClientHello as the very first bytes: say so, rather than report "bad flags 0x16".
    if (first && !this.options.secure && looksLikeTls(chunk)) {
      this.host.fail(new P2PHandshakeError('peer started a TLS handshake but this node runs with tls: false', this.host.ref()), GoodbyeReason.TlsMismatch);
      return;
    }
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.failDecoding(err);
      return;
    }
    this.watch.progress(this.lastReadAt);
  }

  /** Decodes nothing after the current frame, and stops reading the socket. */
  pause(): void {
    this.decoder.pause();
    this.watch.pause();
    this.raw.pause();
  }

  /** Decodes the frames the pause held back; false when one broke the protocol (the connection is then closing). */
  decodeHeld(): boolean {
    try {
      this.decoder.resume();
      return true;
    } catch (err) {
      this.failDecoding(err);
      return false;
    }
  }

  /** Reads from the socket again. */
  resume(): void {
    this.watch.resume();
    this.raw.resume();
  }

  /** Nothing more is decoded: the partial frame and held reads are dropped, and leave the budget. */
  stop(): void {
    this.decoder.abort();
    this.watch.stop();
  }

  /** Closes, and frees the partial frame's memory now. */
  private cut(message: string): void {
    this.host.cut(message);
    this.stop();
  }

  /** A frame broke the protocol: close the connection, saying why. */
  private failDecoding(err: unknown): void {
    this.host.fail(err instanceof P2PError ? err : new P2PProtocolError(String(err), this.host.ref()), GoodbyeReason.ProtocolError);
  }
}
