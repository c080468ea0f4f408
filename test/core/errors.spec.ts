import { describe, expect, expectTypeOf, it } from 'vitest';
import { P2PDialError, P2PError, P2PFrameTooLargeError, P2PHandshakeError, P2PIdentityMismatchError, P2PListenError, P2PProtocolError, P2PTimeoutError, type SystemErrorCode } from '../../src/index.js';

describe('error codes', () => {
  it('types each class\'s code as its own literal (and a parent\'s as its own plus its subclasses\')', () => {
    expectTypeOf<P2PFrameTooLargeError['code']>().toEqualTypeOf<'P2P_FRAME_TOO_LARGE'>();
    expectTypeOf<P2PIdentityMismatchError['code']>().toEqualTypeOf<'P2P_IDENTITY_MISMATCH'>();
    expectTypeOf<P2PTimeoutError['code']>().toEqualTypeOf<'P2P_TIMEOUT'>();
    expectTypeOf<P2PProtocolError['code']>().toEqualTypeOf<'P2P_PROTOCOL' | 'P2P_FRAME_TOO_LARGE'>();
    expectTypeOf<P2PDialError['code']>().toEqualTypeOf<'P2P_DIAL' | SystemErrorCode>();
    expectTypeOf<P2PDialError['p2pCode']>().toEqualTypeOf<'P2P_DIAL'>();
    const e: P2PError = new P2PFrameTooLargeError(10, 5);
    // Narrowing by instanceof then comparing to a subclass's code type-checks.
    if (e instanceof P2PProtocolError) expect(e.code === 'P2P_FRAME_TOO_LARGE').toBe(true);
  });

  it('sets code and p2pCode as own properties from the class', () => {
    const tooLarge = new P2PFrameTooLargeError(10, 5);
    expect(tooLarge).toMatchObject({ code: 'P2P_FRAME_TOO_LARGE', p2pCode: 'P2P_FRAME_TOO_LARGE', name: 'P2PFrameTooLargeError' });
    expect(Object.keys(tooLarge)).toEqual(expect.arrayContaining(['code', 'p2pCode']));
    expect(new P2PHandshakeError('x').code).toBe('P2P_HANDSHAKE');
    expect(new P2PError('x').code).toBe('P2P_ERROR');
  });

  it('exposes a dial or listen failure\'s system code as code, and only a known one', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(new P2PDialError('refused', {}, { cause: refused })).toMatchObject({ code: 'ECONNREFUSED', p2pCode: 'P2P_DIAL', cause: refused });
    expect(new P2PDialError('slow', {}, { systemCode: 'ETIMEDOUT' }).code).toBe('ETIMEDOUT');
    expect(new P2PDialError('odd', {}, { cause: Object.assign(new Error('x'), { code: 'EWHATEVER' }) }).code).toBe('P2P_DIAL');
    expect(new P2PListenError('127.0.0.1:1', Object.assign(new Error('in use'), { code: 'EADDRINUSE' })).code).toBe('EADDRINUSE');
    // Other classes keep their P2P code even with a system error as cause.
    expect(new P2PProtocolError('x', {}, { cause: refused }).code).toBe('P2P_PROTOCOL');
  });
});
