import type { Socket } from 'node:net';
import type { Identity } from '../common/identity.js';
import type { P2PIdentityConflictError } from '../common/errors.js';
import type { Direction, P2PLogger, PeerInfo } from '../common/types.js';
import type { MetricsSink } from '../connection/metrics.js';
import { PartialFrameBudget, STALLED_AFTER_MS } from '../connection/partial-frames.js';
import type { ProvenPeer, TlsCredentials } from '../connection/secure-channel.js';
import type { P2PSocket } from '../connection/socket.js';
import { AddressPolicy } from '../discovery/address-policy.js';
import { Discovery } from '../discovery/discovery.js';
import { PeerStore, type StoredPeer } from '../discovery/peer-store.js';
import { PersistentPeers } from '../discovery/reconnect.js';
import type { DirectoryChange } from '../directory/directory.js';
import { Sanctions } from '../trust/sanctions.js';
import { GoodbyeReason } from '../wire/control.js';
import { Broadcasts } from './broadcasts.js';
import { Connections } from './connections.js';
import { Dials } from './dials.js';
import { DirectoryPart } from './directory-part.js';
import { EventFanout } from './event-fanout.js';
import { Inbound } from './inbound.js';
import { Messaging } from './messaging.js';
import { PatternRequests } from './pattern-requests.js';
import { discoveryOptions, type PeerOptions, type ResolvedPeerOptions } from './peer-options.js';
import type { PeerEvent } from '../common/types.js';
import type { LocalPeer } from './self.js';
import { Subscribers } from './subscribers.js';

/** A handler with a request outstanding this long and nothing read from it since is passed over, ms (see PatternRequests). */
const SILENT_HANDLER_MS = 1_000;

/** The node's parts (src/node/peer.ts holds them): each a collaborator with a narrow host, wired to the others below. */
export interface PeerParts {
  partialFrames: PartialFrameBudget;
  index: Connections;
  messaging: Messaging;
  patternRequests: PatternRequests;
  dials: Dials;
  inbound: Inbound;
  persistent: PersistentPeers;
  discovery: Discovery;
  store: PeerStore | undefined;
  sanctions: Sanctions;
  broadcasts: Broadcasts;
  directory: DirectoryPart;
  subscribers: Subscribers;
  fanout: EventFanout;
}

/** What the parts need of the node itself: who it is, its state, and the few acts only it performs. */
export interface PartsOwner {
  readonly identity: Identity;
  readonly opts: ResolvedPeerOptions;
  readonly self: LocalPeer;
  readonly logger: P2PLogger;
  isRunning(): boolean;
  credentials(): TlsCredentials | undefined;
  notRunning(): Error;
  connect(address: string): Promise<PeerInfo>;
  /** Every connection starts here: a P2PSocket on a dialed or accepted stream. */
  wrap(stream: Socket, direction: Direction, expectedPeerId?: string, proven?: ProvenPeer): P2PSocket;
  reportConflict(error: P2PIdentityConflictError): void;
  countRefused(): void;
  emitPeer(event: PeerEvent): void;
  emitDirectory(change: DirectoryChange): void;
  onDirectory(listener: (change?: DirectoryChange) => void): () => void;
  metrics(): MetricsSink | undefined;
}

/**
 * Builds the node's parts and wires each one's host to the others, as CometBFT's node wires its reactors to the
 * switch: every host callback reads a part when called, so the order below only has to build each part once.
 */
