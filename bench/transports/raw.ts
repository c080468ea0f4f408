// Reference (1): node:net with the same 9-byte header and no Nest: the practical limit.
// With `tls`, the same over node:tls (TLS 1.3, Ed25519 certificates on both sides, as the
// p2p transport uses): the practical limit for the TLS figures.
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import * as tls from 'node:tls';
import { createTlsCredentials, loadIdentity } from 'nestjs-p2p';
import type { BenchClient, BenchServer, OnEvent, Target, Transport } from './types.js';

const HEADER = 9;
const REQUEST = 0x08;
const RESPONSE_END = 0x60;

type OnFrame = (flags: number, nonce: number, bytes: Buffer, start: number, end: number) => void;

/**
 * Splits a byte stream into frames: flags u8 | nonce u32 | length u32 | body. Every frame of a
 * read is decoded in one pass and handed on as its place in the read (no view, no copy); a frame
 * that spans reads is gathered into one buffer of its own length (one copy).
 */
function framer(onFrame: OnFrame): (chunk: Buffer) => void {
  const header = Buffer.allocUnsafe(HEADER);
  let headerFill = 0;
  let body: Buffer | undefined;
  let bodyFill = 0;
  let flags = 0;
  let nonce = 0;
  return (chunk) => {
    const n = chunk.length;
    let off = 0;
    while (off < n) {
      if (body) {
        const take = Math.min(body.length - bodyFill, n - off);
        chunk.copy(body, bodyFill, off, off + take);
        bodyFill += take;
        off += take;
        if (bodyFill === body.length) {
          const whole = body;
          body = undefined;
          onFrame(flags, nonce, whole, 0, whole.length);
        }
        continue;
      }
      let length: number;
      if (headerFill === 0 && n - off >= HEADER) {
        flags = chunk[off]!;
        nonce = chunk.readUInt32BE(off + 1);
        length = chunk.readUInt32BE(off + 5);
        off += HEADER;
        if (n - off >= length) {
          onFrame(flags, nonce, chunk, off, off + length);
          off += length;
          continue;
        }
      } else {
        const take = Math.min(HEADER - headerFill, n - off);
        chunk.copy(header, headerFill, off, off + take);
        headerFill += take;
        off += take;
        if (headerFill < HEADER) continue;
        headerFill = 0;
        flags = header[0]!;
        nonce = header.readUInt32BE(1);
        length = header.readUInt32BE(5);
      }
      body = Buffer.allocUnsafe(length);
      bodyFill = 0;
      if (length === 0) {
        body = undefined;
        onFrame(flags, nonce, chunk, off, off);
      }
    }
  };
}

/** Bodies below this size are copied into the write slab; larger ones go out by reference (writev, no copy). */
const COPY_BELOW = 1024;
const SLAB = 64 * 1024;

/**
 * The write side of one socket, as any serious framing layer batches it: small frames are
 * encoded straight into a 64 KiB slab, and the slab goes to the socket once per tick (or
 * when full) as one write; a large body follows its header by reference under cork. One
 * write per frame would make this reference a syscall and stream-bookkeeping benchmark
 * rather than what the wire can carry.
 */
class Writer {
  private slab = Buffer.allocUnsafe(SLAB);
  private start = 0;
  private used = 0;
  private scheduled = false;
  /** The socket's last write() said its buffer is full. */
  full = false;
  private readonly flushBound = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(readonly socket: Socket) {
    socket.on('drain', () => (this.full = false));
  }

