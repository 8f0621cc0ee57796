// A large commit on fw2 runs with the conntrack NEW event group muted; what
// other processes do to fw2's table meanwhile (new flows, ended flows) must
// still end up in fw2's internal cache, recovered by the resync that follows.
// Also: commit errors the kernel reports per entry are still counted.
// Starts two ctsync daemons in namespaces (real kernel conntrack).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CTL } from '../../src/control/codes.js';
import { AF_INET, IPPROTO, IPS, type Conntrack } from '../../src/model/conntrack.js';
import { CtClient } from '../../src/netlink/client.js';
import { injectBulk, tcpEntries } from '../helpers/bulk.js';
import { isRoot, waitFor } from '../helpers/netns.js';
import { makePair, type Pair } from '../helpers/syncpair.js';

const N = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function local(i: number, net: number): Conntrack {
  const src = `10.${net}.${i >> 8}.${i & 255}`;
  return {
    orig: { l3: AF_INET, src, dst: '198.18.0.1', proto: IPPROTO.TCP, sport: 30000 + i, dport: 443 },
    status: IPS.SEEN_REPLY | IPS.ASSURED, timeout: 600, tcp: { state: 3 },
  };
}

/** Orig tuples of the lines of `-i` or `conntrack -L`, sync-link flows left out (the daemon's filter ignores them). */
function tuples(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(line);
    if (!m || m[1]!.startsWith('172.30.1.')) continue;
    out.push(`${m[1]}:${m[3]}>${m[2]}:${m[4]}`);
  }
  return out.sort();
}

describe.skipIf(!isRoot)('commit with NEW events muted, while other processes change the table (starts two ctsync daemons)', () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = makePair('ctsync', 'ctsync', 'cw');
    await pair.a.start();
    await pair.b.start();
  });

  afterAll(async () => {
    await pair?.cleanup();
  });

  it('ends with the internal cache equal to the kernel table, and counts per-entry failures', async () => {
    const peer = tcpEntries(N, 0);
    await injectBulk(pair.fw1, peer);
    await waitFor(async () => (await pair.b.cacheCount('external')) === N, `${N} entries in fw2 external cache`, 60_000, 100);

    const fw2 = new CtClient({ netns: pair.fw2.path });
    try {
      // fw2's own flows before the failover: 200 that end during the commit.
      const ending = Array.from({ length: 200 }, (_, i) => local(i, 61));
      expect((await fw2.create(ending)).ok).toBe(200);
      // 5 peer entries that cannot be committed: a local NATed flow already owns their reply tuple (EEXIST even after replace).
      for (let i = 0; i < 5; i++) {
        const p = peer[i * 1000]!.orig;
        pair.fw2.run('conntrack', ['-I', '-p', 'tcp', '-s', `10.62.0.${i + 1}`, '-d', p.dst, '--sport', String(p.sport), '--dport', String(p.dport),
          '--state', 'ESTABLISHED', '-t', '600', '-u', 'SEEN_REPLY,ASSURED', '--src-nat', p.src]);
      }
      await waitFor(async () => (await pair.b.cacheCount('internal')) >= 205, 'fw2 local flows in its internal cache', 10_000);

      // The commit, and meanwhile: 300 new flows appear, the 200 old ones end.
      let done = false;
      const reply = pair.b.request(CTL.ALL_COMMIT, 120_000).finally(() => { done = true; });
      let made = 0;
      while (!done || made < 300) {
        if (made < 300) {
          expect((await fw2.create(Array.from({ length: 10 }, (_, k) => local(made + k, 63)))).ok).toBe(10);
          made += 10;
        }
        if (made <= 200) expect((await fw2.remove(ending.slice(made - 10, made))).ok).toBe(10);
        await sleep(2);
      }
      const text = await reply;
      expect(text).toMatch(new RegExp(`committed ${N - 5} entries .*\\(5 failed\\)`));

      // The resync queued behind the commit brings -i in line with the kernel.
      const kernelNow = () => tuples(pair.fw2.run('conntrack', ['-L']).stdout);
      await waitFor(() => {
        const k = kernelNow();
        const i = tuples(pair.b.cli(['-i']).stdout);
        return k.length === N - 5 + 300 + 5 && JSON.stringify(i) === JSON.stringify(k);
      }, 'internal cache equal to the kernel table', 20_000, 200);
      const internal = pair.b.cli(['-i']).stdout;
      expect(internal).toContain('src=10.63.1.43 ');
      expect(internal).not.toContain('src=10.61.0.');
    } finally {
      fw2.close();
    }
  });
});
