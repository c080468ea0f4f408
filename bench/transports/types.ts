/** What every transport under test provides to the benchmark's server and client processes. */
export type TransportName = 'raw' | 'raw-tls' | 'nest-tcp' | 'p2p-core' | 'p2p-plain' | 'p2p-tls';

export interface Target {
  address: string;
  /** Peer id, for the p2p transports. */
  id?: string;
}

export interface BenchServer {
  targets: Target[];
  /** Stops reading from every connection, now and later (the memory scenario's stalled peer). */
  stall?(): void;
  close(): Promise<void>;
}

/** Called by the server side for every event received. */
export type OnEvent = () => void;

export interface BenchClient {
  /** Sends one event to target `i`; returns a promise when the caller must wait (backpressure). */
  emit(i: number, data: Buffer | string): void | Promise<void>;
  /** Sends one event to every target. */
  broadcast(data: Buffer | string): void | Promise<void>;
  request(data: Buffer | string): Promise<unknown>;
  /** One send attempt without waiting: false when the transport refused it for backpressure. */
  offer?(i: number, data: Buffer | string): Promise<boolean>;
  close(): Promise<void>;
}

export interface Transport {
  startServer(receivers: number, onEvent: OnEvent): Promise<BenchServer>;
  startClient(targets: Target[]): Promise<BenchClient>;
}
