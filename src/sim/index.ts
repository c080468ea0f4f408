/**
 * `nestjs-p2p/sim`: the network simulator behind `npm run simulate` (docs/broadcast.md, Simulation).
 * It runs the node's own RainTree router, repair and topology code over simulated links, with
 * no sockets. A research tool: not part of the transport, and not covered by semver.
 *
 * @packageDocumentation
 */
export * from './network-sim.js';
export type { BroadcastStrategy } from '../broadcast/codec.js';
export { directoryTraffic, fillDirectory, type DirectoryFill, type DirectoryFillOptions, type DirectoryTraffic, type DirectoryTrafficOptions } from './directory.js';
export { linkTopics, preferTopics, type TopicLinks } from './topic-links.js';
