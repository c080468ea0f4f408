import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { mustParseAddress } from '../core/address.js';
import { P2PRemoteError } from '../core/errors.js';
import { Peer, type PeerOptions } from '../core/peer.js';
import { runningNode } from './p2p.registry.js';
import { route } from './p2p.route.js';

export interface P2PClientOptions extends Omit<PeerOptions, 'listen' | 'peers'> {
  /** The peer this client talks to: `<peerId>@host:port` (recommended) or `host:port`. */
  peer: string;
  /**
   * Use this node, or `'private'` for a node of the client's own. Default: the node of a
   * running P2PModule in this process (other than the target), else a private one.
   */
  node?: Peer | 'private';
  /** Reply timeout per request, ms (default: the node's `timeoutMs`). */
  timeoutMs?: number;
}

/**
 * A ClientProxy for one peer, so that `ClientsModule.register([{ name, customClass: P2PClient,
 * options: { peer } }])` and `client.send()` / `client.emit()` work as with any Nest client.
 * It reuses the app's node (and its connection) when the app runs P2PModule; otherwise it
 * starts a private node that does not listen, and closes it on `close()`.
 */
export class P2PClient extends ClientProxy {
  private node: Peer | undefined;
  private ownNode = false;
  private peerId: string | undefined;
  private connecting: Promise<void> | undefined;

  constructor(private readonly clientOptions: P2PClientOptions) {
    super();
    this.peerId = mustParseAddress(clientOptions.peer).peerId;
  }

  /** Connects (idempotent; reconnects when the connection was lost). */
  connect(): Promise<void> {
    if (this.node?.isRunning && this.peerId && this.node.connection(this.peerId)?.isOpen) return Promise.resolve();
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<void> {
    if (!this.node || !this.node.isRunning) {
      const { peer: _peer, node, timeoutMs: _timeout, ...peerOptions } = this.clientOptions;
      this.node = node === 'private' ? undefined : (node ?? runningNode(this.peerId));
      if (!this.node) {
        this.node = new Peer({ ...peerOptions, listen: null, peerExchange: false });
        this.ownNode = true;
        await this.node.start();
      }
    }
    const info = await this.node.connect(this.clientOptions.peer);
    this.peerId = info.id;
  }

  async close(): Promise<void> {
    if (this.ownNode) await this.node?.close();
    this.node = undefined;
    this.ownNode = false;
  }

  unwrap<T>(): T {
    if (!this.node) throw new Error('P2PClient is not connected; call connect() first');
    return this.node as T;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    try {
      return this.node!.request(
        this.peerId!,
        route(packet.pattern),
        packet.data,
        {
          next: (response) => callback({ response }),
          // As with Nest's own clients, a handler's error arrives as the error object it threw.
          error: (err) => callback({ err: err instanceof P2PRemoteError ? err.error : err }),
          complete: () => callback({ isDisposed: true }),
        },
        { timeoutMs: this.clientOptions.timeoutMs },
      );
    } catch (err) {
      callback({ err });
      return () => undefined;
    }
  }

  protected async dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    this.node!.send(this.peerId!, route(packet.pattern), packet.data);
    return undefined as T;
  }
}
