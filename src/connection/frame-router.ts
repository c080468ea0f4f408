/**
 * Routes one connection's decoded frames: control frames to their protocols, responses to the
 * requests this node sent, events and requests to delivery. The hot path (an event or a request)
 * reads the topic through the connection's TopicCache and the payload in place, into one reusable
 * view: nothing is allocated per frame but the values handed to the application. Its host
 * (RouterHost) is the connection.
 */

import { P2PProtocolError } from '../common/errors.js';
import { decodePayloadAt, frameKind, readWrapped, TopicCache, type WrappedView } from '../wire/codec.js';
import { Encoding, ENCODING_MASK, FLAG_CONTROL, FLAG_REQUEST, FLAG_RESPONSE, HEADER_BYTES } from '../wire/constants.js';
import { decodeControl, type Control } from '../wire/control.js';
import type { Metadata } from '../wire/metadata.js';
import type { MetricsSink } from './metrics.js';

/** What routing needs from its connection. */
export interface RouterHost {
  /** Frames are read at all: false once closed, or closing without draining. */
  reading(): boolean;
  handshaking(): boolean;
  /** Closing a replaced duplicate: events still arrive, requests are not answered. */
  closing(): boolean;
  metrics(): MetricsSink | undefined;
  control(control: Control): void;
  /** A response frame, its body `bytes[start, end)`. */
  response(flags: number, nonce: number, bytes: Buffer, start: number, end: number): void;
  event(topic: string, data: unknown, metadata: Metadata | undefined): void;
  request(nonce: number, topic: string, data: unknown, metadata: Metadata | undefined): void;
}

export class FrameRouter {
  private readonly topics = new TopicCache();
  private readonly view: WrappedView = { topic: '', metadata: undefined, payloadStart: 0 };

  constructor(private readonly host: RouterHost) {}

  /** One whole frame from the reader, its body `bytes[start, end)`; throws P2PProtocolError when it breaks the protocol. */
  readonly frame = (flags: number, nonce: number, bytes: Buffer, start: number, end: number): void => {
    const host = this.host;
    if (!host.reading()) return;
    const metrics = host.metrics();
    if (metrics) metrics.frame('in', frameKind(flags), HEADER_BYTES + end - start);
    if (flags & FLAG_CONTROL) return host.control(decodeControl(bytes.subarray(start, end)));
    if (host.handshaking()) throw new P2PProtocolError('data frame before the hello exchange');
    if (flags & FLAG_RESPONSE) return host.response(flags, nonce, bytes, start, end);
    const request = (flags & FLAG_REQUEST) !== 0;
    // A replaced duplicate still delivers what the peer sent before it saw our goodbye, but answers nothing:
    // the peer's pending requests on it fail when it closes, so the peer is told.
    if (request && host.closing()) return;
    const view = readWrapped(bytes, start, end, this.topics, this.view);
    const data = decodePayloadAt((flags & ENCODING_MASK) as Encoding, bytes, view.payloadStart, end);
    if (request) host.request(nonce, view.topic, data, view.metadata);
    else host.event(view.topic, data, view.metadata);
  };
}
