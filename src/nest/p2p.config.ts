import { plainToInstance } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsInt,
  IsNumber,
  Matches,
  IsOptional,
  IsString,
  Max,
  Min,
  Validate,
  validateSync,
  ValidatorConstraint,
  type ValidationArguments,
  type ValidationError,
  type ValidatorConstraintInterface,
} from 'class-validator';
import { parseAddress } from '../connection/address.js';
import { HEADER_BYTES } from '../wire/constants.js';
import { DEFAULTS } from '../common/defaults.js';
import { P2PConfigError } from '../common/errors.js';
import { loadIdentity } from '../common/identity.js';
import type { P2PLogger } from '../common/types.js';

@ValidatorConstraint({ name: 'address' })
class AddressConstraint implements ValidatorConstraintInterface {
  private problem = '';
  validate(value: unknown, args: ValidationArguments): boolean {
    const allowId = args.constraints?.[0] === 'with-id';
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      const parsed = parseAddress(v as string);
      if (typeof parsed === 'string') {
        this.problem = parsed;
        return false;
      }
      if (parsed.peerId && !allowId) {
        this.problem = 'takes host:port without a peer id';
        return false;
      }
    }
    return true;
  }
  defaultMessage(args: ValidationArguments): string {
    const form = args.constraints?.[0] === 'with-id' ? '"host:port" or "<peerId>@host:port"' : '"host:port"';
    return `${args.property} must be ${form}: ${this.problem}`;
  }
}

@ValidatorConstraint({ name: 'privateKey' })
class PrivateKeyConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    try {
      loadIdentity(value as string);
      return true;
    } catch {
      return false;
    }
  }
  defaultMessage(): string {
    return 'privateKey must be an Ed25519 private key: PEM (PKCS#8) or 64 hex characters';
  }
}

@ValidatorConstraint({ name: 'atLeastFrame' })
class AtLeastFrameConstraint implements ValidatorConstraintInterface {
  validate(value: unknown, args: ValidationArguments): boolean {
    const frame = (args.object as P2PConfig).maxFrameBytes;
    return typeof value === 'number' && (typeof frame !== 'number' || value >= frame);
  }
  defaultMessage(args: ValidationArguments): string {
    const why = args.property === 'maxQueueBytes' ? 'queued' : 'received';
    return `${args.property} must be at least maxFrameBytes, or the largest frame could never be ${why}`;
  }
}

const MAX_TIMEOUT_MS = 24 * 60 * 60 * 1000;

/** An integer in [min, max]: the shape of every limit and timeout below. */
function IntRange(min: number, max: number): PropertyDecorator {
  return (target, key) => {
    IsInt()(target, key);
    Min(min)(target, key);
    Max(max)(target, key);
  };
}

/**
 * The node's configuration, validated at start-up. Every key is optional;
 * defaults are those of the seed where it had one (docs/configuration.md has the table).
 */
export class P2PConfig {
  /** `host:port` to listen on; port 0 picks a free port. */
  @IsOptional()
  @Validate(AddressConstraint)
  listen?: string = '127.0.0.1:0';

  /** `host:port` other peers should dial, when it differs from `listen`. */
  @IsOptional()
  @Validate(AddressConstraint)
  externalAddress?: string;

  /** Peers to dial at start: `host:port` or `<peerId>@host:port`. */
  @IsArray()
  @IsString({ each: true })
  @Validate(AddressConstraint, ['with-id'])
  peers: string[] = [];

  /** Authenticated inbound connections; extra ones get a goodbye saying why, then are closed. */
  @IntRange(0, 100_000)
  maxInbound: number = DEFAULTS.maxInbound;

  /** Outbound connections; `connect()` past it fails with P2PDialError. 24 covers the RainTree topology of 100 000 nodes. */
  @IntRange(0, 100_000)
  maxOutbound: number = DEFAULTS.maxOutbound;

  /** Connections in all past which the node dials no more for its RainTree topology and refuses inbound ones; max(8, 2·⌈log3 N⌉ + 2) bounds the degree. */
  @IntRange(1, 100_000)
  maxPeers: number = DEFAULTS.maxPeers;

  /** Own event patterns (fewest nodes first) by which the node prefers ring neighbours with the same pattern; 0: none. */
  @IntRange(0, 64)
  eventCoverPatterns: number = DEFAULTS.eventCoverPatterns;