  /** Queues a frame whose body is `bytes[start, end)`; false when the caller should wait for 'drain'. */
  frame(flags: number, nonce: number, bytes: Buffer, start: number, end: number): boolean {
    const length = end - start;
    const small = length < COPY_BELOW;
    const need = HEADER + (small ? length : 0);
    if (this.slab.length - this.used < need) this.newSlab(need);
    const slab = this.slab;
    let at = this.used;
    slab[at] = flags;
    slab.writeUInt32BE(nonce, at + 1);
    slab.writeUInt32BE(length, at + 5);
    at += HEADER;
    if (small) {
      this.used = at + bytes.copy(slab, at, start, end);
    } else {
      this.used = at;
      this.socket.cork();
      this.flush();
      this.full = !this.socket.write(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
      this.socket.uncork();
    }
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushBound);
    }
    return !this.full;
  }

  private newSlab(atLeast: number): void {
    this.flush();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB, atLeast));
    this.start = this.used = 0;
  }

  private flush(): void {
    if (this.used === this.start) return;
    this.full = !this.socket.write(this.slab.subarray(this.start, this.used));
    this.start = this.used;
  }
}

const bytes = (data: Buffer | string) => (typeof data === 'string' ? Buffer.from(data) : data);

const credentials = () => createTlsCredentials(loadIdentity());

export const rawTransport = (secure: boolean): Transport => ({
  async startServer(receivers: number, onEvent: OnEvent): Promise<BenchServer> {
    const servers: Server[] = [];
    const sockets = new Set<Socket>();
    const context = secure ? (await credentials()).context : undefined;
    for (let i = 0; i < receivers; i++) {
      const onConnection = (socket: Socket) => {
        sockets.add(socket);
        socket.setNoDelay(true);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => undefined);
        const writer = new Writer(socket);
        socket.on(
          'data',
          framer((flags, nonce, bytes, start, end) => {
            if (flags & REQUEST) writer.frame(RESPONSE_END | 1, nonce, bytes, start, end);
            else onEvent();
          }),
        );
      };
      // tls.Server would build its own context from key/cert; this is what it does with one given.
      const server = createServer((socket) =>
        onConnection(context ? new tls.TLSSocket(socket, { isServer: true, secureContext: context, requestCert: true, rejectUnauthorized: false }) : socket),
      );
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      servers.push(server);
    }
    return {
      targets: servers.map((s) => ({ address: `127.0.0.1:${(s.address() as { port: number }).port}` })),
      async close() {
        sockets.forEach((s) => s.destroy());
        await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      },
    };
  },

  async startClient(targets: Target[]): Promise<BenchClient> {
    const writers: Writer[] = [];
    const waiting = new Map<number, (v: unknown) => void>();
    let nonce = 0;
    const context = secure ? (await credentials()).context : undefined;
    for (const target of targets) {
      const [host, port] = target.address.split(':');
      const socket = context
        ? tls.connect({ host, port: Number(port), secureContext: context, rejectUnauthorized: false, checkServerIdentity: () => undefined })
        : connect({ host, port: Number(port) });
      socket.setNoDelay(true);
      await once(socket, context ? 'secureConnect' : 'connect');
      socket.on(
        'data',
        framer((_flags, n, body, start, end) => {
          const resolve = waiting.get(n);
          waiting.delete(n);
          resolve?.(body.subarray(start, end));
        }),
      );
      writers.push(new Writer(socket));
    }
    const write = (writer: Writer, body: Buffer): void | Promise<void> => {
      if (!writer.frame(0x01, 0, body, 0, body.length)) return once(writer.socket, 'drain').then(() => undefined);
    };
    return {
      emit: (i, data) => write(writers[i]!, bytes(data)),
      broadcast(data) {
        const body = bytes(data);
        let wait: Promise<void> | undefined;
        for (const w of writers) wait = (write(w, body) as Promise<void> | undefined) ?? wait;
        return wait;
      },
      request(data) {
        nonce = nonce >= 0xffffffff ? 1 : nonce + 1;
        const n = nonce;
        const body = bytes(data);
        return new Promise((resolve) => {
          waiting.set(n, resolve);
          writers[0]!.frame(REQUEST | 1, n, body, 0, body.length);
        });
      },
      async close() {
        writers.forEach((w) => w.socket.destroy());
      },
    };
  },
});
