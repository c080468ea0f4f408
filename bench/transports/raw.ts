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

/**
 * Splits a byte stream into frames: flags u8 | nonce u32 | length u32 | body. A frame that
 * spans reads is gathered and joined once it is whole (one copy), not re-joined per read.
 */
function framer(onFrame: (flags: number, nonce: number, body: Buffer) => void): (chunk: Buffer) => void {
  let parts: Buffer[] = [];
  let have = 0;
  let need = 0;
  return (chunk) => {
    let buf = chunk;
    if (have > 0) {
      parts.push(chunk);
      have += chunk.length;
      if (have < need) return;
      buf = Buffer.concat(parts, have);
      parts = [];
      have = 0;
    }
    let off = 0;
    while (buf.length - off >= HEADER) {
      const length = buf.readUInt32BE(off + 5);
      if (buf.length - off < HEADER + length) break;
      onFrame(buf[off]!, buf.readUInt32BE(off + 1), buf.subarray(off + HEADER, off + HEADER + length));
      off += HEADER + length;
    }
    if (off < buf.length) {
      const rest = buf.subarray(off);
      need = rest.length < HEADER ? HEADER : HEADER + rest.readUInt32BE(5);
      parts = [rest];
      have = rest.length;
    }
  };
}

/** Bodies up to this size are copied behind their header; larger ones go out by reference. */
const COPY_BELOW = 1024;

/** A frame: one buffer for a small body, header and body for a large one (writev under cork, no copy). */
function frame(flags: number, nonce: number, body: Buffer): Buffer[] {
  const small = body.length < COPY_BELOW;
  const header = Buffer.allocUnsafe(small ? HEADER + body.length : HEADER);
  header[0] = flags;
  header.writeUInt32BE(nonce, 1);
  header.writeUInt32BE(body.length, 5);
  if (!small) return [header, body];
  body.copy(header, HEADER);
  return [header];
}

const bytes = (data: Buffer | string) => (typeof data === 'string' ? Buffer.from(data) : data);

/**
 * Writes coalesced per tick (cork, then uncork on the next tick), as any serious
 * framing layer does: one write per frame would make this reference a syscall
 * benchmark rather than the practical limit.
 */
function corkedWrite(socket: Socket, frame: Buffer[]): boolean {
  if (socket.writableCorked === 0) {
    socket.cork();
    process.nextTick(() => socket.uncork());
  }
  let ok = true;
  for (const buf of frame) ok = socket.write(buf);
  return ok;
}

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
        socket.on(
          'data',
          framer((flags, nonce, body) => {
            if (flags & REQUEST) corkedWrite(socket, frame(RESPONSE_END | 1, nonce, body));
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
    const sockets: Socket[] = [];
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
        framer((_flags, n, body) => {
          const resolve = waiting.get(n);
          waiting.delete(n);
          resolve?.(body);
        }),
      );
      sockets.push(socket);
    }
    const write = (socket: Socket, f: Buffer[]): void | Promise<void> => {
      if (!corkedWrite(socket, f)) return once(socket, 'drain').then(() => undefined);
    };
    return {
      emit: (i, data) => write(sockets[i]!, frame(0x01, 0, bytes(data))),
      broadcast(data) {
        const f = frame(0x01, 0, bytes(data));
        let wait: Promise<void> | undefined;
        for (const s of sockets) wait = (write(s, f) as Promise<void> | undefined) ?? wait;
        return wait;
      },
      request(data) {
        nonce = nonce >= 0xffffffff ? 1 : nonce + 1;
        const n = nonce;
        return new Promise((resolve) => {
          waiting.set(n, resolve);
          corkedWrite(sockets[0]!, frame(REQUEST | 1, n, bytes(data)));
        });
      },
      async close() {
        sockets.forEach((s) => s.destroy());
      },
    };
  },
});
