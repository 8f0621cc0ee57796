// A restart over a plain TCP sync link (no TLS): the sender's daemon is
// stopped and started again while the receiver keeps running, and entries
// created after the restart still reach the peer. A daemon restarted within
// seconds reuses FTFW sequence numbers near its old ones and reconnects on a
// new TCP connection; the peer must take that as a new session, not as stale
// copies, even when the peer restarts before its HELLO was answered. The
// receiver's restart, followed at once by -n, must get the full table back.
// Starts two ctsync daemons in namespaces (real kernel conntrack, TCP link).
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { isRoot, waitFor } from '../helpers/netns.js';
import { makePair, type Pair } from '../helpers/syncpair.js';
import { injectBulk, tcpEntries } from '../helpers/bulk.js';

function toTcp(p: Pair): void {
  for (const n of [p.a, p.b]) {
    const text = readFileSync(n.confPath, 'utf8');
    if (!text.includes('\tUDP {')) throw new Error('config template changed: no UDP block to turn into TCP');
    writeFileSync(n.confPath, text.replace('\tUDP {', '\tTCP {'));
  }
}

describe.skipIf(!isRoot)('TCP sync link across daemon restarts (starts two ctsync daemons)', () => {
  let pair: Pair | null = null;
  afterEach(async () => {
    await pair?.cleanup();
    pair = null;
  });

  /** A TCP-linked pair with 300 entries replicated from fw1 to fw2. */
  async function replicating(tag: string): Promise<{ p: Pair; ext: () => Promise<number> }> {
    const p = (pair = makePair('ctsync', 'ctsync', tag));
    toTcp(p);
    await p.a.start();
    await p.b.start();
    const ext = () => p.b.cacheCount('external');
    await injectBulk(p.fw1, tcpEntries(300, 0));
    await waitFor(async () => (await ext()) === 300, 'the first 300 entries on fw2', 20_000);
    return { p, ext };
  }

  it('keeps replicating after the sender restarts', async () => {
    const { p, ext } = await replicating('tr');

    // The sender restarts: its startup dump refills its internal cache; new flows must still arrive.
    await p.a.stop();
    await p.a.start();
    await injectBulk(p.fw1, tcpEntries(200, 1000));
    await waitFor(async () => (await ext()) === 500, 'the 200 entries created after fw1 restarted', 20_000);

    expect(await p.a.cacheCount('internal')).toBe(500);
  });

  it('refills a receiver restarted while the sender is busy, on -n at once', async () => {
    const { p, ext } = await replicating('tq');

    // fw2 goes down while fw1 sends 200 more, and asks for everything as soon as it is back:
    // it restarts within seconds, its new FTFW sequence numbers lie behind its old ones.
    await injectBulk(p.fw1, tcpEntries(200, 1000));
    await p.b.stop();
    await p.b.start();
    p.b.cli(['-n']);
    await waitFor(async () => (await ext()) === 500, 'all 500 entries on the restarted fw2', 15_000);
  });
});
