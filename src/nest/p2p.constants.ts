/** Injection token of the raw options given to forRoot/forRootAsync. */
export const P2P_OPTIONS = Symbol('P2P_OPTIONS');
/** Injection token of the validated P2PConfig. */
export const P2P_CONFIG = Symbol('P2P_CONFIG');
/** Injection token of the transport core's node (a `Peer`). */
export const P2P_NODE = Symbol('P2P_NODE');
/** Transport id of P2PServer, for `@MessagePattern(pattern, P2P_TRANSPORT)`. */
export const P2P_TRANSPORT = Symbol.for('nestjs-p2p');