  /** The least neighbours kept among the nodes sharing each of those patterns, dialed at random beside the covers (at most this many beside them, all patterns together); 0: the covers alone. */
  @IntRange(0, 64)
  eventPatternLinks: number = DEFAULTS.eventPatternLinks;

  /** Arcs an event for subscribers leaves a node in when it emits one without subscribing itself, each carried to a subscriber on its own. */
  @IntRange(1, 3)
  eventOriginPaths: number = DEFAULTS.eventOriginPaths;

  /** Subscribers of a topic this node emits events to without subscribing that it keeps as neighbours (dialed like pattern handlers, at most this many for all topics); 0: none. */
  @IntRange(0, 64)
  eventFanout: number = DEFAULTS.eventFanout;

  /** Inbound connections still in their TLS handshake or hello exchange; past it the oldest is dropped. */
  @IntRange(1, 100_000)
  maxPendingInbound: number = DEFAULTS.maxPendingInbound;

  /** Authenticated inbound connections from one IP address (not applied to loopback unless perIpLimitsOnLoopback). Raise it for many nodes behind one NAT. */
  @IntRange(1, 100_000)
  maxInboundPerIp: number = DEFAULTS.maxInboundPerIp;

  /** Authenticated inbound connections from one third of the ring as this node splits it, once it holds 8 connections (against eclipse; configured peers not counted). */
  @IntRange(1, 100_000)
  maxInboundPerThird: number = DEFAULTS.maxInboundPerThird;

  /** New inbound connections a second from one IP address (burst: twice that). */
  @IntRange(1, 1_000_000)
  inboundRatePerIp: number = DEFAULTS.inboundRatePerIp;

  /** Hold loopback dialers (127.0.0.0/8, ::1: every process of this host) to maxInboundPerIp and inboundRatePerIp too; off, maxInbound and maxPendingInbound hold them. */
  @IsBoolean()
  perIpLimitsOnLoopback: boolean = false;

  /** Leading bits of an IPv4 address that name its netgroup: peers of one take at most a third of the connections (half with two netgroups) while that costs no degree; 0: one group for all. Loopback is one group unless perIpLimitsOnLoopback. */
  @IntRange(0, 32)
  netgroupPrefixV4: number = DEFAULTS.netgroupPrefixV4;

  /** The same for IPv6 addresses. */
  @IntRange(0, 128)
  netgroupPrefixV6: number = DEFAULTS.netgroupPrefixV6;

  /** Largest frame (9-byte header + topic + payload) sent or accepted; the seed's buffer size. */
  @IntRange(64, 1024 * 1024 * 1024)
  maxFrameBytes: number = DEFAULTS.maxFrameBytes;

  /** Most bytes waiting to be written to one peer before sends are refused with P2PQueueFullError. */
  @IsInt()
  @Min(64)
  @Validate(AtLeastFrameConstraint)
  maxQueueBytes: number = DEFAULTS.maxQueueBytes;

  /** Bytes allocated for frames that span reads, across all connections; past it the largest stalled one is closed. */
  @IsInt()
  @Min(64)
  @Validate(AtLeastFrameConstraint)
  maxPartialFrameBytes: number = DEFAULTS.maxPartialFrameBytes;

  /** Inbound handlers running at once per peer; past it the peer is no longer read (TCP backpressure). */
  @IntRange(1, 1_000_000)
  maxConcurrentHandlers: number = DEFAULTS.maxConcurrentHandlers;

  /** Default reply timeout of a request (between reply frames of a stream). */
  @IntRange(1, MAX_TIMEOUT_MS)
  timeoutMs: number = DEFAULTS.timeoutMs;

  /** A connection dialed only to reach a pattern's handler (`requestPattern`) is closed after this long without a request on it, ms. */
  @IntRange(10, MAX_TIMEOUT_MS)
  handlerIdleMs: number = DEFAULTS.handlerIdleMs;

  /** New connections a second this node may dial to reach pattern handlers (`requestPattern`); at most a quarter of maxOutbound are open or dialing for them at once. */
  @IntRange(1, 10_000)
  handlerDialRate: number = DEFAULTS.handlerDialRate;

  /** TCP connect timeout, ms. */
  @IntRange(1, MAX_TIMEOUT_MS)
  dialTimeoutMs: number = DEFAULTS.dialTimeoutMs;

