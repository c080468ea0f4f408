/**
 * Where a control frame goes: the hello to the hello exchange, ping and pong to the
 * keepalive, a goodbye to the close, and the bodies of the node's protocols (peer exchange,
 * network broadcast, broadcast repair, directory sync) to the node. Before the hello exchange is done only
 * hello, ping, pong and goodbye may arrive; anything else, or a second hello, throws
 * P2PProtocolError, which closes the connection. Its host (ControlRoutes) is the connection.
 */

import { P2PProtocolError } from '../common/errors.js';
import { ControlType, type Control, type GoodbyeReason, type Hello } from '../wire/control.js';

/** The destinations of control frames on one connection. */
export interface ControlRoutes {
  /** The hello exchange is not done yet. */
  handshaking(): boolean;
  hello(hello: Hello): void;
  ping(token: number): void;
  pong(token: number): void;
  goodbye(reason: GoodbyeReason, message: string): void;
  peerExchange(body: Buffer): void;
  networkBroadcast(body: Buffer): void;
  repair(type: ControlType.BroadcastIHave | ControlType.BroadcastIWant, body: Buffer): void;
  directory(type: ControlType.DirectoryDigest | ControlType.DirectoryRecords, body: Buffer): void;
}

export function dispatchControl(control: Control, to: ControlRoutes): void {
  switch (control.type) {
    case ControlType.Hello:
      if (!to.handshaking()) throw new P2PProtocolError('second hello');
      return to.hello(control.hello);
    case ControlType.Ping:
      return to.ping(control.token);
    case ControlType.Pong:
      return to.pong(control.token);
    case ControlType.Goodbye:
      return to.goodbye(control.reason, control.message);
    // These may arrive while a replaced duplicate drains (state 'closing'): like data, they are still read.
    case ControlType.PeerExchange:
      if (to.handshaking()) throw new P2PProtocolError('peer exchange before the hello exchange');
      return to.peerExchange(control.body);
    case ControlType.NetworkBroadcast:
      if (to.handshaking()) throw new P2PProtocolError('network broadcast before the hello exchange');
      return to.networkBroadcast(control.body);
    case ControlType.BroadcastIHave:
    case ControlType.BroadcastIWant:
      if (to.handshaking()) throw new P2PProtocolError('broadcast repair before the hello exchange');
      return to.repair(control.type, control.body);
    case ControlType.DirectoryDigest:
    case ControlType.DirectoryRecords:
      if (to.handshaking()) throw new P2PProtocolError('directory sync before the hello exchange');
      return to.directory(control.type, control.body);
  }
}
