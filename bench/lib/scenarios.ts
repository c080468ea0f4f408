/** The benchmark's scenarios. Counts are messages (or requests) after the warm-up. */
export type ScenarioName = 'events' | 'bulk' | 'req1' | 'req64' | 'broadcast' | 'memory' | 'netcast' | 'propagation' | 'throwaway-flood' | 'pattern-requests';

export interface Scenario {
  name: ScenarioName;
  title: string;
  /** What the figure counts. */
  unit: 'msg/s' | 'MB/s' | 'µs' | 'req/s' | 'deliveries/s' | 'MiB' | 'ms';
  payloadBytes: number;
  binary: boolean;
  warmup: number;
  measured: number;
  /** Requests in flight at once (request scenarios). */
  concurrency?: number;
  /** Receivers (broadcast); nodes of the mesh (netcast, propagation). */
  fanout?: number;
  /** Every payload the scenario measures, in turn (netcast); otherwise payloadBytes and binary. */
  payloads?: Array<{ bytes: number; binary: boolean }>;
  /** Pace of the broadcasts, ms between two (propagation); the idle window, ms (throwaway-flood). */
  intervalMs?: number;
}

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  events: { name: 'events', title: 'one-way 64 B events', unit: 'msg/s', payloadBytes: 64, binary: false, warmup: 20_000, measured: 200_000 },
  bulk: { name: 'bulk', title: 'one-way 64 KiB binary', unit: 'MB/s', payloadBytes: 64 * 1024, binary: true, warmup: 1_000, measured: 10_000 },
  req1: { name: 'req1', title: 'request/reply, 1 in flight', unit: 'µs', payloadBytes: 64, binary: false, warmup: 1_000, measured: 10_000, concurrency: 1 },
  req64: { name: 'req64', title: 'request/reply, 64 in flight', unit: 'req/s', payloadBytes: 64, binary: false, warmup: 5_000, measured: 100_000, concurrency: 64 },
  broadcast: { name: 'broadcast', title: 'broadcast to 8 neighbours', unit: 'deliveries/s', payloadBytes: 64, binary: false, warmup: 2_000, measured: 30_000, fanout: 8 },
  // `measured` is the flood's length in ms; the figure is the sender's RSS growth against a peer that stops reading.
  memory: { name: 'memory', title: 'sender RSS growth, flooding a peer that stops reading (maxQueueBytes 16 MiB)', unit: 'MiB', payloadBytes: 64 * 1024, binary: true, warmup: 200, measured: 3_000 },
  // Network broadcasts in a mesh of `fanout` node processes, signed against unsigned (lib/netcast.ts): warmup and
  // measured are ms, and every payload in `payloads` is measured. It has its own rows, not one per transport.
  netcast: {
    name: 'netcast',
    title: 'network broadcast, 8-node mesh, signed vs unsigned',
    unit: 'deliveries/s',
    payloadBytes: 64,
    binary: false,
    warmup: 2_000,
    measured: 1_500,
    fanout: 8,
    payloads: [
      { bytes: 64, binary: false },
      { bytes: 16 * 1024, binary: true },
    ],
  },
  // Time for a network broadcast to reach every node of a `fanout`-node full mesh (TLS), repair on and off, healthy
  // and with 2 faulty relays (lib/propagation.ts): warmup and measured are broadcasts, one every intervalMs.
  propagation: {
    name: 'propagation',
    title: 'network broadcast propagation, 16-node full mesh, TLS',
    unit: 'ms',
    payloadBytes: 64,
    binary: false,
    warmup: 20,
    measured: 200,
    fanout: 16,
    intervalMs: 40,
  },
  // Issue 22's throwaway-key flood (lib/flood.ts): one hostile link sends `measured` broadcasts signed by throwaway keys into
  // a `fanout`-node TLS mesh; honest request round trips idle (intervalMs of them, after warmup ms) and during the flood.
  'throwaway-flood': {
    name: 'throwaway-flood',
    title: 'throwaway-key flood through one link, 8-node TLS mesh',
    unit: 'ms',
    payloadBytes: 64,
    binary: false,
    warmup: 1_000,
    measured: 3_000,
    fanout: 8,
    intervalMs: 3_000,
  },
  // Issue 24's request figures (lib/pattern-requests.ts): requests to a pattern whose handler is a neighbour ÷
  // request(peerId) to the same node, Nest apps one per process; `measured` requests per window at 64 in flight
  // (a tenth at 1 in flight), and one window of `measured` over three handlers for the shares.
  'pattern-requests': {
    name: 'pattern-requests',
    title: 'requests to a pattern vs to a peer id, neighbour handler',
    unit: 'req/s',
    payloadBytes: 64,
    binary: false,
    warmup: 5_000,
    measured: 60_000,
    concurrency: 64,
  },
};

/** Scenarios left out of a run without --scenarios: they take minutes and measure no transport (propagation about 7 min at 3 runs, throwaway-flood about 1.5, pattern-requests about 4.5). */
export const OPT_IN: readonly ScenarioName[] = ['propagation', 'throwaway-flood', 'pattern-requests'];

/** Transports a scenario applies to: the memory scenario needs a transport that can stall its reader; netcast and propagation run apart. */
export function appliesTo(scenario: Scenario, transport: string): boolean {
  if (scenario.name === 'netcast' || scenario.name === 'propagation' || scenario.name === 'throwaway-flood' || scenario.name === 'pattern-requests') return false;
  return scenario.name !== 'memory' || transport === 'p2p-plain' || transport === 'p2p-tls';
}

/** `--scale F` (`--quick` is 0.1): every count times F, for a smoke run or a longer profile. */
export function scaled(scenario: Scenario, factor: number): Scenario {
  return {
    ...scenario,
    warmup: Math.max(1, Math.round(scenario.warmup * factor)),
    measured: Math.max(10, Math.round(scenario.measured * factor)),
  };
}

export function payloadFor(scenario: Scenario): Buffer | string {
  return scenario.binary ? Buffer.alloc(scenario.payloadBytes, 0xab) : 'x'.repeat(scenario.payloadBytes);
}