  /** Time for the TLS handshake, and again for the hello exchange, ms. */
  @IntRange(1, MAX_TIMEOUT_MS)
  handshakeTimeoutMs: number = DEFAULTS.handshakeTimeoutMs;

  /** First redial delay after a configured peer is lost or unreachable; doubles per failure, with jitter. */
  @IntRange(1, MAX_TIMEOUT_MS)
  reconnectBaseMs: number = DEFAULTS.reconnectBaseMs;

  /** Longest redial delay; a connection that ends sooner than this counts as a refusal (redialed with growing delays). Configured peers are redialed forever. */
  @IntRange(1, MAX_TIMEOUT_MS)
  reconnectMaxMs: number = DEFAULTS.reconnectMaxMs;

  /** An address where this node met another node with its own peer id (two nodes, one key) is not redialed for this long, ms. */
  @IntRange(1, MAX_TIMEOUT_MS)
  idConflictRetryMs: number = DEFAULTS.idConflictRetryMs;

  /** Ping period on every connection (also measures `rttMs`), ms. */
  @IntRange(10, MAX_TIMEOUT_MS)
  pingIntervalMs: number = DEFAULTS.pingIntervalMs;

  /** A peer silent this long after a ping is dropped at once (it is not reading), ms. */
  @IntRange(10, MAX_TIMEOUT_MS)
  pongTimeoutMs: number = DEFAULTS.pongTimeoutMs;

  /** A frame that spans reads is cut (protocol-error goodbye) when none of its bytes arrive for this long. */
  @IntRange(1, MAX_TIMEOUT_MS)
  frameStallMs: number = DEFAULTS.frameStallMs;

  /** How long close() waits for queues to flush before cutting connections. */
  @IntRange(0, MAX_TIMEOUT_MS)
  closeGraceMs: number = DEFAULTS.closeGraceMs;

  /** Ed25519 private key (PEM or 64 hex characters). Omitted: an ephemeral key is generated. */
  @IsOptional()
  @IsString()
  @Validate(PrivateKeyConstraint)
  privateKey?: string;

  /** File holding the private key (PEM); created with a new key and mode 0600 when missing. */
  @IsOptional()
  @IsString()
  privateKeyFile?: string;

  /** TLS 1.3 with mutual authentication by peer id. false: plaintext, for trusted networks and benchmarks only. */
  @IsBoolean()
  tls: boolean = true;

  /** Share connected peers' advertised addresses, learn others', and dial them up to maxOutbound. */
  @IsBoolean()
  peerExchange: boolean = true;

  /** How often peer exchange is sent to every peer and known peers are dialed; every second (at most this) while a node or a neighbour is below 8 connections and one has news for the other. */
  @IntRange(10, MAX_TIMEOUT_MS)
  pexIntervalMs: number = DEFAULTS.pexIntervalMs;

  /** Most peers remembered: proven ones and peer-exchange candidates together. */
  @IntRange(0, 1_000_000)
  maxKnownPeers: number = DEFAULTS.maxKnownPeers;

  /**
   * File where the node keeps the peers it proved by a connection (last good address, last-seen time),
   * written within 5 s of a change, every 30 s and at close; at start it redials the freshest of them, so
   * a restarted node needs no configured peer to find its old neighbours. A file of another node, another
   * version or not JSON is ignored with a warning.
   */
  @IsOptional()
  @IsString()
  peerStoreFile?: string;

  /** Most peers the peer store keeps (the most recently seen). */
  @IntRange(1, 100_000)
  peerStoreMaxPeers: number = DEFAULTS.peerStoreMaxPeers;

  /** Dial loopback and private addresses learned from peers even when this node announces neither. */
  @IsBoolean()
  pexAllowPrivate: boolean = false;

  /** Dial host names learned from peers; off, only IP addresses are taken from peer exchange. */
  @IsBoolean()
  pexAllowHostnames: boolean = false;

  /** Fewest connected peers for P2PHealthIndicator to report the node as up. */
  @IntRange(0, 100_000)
  minPeers: number = 0;

  /** Network broadcast ids remembered so that each is delivered once. */
  @IntRange(1, 10_000_000)
  broadcastCacheSize: number = DEFAULTS.broadcastCacheSize;

  /** How long a network broadcast id is remembered, and how old a broadcast may be (the replay window). */
  @IntRange(1, MAX_TIMEOUT_MS)
  broadcastCacheTtlMs: number = DEFAULTS.broadcastCacheTtlMs;

