import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * Listeners that accept and say nothing: a dial there is in flight until the dialer's handshake timeout (in the wild,
 * any address that drops SYNs does as much). `close()` ends every one of them and what they accepted.
 */
export class BlackHoles {
  private readonly servers: Server[] = [];
  private readonly sockets: Socket[] = [];

  /** A black hole on `host` (port chosen by the system): its address, and how many connections it has accepted. */
  async open(host: string): Promise<{ address: string; accepted: () => number }> {
    let accepted = 0;
    const server = createServer((socket) => {
      accepted++;
      this.sockets.push(socket);
      socket.on('error', () => undefined);
    });
    this.servers.push(server);
    await new Promise<void>((res) => server.listen(0, host, res));
    return { address: `${host}:${(server.address() as AddressInfo).port}`, accepted: () => accepted };
  }

  async close(): Promise<void> {
    this.sockets.splice(0).forEach((s) => s.destroy());
    await Promise.all(this.servers.splice(0).map((s) => new Promise((res) => s.close(res))));
  }
}
