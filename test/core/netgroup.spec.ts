import { describe, expect, it } from 'vitest';
import { hostOf, netgroupExcess, netgroupOf, netgroupRefusal } from '../../src/trust/netgroup.js';

/** Each netgroup named with 8 peers free to dial (as many as the least degree). */
const plenty = (groups: string[]) => new Map(groups.map((g) => [g, 8] as const));

const o = { netgroupPrefixV4: 16, netgroupPrefixV6: 32, perIpLimitsOnLoopback: false };

describe('netgroups (issue 22, formation eclipse)', () => {
  it('groups IPv4 by /16, IPv6 by /32, IPv4-mapped as IPv4, loopback as one, names as themselves', () => {
    expect(netgroupOf('203.0.113.7', o)).toBe('203.0.0.0/16');
    expect(netgroupOf('203.0.200.9', o)).toBe(netgroupOf('203.0.113.7', o));
    expect(netgroupOf('203.1.113.7', o)).not.toBe(netgroupOf('203.0.113.7', o));
    expect(netgroupOf('::ffff:203.0.113.7', o)).toBe('203.0.0.0/16');
    expect(netgroupOf('2001:db8:1:2::5', o)).toBe('2001:db8::/32');
    expect(netgroupOf('[2001:db8:ffff::1]', o)).toBe('2001:db8::/32');
    expect(netgroupOf('127.1.0.1', o)).toBe('loopback');
    expect(netgroupOf('::1', o)).toBe('loopback');
    expect(netgroupOf('127.1.0.1', { ...o, perIpLimitsOnLoopback: true })).toBe('127.1.0.0/16');
    expect(netgroupOf('10.9.8.7', { ...o, netgroupPrefixV4: 0 })).toBe(netgroupOf('192.168.1.1', { ...o, netgroupPrefixV4: 0 }));
    expect(netgroupOf('10.9.8.7', { ...o, netgroupPrefixV4: 20 })).toBe('10.9.0.0/20');
    expect(netgroupOf('Node-A.example', o)).toBe('node-a.example');
    expect(hostOf('10.0.0.1:4000')).toBe('10.0.0.1');
    expect(hostOf('[2001:db8::1]:4000')).toBe('2001:db8::1');
    expect(hostOf('node.example:4000')).toBe('node.example');
  });

  it('one netgroup holds at most a third of the connections (a half with two) while holding costs no degree', () => {
    const a = 'A';
    // Below the least degree (8): a third of it, 2.
    expect(netgroupRefusal(a, ['A', 'B'], plenty(['B', 'C']), 8)).toBeUndefined();
    expect(netgroupRefusal(a, ['A', 'A', 'B', 'C'], plenty(['B', 'C']), 8)).toMatch(/netgroup A at 2 of 4/);
    // Past it: a third of the connections with the newcomer (3 of 9).
    expect(netgroupRefusal(a, ['A', 'A', 'B', 'B', 'C', 'C', 'D', 'E'], plenty(['F']), 8)).toBeUndefined();
    expect(netgroupRefusal(a, ['A', 'A', 'A', 'B', 'B', 'C', 'C', 'D', 'E'], plenty(['F']), 8)).toMatch(/third/);
    // Two netgroups: half.
    expect(netgroupRefusal(a, ['A', 'A', 'A', 'B', 'B', 'B', 'B'], plenty(['B']), 8)).toBeUndefined();
    expect(netgroupRefusal(a, ['A', 'A', 'A', 'A', 'B', 'B', 'B', 'B'], plenty(['B']), 8)).toMatch(/half/);
    // Nothing free elsewhere and fewer than 8 from other netgroups: holding would cost degree (two sites, one small).
    expect(netgroupRefusal(a, ['A', 'A', 'A', 'A', 'A', 'A', 'B', 'C'], plenty(['A']), 8)).toBeUndefined();
    expect(netgroupRefusal(a, ['A', 'A', 'A', 'A', 'A', 'B', 'C'], new Map<string, number>(), 8)).toBeUndefined();
    // 8 from other netgroups: it holds (a seed connected to every honest node).
    expect(netgroupRefusal(a, ['A', 'A', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I'], new Map<string, number>(), 8)).toBeUndefined();
    expect(netgroupRefusal(a, ['A', 'A', 'A', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I'], new Map<string, number>(), 8)).toMatch(/third/);
    // Netgroups only known of do not count: one netgroup connected, nothing held (made-up ids elsewhere change nothing).
    expect(netgroupRefusal('loopback', Array(20).fill('loopback'), plenty(['B', 'C']), 8)).toBeUndefined();
    expect(netgroupRefusal(a, Array(20).fill('A'), plenty(['B', 'C']), 8)).toBeUndefined();
    // Peers free elsewhere count by how many they are: 2 from others and 3 free elsewhere make no least degree, so a large
    // site is not held below it (10 + 3 nodes, a node with 2 of the 3 of the small site); 6 free elsewhere do (two netgroups connected: a half).
    expect(netgroupRefusal(a, ['A', 'A', 'A', 'A', 'B', 'B'], new Map([['B', 1], ['C', 2]]), 8)).toBeUndefined();
    expect(netgroupRefusal(a, ['A', 'A', 'A', 'A', 'B', 'B'], new Map([['B', 1], ['C', 5]]), 8)).toMatch(/netgroup A at 4 of 6/);
  });

  it('the netgroup furthest past its share, and by how much', () => {
    expect(netgroupExcess(['A', 'A', 'A', 'B', 'C', 'D', 'E', 'F'], plenty(['G']), 8)).toEqual({ excess: 1, group: 'A' });
    expect(netgroupExcess(['A', 'A', 'A', 'B', 'C', 'D', 'E', 'F', 'G'], plenty(['H']), 8)).toEqual({ excess: 0 });
    // Nothing free and 5 from others: holding would cost degree.
    expect(netgroupExcess(['A', 'A', 'A', 'B', 'C', 'D', 'E', 'F'], new Map<string, number>(), 8)).toEqual({ excess: 0 });
    expect(netgroupExcess(Array(12).fill('A'), plenty(['B']), 8)).toEqual({ excess: 0 });
  });

  it("a node's own netgroup (its site) is never held", () => {
    const held = ['A', 'A', 'A', 'A', 'A', 'B', 'C', 'C', 'C'];
    const free = new Map([['C', 8]]);
    expect(netgroupRefusal('A', held, free, 8)).toMatch(/third/);
    expect(netgroupRefusal('A', held, free, 8, new Set(['A']))).toBeUndefined();
    expect(netgroupExcess(held, free, 8).group).toBe('A');
    expect(netgroupExcess(held, free, 8, new Set(['A']))).toEqual({ excess: 0 });
  });
});
