import { afterEach, describe, expect, it } from 'vitest';
import { of } from 'rxjs';
import { P2PServer } from '../../src/index.js';
import { waitFor } from '../helpers.js';
import { connectAndWait, startNode, type TestNode } from '../nest-helpers.js';

/** Issue 24, item 1, Nest side: a node's @MessagePattern / @EventPattern handlers are its directory record. */

const apps: TestNode[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((n) => n.app.close()));
});

describe('directory of handlers from a Nest app', () => {
  it("another node finds the app's handlers by pattern, wildcard subjects and object patterns included, and one added at run time", async () => {
    const server = await startNode();
    apps.push(server);
    const other = await startNode();
    apps.push(other);
    await connectAndWait(other, server);
    const lookup = (subject: string, kind: 'request' | 'event') => other.node.handlers(subject, kind).map((h) => h.id);
    await waitFor(() => lookup('echo', 'request').length === 2, 2000, 'the echo handlers');
    // Both run NodeController: both handle echo; sorted by id, this node marked as itself.
    expect(lookup('echo', 'request')).toEqual([server.id, other.id].sort());
    expect(other.node.handlers('echo', 'request').find((h) => h.self)?.id).toBe(other.id);
    expect(lookup('{"cmd":"sum"}', 'request')).toEqual([server.id, other.id].sort());
    expect(lookup('note', 'event')).toEqual([server.id, other.id].sort());
    expect(lookup('{"kind":"typed","v":1}', 'event')).toEqual([server.id, other.id].sort());
    expect(lookup('note', 'request')).toEqual([]);
    expect(other.node.handlers('echo', 'request').find((h) => h.id === server.id)?.address).toBe(server.address);

    // A handler added while the app runs (wildcard): only the server has it.
    server.app.get(P2PServer).addHandler('math.*', async () => of(1), false);
    await waitFor(() => lookup('math.sum', 'request').length === 1, 4000, 'the handler added at run time');
    expect(lookup('math.sum', 'request')).toEqual([server.id]);
  });
});
