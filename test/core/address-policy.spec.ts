import { describe, expect, it } from 'vitest';
import { canonicalAddress } from '../../src/connection/address.js';
import { AddressPolicy, addressScope } from '../../src/discovery/address-policy.js';

const policy = (own: string | null, allow: { allowPrivate?: boolean; allowHostnames?: boolean } = {}) =>
  new AddressPolicy({ allowPrivate: false, allowHostnames: false, ...allow }, () => own);

describe('address policy (what a node dials on a peer’s word)', () => {
  const never = ['0.0.0.0:4000', '0.1.2.3:4000', '[::]:4000', '169.254.1.1:4000', '[fe80::1]:4000', '224.0.0.1:4000', '239.1.1.1:4000', '[ff02::1]:4000', '255.255.255.255:4000', '240.0.0.1:4000'];
  const loopback = ['127.0.0.1:4000', '127.9.9.9:4000', '[::1]:4000', '[::ffff:127.0.0.1]:4000'];
  const priv = ['10.0.0.1:4000', '172.16.5.4:4000', '192.168.1.1:4000', '100.64.0.1:4000', '[fd00::1]:4000', '[::ffff:10.0.0.1]:4000'];
  const hostnames = ['localhost:4000', 'example.com:4000'];

  it('refuses unspecified, link-local, multicast and broadcast addresses whatever the config', () => {
    for (const own of ['203.0.113.10:4100', '127.0.0.1:4100', '0.0.0.0:4100']) {
      const p = policy(own, { allowPrivate: true, allowHostnames: true });
      for (const a of never) expect(p.refusal(a), `${a} (own ${own})`).toMatch(/unspecified, link-local, multicast or broadcast/);
    }
  });

  it('a node on a public address refuses loopback, private ranges and host names; takes public IPs', () => {
    const p = policy('203.0.113.10:4100');
    for (const a of [...loopback, ...priv]) expect(p.refusal(a), a).toMatch(/pexAllowPrivate is off/);
    for (const a of hostnames) expect(p.refusal(a), a).toMatch(/pexAllowHostnames is off/);
    expect(p.refusal('8.8.8.8:4000')).toBeUndefined();
    expect(p.refusal('[2001:4860::8888]:4000')).toBeUndefined();
    expect(p.refusal('8.8.8.8:0')).toBe('port 0');
  });

  it('local networks keep working: a node on loopback takes loopback, one on a private address private ones', () => {
    expect(policy('127.0.0.1:4100').refusal('127.0.0.1:4000')).toBeUndefined();
    expect(policy('127.0.0.1:4100').refusal('10.0.0.1:4000')).toMatch(/private/);
    expect(policy('10.1.2.3:4100').refusal('192.168.1.1:4000')).toBeUndefined();
    expect(policy('10.1.2.3:4100').refusal('127.0.0.1:4000')).toMatch(/loopback/);
    // Bound to every interface with no externalAddress: a LAN or a container.
    expect(policy('0.0.0.0:4100').refusal('127.0.0.1:4000')).toBeUndefined();
    expect(policy('0.0.0.0:4100').refusal('10.0.0.1:4000')).toBeUndefined();
    expect(policy(null).refusal('127.0.0.1:4000')).toMatch(/loopback/);
  });

  it('pexAllowPrivate and pexAllowHostnames open what they name, and only that', () => {
    const p = policy('203.0.113.10:4100', { allowPrivate: true });
    for (const a of [...loopback, ...priv]) expect(p.refusal(a), a).toBeUndefined();
    expect(p.refusal('localhost:4000')).toMatch(/host name/);
    const h = policy('203.0.113.10:4100', { allowHostnames: true });
    for (const a of hostnames) expect(h.refusal(a), a).toBeUndefined();
    expect(h.refusal('10.0.0.1:4000')).toMatch(/private/);
  });

  it('spells each address one way, so duplicates merge', () => {
    expect(addressScope('::ffff:169.254.0.1')).toBe('never');
    expect(canonicalAddress('::ffff:127.0.0.1', 80)).toBe('127.0.0.1:80');
    expect(canonicalAddress('0:0:0:0:0:0:0:1', 80)).toBe('[::1]:80');
    expect(canonicalAddress('FD00::1', 80)).toBe('[fd00::1]:80');
    expect(canonicalAddress('Example.COM', 80)).toBe('example.com:80');
  });
});
