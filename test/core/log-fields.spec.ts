import { describe, expect, it } from 'vitest';
import type { LogFields, P2PLogger } from '../../src/common/types.js';
import { Sanctions } from '../../src/trust/sanctions.js';

/** A logger that keeps each line with the fields the node passed. */
function recorder(): P2PLogger & { lines: Array<{ level: string; message: string; fields?: LogFields }> } {
  const lines: Array<{ level: string; message: string; fields?: LogFields }> = [];
  const at = (level: string) => (message: string, fields?: LogFields) => void lines.push({ level, message, fields });
  return { lines, log: at('log'), warn: at('warn'), error: at('error'), debug: at('debug') };
}

describe('LogFields (issue 23)', () => {
  it('a ban and its lifting name their event and the peer; an IP lifted is not passed as a peer id', () => {
    const logger = recorder();
    const peerId = 'd'.repeat(40);
    const sanctions = new Sanctions({ disconnect: () => undefined, whereIs: () => ({ address: '127.0.0.1:4100', inboundIp: '198.51.100.9' }), logger }, 60_000);
    sanctions.ban(peerId, 'flooding');
    sanctions.unban(peerId);
    sanctions.ban('e'.repeat(40), 'flooding'); // an inbound peer: its IP is banned too
    sanctions.unban('198.51.100.9');
    expect(logger.lines.map(({ level, fields }) => ({ level, fields }))).toEqual([
      { level: 'warn', fields: { event: 'banned', peerId, address: '127.0.0.1:4100' } },
      { level: 'log', fields: { event: 'unbanned', peerId } },
      { level: 'warn', fields: { event: 'banned', peerId: 'e'.repeat(40), address: '127.0.0.1:4100' } },
      { level: 'log', fields: { event: 'unbanned', peerId: undefined } },
    ]);
    expect(logger.lines[0]!.message).toContain(`banned peer ${peerId} at 127.0.0.1:4100`); // the text is unchanged
  });

  it('a logger that takes only the message, as before this argument existed, still gets every line', () => {
    const messages: string[] = [];
    const logger: P2PLogger = { log: (m: string) => void messages.push(m), warn: (m: string) => void messages.push(m), error: (m: string) => void messages.push(m) };
    const sanctions = new Sanctions({ disconnect: () => undefined, whereIs: () => ({}), logger }, 60_000);
    sanctions.ban('f'.repeat(40), 'flooding');
    expect(messages).toEqual([`banned peer ${'f'.repeat(40)} at unknown address for 60 s: flooding`]);
  });
});
