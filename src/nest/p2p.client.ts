import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { mustParseAddress } from '../connection/address.js';
import { P2PConfigError, P2PNotRunningError, P2PRemoteError } from '../common/errors.js';
import { Peer, type PeerOptions } from '../node/peer.js';
import { runningNode } from './p2p.registry.js';
import type { Metadata } from '../wire/metadata.js';
import { route } from './p2p.route.js';

/** A P2PClient's `options`: the peer to talk to (or none: the network) and, for a private node, any PeerOptions but `listen` and `peers`. */
export interface P2PClientOptions extends Omit<PeerOptions, 'listen' | 'peers'> {
  /**
   * The peer this client talks to: `<peerId>@host:port` (recommended) or `host:port`. Without it
   * the client addresses the network through the app's node, as a client of Nest's NATS
   * transport addresses its broker: `send` goes to one node with a matching `@MessagePattern`
   * (docs/pattern-requests.md), `emit` reaches every node with a matching `@EventPattern`
   * (docs/events.md).
   */
  peer?: string;
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
 *
 * With `options: {}` (no `peer`) it addresses the network through the app's node: `send`
 * is a request to a pattern (`Peer.requestPattern`: one node with a matching handler answers,
 * this node included), and `emit` an event for subscribers (`Peer.broadcast` with scope
 * `subscribers`: every node with a matching `@EventPattern` gets it once, this node included).
 */
export class P2PClient extends ClientProxy {
  /** The node of the current connection; close() forgets it at once, so a later connect() starts afresh. */
  private node: Peer | undefined;
  private ownNode = false;
  /** The private node's start(), which close() lets settle before closing it. */
  private nodeStarted: Promise<void> | undefined;
  private peerId: string | undefined;
  private connecting: Promise<void> | undefined;
  /**
   * Bumped by close(). An open() that outlives its generation still makes its connection and
   * resolves (as Nest's ClientTCP's connect() does when a close() overtakes it), but leaves the
   * client alone: the close that ended it waits for it, then closes its node. This is what lets
   * close() and connect() interleave and still end with one live node after a last connect(),
   * none after a last close(), and none leaked.
   */
  private generation = 0;

  constructor(private readonly clientOptions: P2PClientOptions = {}) {
    super();
    if (clientOptions.peer === undefined && clientOptions.node === 'private') {
      throw new P2PConfigError(['node: a P2PClient without `peer` sends through a node of the network; a private node is in none (give `peer`, or leave `node` unset)']);
    }
    this.peerId = clientOptions.peer === undefined ? undefined : mustParseAddress(clientOptions.peer).peerId;
  }

  /** Without `peer`: the network this client addresses is there once the app's node runs. */
  private get toNetwork(): boolean {
    return this.clientOptions.peer === undefined;
  }

  /** Connects (idempotent; reconnects when the connection was lost). */
  connect(): Promise<void> {
    if (this.toNetwork) return this.attach();
    if (this.connecting) return this.connecting;
    if (this.node?.isRunning && this.peerId && this.node.connection(this.peerId)?.isOpen) return Promise.resolve();
    const attempt = this.open(this.generation).finally(() => {
      if (this.connecting === attempt) this.connecting = undefined;
    });
    this.connecting = attempt;
    return attempt;
  }

  /** No `peer`: the configured node, else the app's running node; there is no connection to make. */
  private attach(): Promise<void> {
    if (this.node?.isRunning) return Promise.resolve();
    const node = this.clientOptions.node;
    const shared = node instanceof Peer ? node : runningNode();
    if (!shared?.isRunning) {
      return Promise.reject(
        new P2PNotRunningError(
          'a P2PClient without `peer` sends through the app\'s node, and none runs: start P2PModule\'s server first ' +
            '(app.connectMicroservice({ strategy: app.get(P2PServer) }) and await app.startAllMicroservices()), or give `node`',
        ),
      );
    }
    this.node = shared;
    return Promise.resolve();
  }

  private async open(generation: number): Promise<void> {
    if (!this.node?.isRunning) this.pickNode();
    // Captured: a close() during the awaits clears the fields, and this attempt still finishes on its own node.
    const node = this.node!;
    await this.nodeStarted;
    const info = await node.connect(this.clientOptions.peer!);
    if (generation === this.generation) this.peerId = info.id;
  }

  /** The configured node, else the app's running node, else a private one (started here; synchronously assigned, so close() sees it). */
  private pickNode(): void {
    const { peer: _peer, node, timeoutMs: _timeout, ...peerOptions } = this.clientOptions;
    // An own node whose start() failed is the only one that can be here not running: release it.
    if (this.ownNode) void this.node?.close();
    const shared = node === 'private' ? undefined : (node ?? runningNode(this.peerId));
    this.node = shared ?? new Peer({ ...peerOptions, listen: null, peerExchange: false });
    this.ownNode = !shared;
    this.nodeStarted = shared ? undefined : this.node.start();
  }

  async close(): Promise<void> {
    const { node, ownNode, nodeStarted, connecting } = this;
    this.generation++;
    this.node = undefined;
    this.ownNode = false;
    this.nodeStarted = undefined;
    this.connecting = undefined;
    if (!ownNode || !node) return;
    // Closing a node mid-start would let start() carry on afterwards, and mid-dial would fail the
    // connect() that ClientTCP resolves: let both finish (or fail) first.
    await nodeStarted?.catch(() => undefined);
    await connecting?.catch(() => undefined);
    await node.close();
  }

  unwrap<T>(): T {
    if (!this.node) throw new Error('P2PClient is not connected; call connect() first');
    return this.node as T;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const observer = {
      next: (response: unknown) => callback({ response }),
      // As with Nest's own clients, a handler's error arrives as the error object it threw.
      error: (err: Error) => callback({ err: err instanceof P2PRemoteError ? err.error : err }),
      complete: () => callback({ isDisposed: true }),
    };
    const options = { timeoutMs: this.clientOptions.timeoutMs, metadata: metadataOf(packet) };
    try {
      if (this.toNetwork) return this.liveNode().requestPattern(route(packet.pattern), packet.data, observer, options);
      return this.liveNode().request(this.peerId!, route(packet.pattern), packet.data, observer, options);
    } catch (err) {
      callback({ err });
      return () => undefined;
    }
  }

  protected async dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    if (this.toNetwork) {
      this.liveNode().broadcast(route(packet.pattern), packet.data, { scope: 'subscribers', metadata: metadataOf(packet) });
      return undefined as T;
    }
    this.liveNode().send(this.peerId!, route(packet.pattern), packet.data, { metadata: metadataOf(packet) });
    return undefined as T;
  }

  /** A send that raced a close() gets a typed error rather than a TypeError. */
  private liveNode(): Peer {
    if (!this.node) throw new P2PNotRunningError('client is closed');
    return this.node;
  }
}

/** Nest 12's `setOnDispatchHook` puts `packet.metadata` on each packet; Nest 11's packets have none. */
function metadataOf(packet: ReadPacket): Metadata | undefined {
  return (packet as ReadPacket & { metadata?: Metadata }).metadata;
}