export function wireParts(owner: PartsOwner, options: PeerOptions): PeerParts {
  const o = owner.opts;
  // Filled in below; the callbacks read it only once the node runs.
  const p = {} as PeerParts;
  // What most collaborators' hosts share: who this node is, whether it runs, its open connections.
  const common = { selfId: owner.identity.peerId, logger: owner.logger, isRunning: () => owner.isRunning() };
  const view = { ...common, connections: () => p.index.byId };
  const links = { ...view, sockets: () => p.index.all, credentials: () => owner.credentials(), banRefusal: (id: string) => p.sanctions.refusal(id) };
  // Connections the application's requests or a publisher's fanout keep: neither discovery nor a configured peer takes them.
  const inUse = (id: string) => p.patternRequests.inUse(id) || p.fanout.inUse(id);
  // At least one frame of the largest size the node accepts must always fit.
  p.partialFrames = new PartialFrameBudget(Math.max(o.maxPartialFrameBytes, o.maxFrameBytes), Math.min(STALLED_AFTER_MS, o.frameStallMs));
  p.index = new Connections(
    {
      ...common,
      pendingOutbound: () => p.dials.pendingOutbound(),
      inboundStanding: (id) => p.discovery.inboundStanding(id),
      outboundStanding: (id) => p.discovery.outboundStanding(id),
      hasOwnChoice: () => p.discovery.hasOwnChoice(),
      dialingOwnChoice: () => p.discovery.dialingOwnChoice(),
      netgroupRefusal: (ip) => p.discovery.netgroupRefusal(ip),
      isConfigured: (id) => p.persistent.has(id),
      dialedForTopology: (id) => p.discovery.dialedForTopology(id),
      inUse,
      capRefusal: (socket) => p.inbound.capRefusal(socket),
      connect: (address) => owner.connect(address),
      emit: (event) => owner.emitPeer(event),
      onConnected: (socket) => {
        p.discovery.onConnected(socket);
        p.directory.onConnected(socket.peerId!);
      },
      onRefused: (socket) => p.discovery.onRefused(socket),
      onIdentityConflict: (id, error) => {
        owner.reportConflict(error);
        p.persistent.holdOff(id);
        p.discovery.holdOff(id, o.idConflictRetryMs);
      },
      onDisconnected: (id, refusedFull) => {
        p.persistent.onDisconnected(id, refusedFull);
        p.discovery.onDisconnected(id, refusedFull);
        p.directory.onDisconnected(id);
      },
    },
    o,
  );
  p.messaging = new Messaging({ ...view, notRunning: () => owner.notRunning() }, o);
  // A directory record's address is someone else's word, as a peer-exchange entry is: judged by the same rules.
  const handlerPolicy = new AddressPolicy({ allowPrivate: o.pexAllowPrivate, allowHostnames: o.pexAllowHostnames }, () => owner.self.advertisedAddress());
  p.patternRequests = new PatternRequests(
    {
      ...view,
      notRunning: () => owner.notRunning(),
      dial: (address) => p.dials.dial(address),
      refusal: (address) => handlerPolicy.refusal(address),
      outboundFull: () => p.dials.outboundCount() >= o.maxOutbound,
      release: (id, why) => p.index.release(id, why),
      local: () => p.messaging.handler,
      selfInfo: () => owner.self.info(),
      topic: (pattern) => p.messaging.topic(pattern),
      metrics: () => owner.metrics(),
      alsoInUse: (id) => p.fanout.inUse(id),
    },
    { timeoutMs: o.timeoutMs, idleMs: o.handlerIdleMs, silentMs: SILENT_HANDLER_MS, dialRate: o.handlerDialRate, maxDialed: Math.max(1, Math.floor(o.maxOutbound / 4)), fanoutDials: o.eventFanout },
  );
  p.dials = new Dials({ ...links, notRunning: () => owner.notRunning(), wrap: (stream, id, proven) => owner.wrap(stream, 'outbound', id, proven) }, o);
  p.inbound = new Inbound(
    {
      ...links,
      isBannedIp: (ip) => p.sanctions.bans.ip(ip) !== undefined,
      wrap: (stream, proven) => owner.wrap(stream, 'inbound', undefined, proven),
      countRefused: () => owner.countRefused(),
    },
    o,
  );
  p.persistent = new PersistentPeers(
    { dial: (address) => p.dials.dial(address), isConnected: (id) => p.index.byId.has(id), opened: (id) => p.index.makeRoom(id) },
    { baseMs: o.reconnectBaseMs, maxMs: o.reconnectMaxMs },
    owner.logger,
    Date.now,
    { holdOffMs: o.idConflictRetryMs, report: (error) => owner.reportConflict(error) },
  );
  p.discovery = new Discovery(
    {
      ...view,
      ownAddresses: () => owner.self.ownAddresses(),
      advertisedAddress: () => owner.self.advertisedAddress(),
      outboundCount: () => p.dials.outboundCount(),
      connect: (address) => owner.connect(address),
      isAllowed: (id) => !o.allowedPeers || o.allowedPeers.has(id),
      isBanned: (id) => p.sanctions.bans.peer(id) !== undefined,
      isConfigured: (id) => p.persistent.has(id),
      release: (id, why) => p.index.release(id, why),
      inUse,
      topicPeers: () => p.directory.sharingIds(o.eventCoverPatterns),
    },
    discoveryOptions(o),
  );
  const storeHost = { ...common, snapshot: () => p.discovery.stored(), restore: (peers: StoredPeer[]) => p.discovery.restore(peers) };
  p.store = o.peerStoreFile === undefined ? undefined : new PeerStore(storeHost, { file: o.peerStoreFile, maxPeers: o.peerStoreMaxPeers });
  p.sanctions = new Sanctions(
    {
      logger: owner.logger,
      disconnect: (peerId, message) => void p.index.byId.get(peerId)?.close(GoodbyeReason.Banned, message),
      whereIs: (peerId) => p.index.whereIs(peerId),
    },
    o.banMs,
  );
  p.broadcasts = new Broadcasts(
    {
      ...view,
      knownIds: () => p.discovery.knownIds(),
      reaches: (id, arc, only) => p.discovery.reaches(id, arc, only),
      isMember: (id, via) => p.discovery.isMember(id, via),
      namedByOthers: (id) => p.discovery.namedByOthers(id),
      penalize: (peerId, what, detail, weight) => p.sanctions.penalize(peerId, what, detail, weight),
      socketFor: (id) => p.messaging.socketFor(id),
      deliverOwn: (meta, topic, data, metadata) => p.messaging.handler?.onEvent(owner.self.info(), topic, data, meta, metadata),
      ownResult: (value) => p.messaging.handler?.onEventResult?.(value),
      subscribersOf: (topic) => p.subscribers.of(topic),
      subscribes: (topic) => p.subscribers.includesSelf(topic),
      sentToSubscribers: (topic) => p.fanout.sent(topic),
      fanoutOf: (topic) => p.fanout.linksFor(topic),
      metrics: () => owner.metrics(),
    },
    owner.identity,
    o,
    options,
  );
  p.directory = new DirectoryPart(
    {
      ...view,
      socketFor: (id) => p.messaging.socketFor(id),
      address: () => owner.self.advertisedAddress(),
      pipeline: () => p.broadcasts.pipeline,
      penalize: (peerId, what, detail, weight) => p.sanctions.penalize(peerId, what, detail, weight),
      emit: (change) => {
        p.subscribers.changed(change.id);
        owner.emitDirectory(change);
      },
      isKnown: (id, via) => p.discovery.isMember(id, via),
    },
    owner.identity,
    o,
  );
  p.directory.attach(p.broadcasts.pipeline);
  p.subscribers = new Subscribers(owner.identity.peerId, {
    ids: (topic) => p.directory.handlerIds(topic, 'event'),
    handles: (id, topic) => p.directory.handler(id, topic, 'event') !== undefined,
  });
  p.fanout = new EventFanout(
    {
      logger: owner.logger,
      subscribersOf: (topic) => p.subscribers.of(topic),
      neighbours: () => [...p.index.byId.keys()],
      isConnected: (id) => p.index.byId.has(id),
      addressOf: (id, topic) => p.directory.handler(id, topic, 'event')?.address ?? undefined,
      dial: (id, address, topic) => p.patternRequests.dialSubscriber(id, address, topic),
    },
    { want: o.eventFanout, idleMs: o.handlerIdleMs },
  );
  // Requests to a pattern find their handlers in the directory, and look again whenever a record changes.
  p.patternRequests.setLookup({
    handlers: (subject, kind) => p.directory.handlers(subject, kind),
    handler: (id, subject, kind) => p.directory.handler(id, subject, kind),
    onChange: (listener) => owner.onDirectory(listener),
  });
  return p;
}