  /** How far in the future a network broadcast may be dated, for clock skew between nodes. */
  @IntRange(0, MAX_TIMEOUT_MS)
  broadcastClockSkewMs: number = DEFAULTS.broadcastClockSkewMs;

  /** Network broadcasts a second one origin may start; this node's own past it get P2PRateLimitError. */
  @IntRange(1, 1_000_000)
  broadcastOriginRate: number = DEFAULTS.broadcastOriginRate;

  /** Network broadcasts one origin may start at once. */
  @IntRange(1, 10_000_000)
  broadcastOriginBurst: number = DEFAULTS.broadcastOriginBurst;

  /** Most of this node's network broadcasts signed as one batch (those started in one synchronous run); 1: each alone. */
  @IntRange(1, 65_535)
  broadcastBatchMax: number = DEFAULTS.broadcastBatchMax;

  /** Batches remembered as verified, so that the rest of a batch skips Ed25519; 0: none. */
  @IntRange(0, 1_000_000)
  broadcastVerifiedBatches: number = DEFAULTS.broadcastVerifiedBatches;

  /** Bytes a second of one origin's network broadcasts. */
  @IntRange(1, 1024 * 1024 * 1024)
  broadcastOriginBytesPerSec: number = DEFAULTS.broadcastOriginBytesPerSec;

  /** Network broadcast frames a second one neighbour may send, copies included. */
  @IntRange(1, 10_000_000)
  broadcastNeighbourRate: number = DEFAULTS.broadcastNeighbourRate;

  /** Bytes a second of network broadcast frames one neighbour may send. */
  @IntRange(1, 1024 * 1024 * 1024)
  broadcastNeighbourBytesPerSec: number = DEFAULTS.broadcastNeighbourBytesPerSec;

  /**
   * New network broadcasts a second one neighbour may hand over from origins this node has no evidence are
   * network members (burst 5 s worth; a gossip one costs 5); past it they are dropped before the signature check.
   */
  @IntRange(1, 10_000_000)
  broadcastUnknownOriginRate: number = DEFAULTS.broadcastUnknownOriginRate;

  /** How long a misbehaving peer (its id, and its IP when it dialed in) is refused. */
  @IntRange(1, 365 * MAX_TIMEOUT_MS)
  banMs: number = DEFAULTS.banMs;

  /** How often recent network broadcast ids are announced to neighbours, so that a node a relay left out asks for them; 0: no repair. */
  @IntRange(0, MAX_TIMEOUT_MS)
  broadcastRepairIntervalMs: number = DEFAULTS.broadcastRepairIntervalMs;

  /** Bytes of recent network broadcasts kept to answer repair requests. */
  @IntRange(0, 1024 * 1024 * 1024)
  broadcastRepairCacheBytes: number = DEFAULTS.broadcastRepairCacheBytes;

  /** Neighbours each recent network broadcast id is announced to, drawn at random among those not known to have it. */
  @IntRange(1, 10_000)
  broadcastRepairFanout: number = DEFAULTS.broadcastRepairFanout;

  /** Patterns in one directory record (this node's own, and each accepted from others), requests and events together. */
  @IntRange(1, 65_535)
  directoryMaxPatterns: number = DEFAULTS.directoryMaxPatterns;

  /** UTF-8 bytes of one pattern in a directory record. */
  @IntRange(1, 65_535)
  directoryMaxPatternBytes: number = DEFAULTS.directoryMaxPatternBytes;

  /** `.`-separated tokens of one wildcard pattern in a directory record (each is a node of the subject index). */
  @IntRange(1, 65_535)
  directoryMaxPatternTokens: number = DEFAULTS.directoryMaxPatternTokens;

  /** Bytes the directory's distinct patterns and their wildcard index may be counted at; past it, a record bringing new patterns is refused. */
  @IntRange(0, 1024 * 1024 * 1024)
  directoryMaxPatternMemory: number = DEFAULTS.directoryMaxPatternMemory;

  /** Directory records held; when full, records of neighbours and known peers are kept first. */
  @IntRange(1, 10_000_000)
  directoryMaxRecords: number = DEFAULTS.directoryMaxRecords;

  /** Record updates a second accepted from one node (a node spaces its own publishes by as much). */
  @IsNumber()
  @Min(0.001)
  @Max(1000)
  directoryUpdateRate: number = DEFAULTS.directoryUpdateRate;

