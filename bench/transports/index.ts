import { nestTcp } from './nest-tcp.js';
import { p2p } from './p2p.js';
import { p2pCore } from './p2p-core.js';
import { rawTransport } from './raw.js';
import type { Transport, TransportName } from './types.js';

export const TRANSPORTS: Record<TransportName, Transport> = {
  raw: rawTransport(false),
  'raw-tls': rawTransport(true),
  'nest-tcp': nestTcp,
  'p2p-core': p2pCore,
  'p2p-plain': p2p(false),
  'p2p-tls': p2p(true),
};

export const TRANSPORT_LABELS: Record<TransportName, string> = {
  raw: 'raw node:net',
  'raw-tls': 'raw node:tls',
  'nest-tcp': 'Nest TCP',
  'p2p-core': 'p2p core, no Nest',
  'p2p-plain': 'p2p (plaintext)',
  'p2p-tls': 'p2p (TLS)',
};
