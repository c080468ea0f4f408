import type { Identity } from '../common/identity.js';
import type { P2PLogger } from '../common/types.js';
import { authOf, batchedBodyBytes, encodeNetworkMessage, signBatch, type NetworkMessage } from './codec.js';
import { MAX_LEAVES } from './merkle.js';
import type { SeenEntry } from './replay-window.js';
import type { OriginateResult } from './router.js';

/**
 * The origin side of batched signatures: the network broadcasts this node starts before the event
 * loop next turns (a loop, also one that awaits something that does no I/O between its broadcasts)
 * are routed at once, and signed together (one Ed25519 signature over a Merkle root,
 * src/broadcast/merkle.ts) and sent in process.nextTick, or as soon as `max` are waiting. Nothing
 * waits for a timer or for I/O, and a frame's write queue flushes in process.nextTick anyway
 * (src/connection/write-queue.ts), so a lone broadcast leaves the process when it did.
 * queueMicrotask would batch only a loop that never awaits: 200 broadcasts awaited one by one took
 * 200 signatures with it, 4 with process.nextTick. Every message still travels, and is judged by
 * every receiver (src/broadcast/pipeline.ts), alone.
 */

/** What the batch needs from the node: its connections' limits and writes. */
export interface OriginBatchHost {
  /** Throws what `send` would for a body of `bodyBytes` queued after `alsoQueued` more bytes, and sends nothing. */
  check?(peer: string, bodyBytes: number, alsoQueued: number): void;
  send(peer: string, body: Buffer): void;
  logger: P2PLogger;
}

/** One of this node's broadcasts waiting for its batch's signature, with the copies routing staged for it. */
interface OwnBroadcast {
  message: NetworkMessage;
  entry: SeenEntry;
  frames: Array<{ peer: string; copy: NetworkMessage }>;
}

export class OriginBatch {
  private batch: OwnBroadcast[] = [];
  /** Bytes staged per neighbour in `batch`, so that the queue check counts them. */
  private staged = new Map<string, number>();
  private readonly flushBound = () => this.flush();
  /** Most broadcasts signed as one batch, within what the wire carries. */
  private readonly max: number;

  constructor(
    private readonly host: OriginBatchHost,
    private readonly identity: Identity,
    batchMax: number,
    /** Called for each broadcast once its copies are written, with the neighbours that took one (for repair). */
    private readonly sent: (message: NetworkMessage, peers: string[]) => void,
  ) {
    this.max = Math.min(MAX_LEAVES, Math.max(1, Math.floor(batchMax)));
  }

  /**
   * Adds a drafted broadcast: `route` routes it now, staging each copy through the function it is given
   * (checked against the neighbour's limits at the largest proof the batch can give, so a frame that fits
   * then fits with any); the copies are written once the batch is signed. Returns what `route` returns.
   */
  add(message: NetworkMessage, entry: SeenEntry, route: (stage: (peer: string, copy: NetworkMessage) => void) => OriginateResult): OriginateResult {
    const own: OwnBroadcast = { message, entry, frames: [] };
    const bodyBytes = batchedBodyBytes(message, this.max);
    const result = route((peer, copy) => {
      this.host.check?.(peer, bodyBytes, this.staged.get(peer) ?? 0);
      this.staged.set(peer, (this.staged.get(peer) ?? 0) + bodyBytes);
      own.frames.push({ peer, copy });
    });
    if (this.batch.push(own) === 1) process.nextTick(this.flushBound);
    if (this.batch.length >= this.max) this.flush();
    return result;
  }

  /** Signs the waiting batch and sends its copies, in the order the broadcasts were started. */
  flush(): void {
    const batch = this.batch;
    if (batch.length === 0) return;
    this.batch = [];
    this.staged.clear();
    signBatch(
      this.identity,
      batch.map((own) => own.message),
    );
    for (const { message, entry, frames } of batch) {
      entry.signature = authOf(message);
      const sent: string[] = [];
      for (const { peer, copy } of frames) {
        try {
          this.host.send(peer, encodeNetworkMessage({ ...copy, signature: message.signature, proof: message.proof }));
          sent.push(peer);
        } catch (err) {
          // Checked when it was routed, so only a connection that closed since: repair offers it to the rest.
          this.host.logger.debug?.(`network broadcast ${message.id} not sent to ${peer}: ${(err as Error).message}`, { event: 'undelivered', peerId: peer });
        }
      }
      this.sent(message, sent);
    }
  }
}
