import { nestTcp } from './nest-tcp.js';
import { p2p } from './p2p.js';
import { raw } from './raw.js';
import type { Transport, TransportName } from './types.js';

export const TRANSPORTS: Record<TransportName, Transport> = {
  raw,
  'nest-tcp': nestTcp,
  'p2p-plain': p2p(false),
  'p2p-tls': p2p(true),
};

export const TRANSPORT_LABELS: Record<TransportName, string> = {
  raw: 'raw node:net',
  'nest-tcp': 'Nest TCP',
  'p2p-plain': 'p2p (plaintext)',
  'p2p-tls': 'p2p (TLS)',
};