  /** Record updates accepted from one node at once. */
  @IntRange(1, 1000)
  directoryUpdateBurst: number = DEFAULTS.directoryUpdateBurst;

  /** How long a directory record lives after it is issued; its node re-publishes it every third of that. */
  @IntRange(1000, 365 * MAX_TIMEOUT_MS)
  directoryTtlMs: number = DEFAULTS.directoryTtlMs;

  /** How often the directory's digest is exchanged with one random neighbour, so that missed records heal. */
  @IntRange(100, MAX_TIMEOUT_MS)
  directorySyncIntervalMs: number = DEFAULTS.directorySyncIntervalMs;

  /**
   * Tests only: this node accepts network broadcasts and never forwards them, announces
   * nothing and answers no repair request (a hostile or broken relay).
   * @internal
   */
  @IsOptional()
  @IsBoolean()
  dropRelays?: boolean;

  /** When set, only these peer ids (40 hex characters) may connect or be connected to. */
  @IsOptional()
  @IsArray()
  @Matches(/^[0-9a-f]{40}$/, { each: true, message: 'allowedPeers must hold peer ids: 40 lowercase hex characters each' })
  allowedPeers?: string[];
}

/** The options object users pass: any subset of P2PConfig, and the logger the node writes to. */
export interface P2POptions extends Partial<P2PConfig> {
  /**
   * Where the node logs, with LogFields (`event`, `peerId`, `address`) on every line: an adapter to pino or
   * another structured logger. Omitted: Nest's `Logger` under the context `P2P`, message only, as before.
   * Checked at start-up: it needs `log`, `warn` and `error` functions (`debug` is optional).
   */
  logger?: P2PLogger;
}

/** Validates raw options; throws P2PConfigError naming every bad key. */
export function validateConfig(options: P2POptions | Record<string, unknown> = {}): P2PConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new P2PConfigError(['config must be an object']);
  }
  // The logger is an object with methods, not data: class-transformer would copy it without its prototype.
  const { logger, ...data } = options as Record<string, unknown>;
  const loggerProblem = logger === undefined ? undefined : checkLogger(logger);
  const config = plainToInstance(P2PConfig, data, { exposeDefaultValues: true });
  const errors = validateSync(config, { whitelist: true, forbidNonWhitelisted: true });
  if (errors.length > 0 || loggerProblem) throw new P2PConfigError([...(loggerProblem ? [loggerProblem] : []), ...errors.flatMap(describe)]);
  if (HEADER_BYTES >= config.maxFrameBytes) throw new P2PConfigError(['maxFrameBytes is smaller than a frame header']);
  if (config.reconnectBaseMs > config.reconnectMaxMs) {
    throw new P2PConfigError(['reconnectBaseMs must not exceed reconnectMaxMs']);
  }
  if (config.privateKey !== undefined && config.privateKeyFile !== undefined) {
    throw new P2PConfigError(['privateKey and privateKeyFile: set one, not both']);
  }
  return config;
}

/** Why `logger` is not a P2PLogger, or undefined when it is one. */
function checkLogger(logger: unknown): string | undefined {
  if (logger === null || typeof logger !== 'object') return 'logger must be an object with log, warn and error methods';
  const methods = logger as Record<string, unknown>;
  const missing = ['log', 'warn', 'error'].filter((name) => typeof methods[name] !== 'function');
  if (missing.length > 0) return `logger must have log, warn and error methods (missing: ${missing.join(', ')})`;
  if (methods.debug !== undefined && typeof methods.debug !== 'function') return 'logger.debug must be a method when set';
  return undefined;
}

/** class-validator's type checks. */
const TYPE_CONSTRAINTS = ['isInt', 'isString', 'isBoolean', 'isArray'];

/**
 * A value of the wrong type fails every constraint of its key: `maxInbound: "40"` would
 * also "not be less than 1" and "not be greater than …". Only the type error is the problem.
 */
function describe(error: ValidationError): string[] {
  const constraints = error.constraints ?? {};
  const typeErrors = TYPE_CONSTRAINTS.filter((name) => name in constraints);
  const names = typeErrors.length > 0 ? typeErrors : Object.keys(constraints);
  const own = names.map((name) => `${error.property}: ${constraints[name]}`);
  return [...own, ...(error.children ?? []).flatMap(describe)];
}
