// Starts Debian's conntrackd 1.4.7 and ctsync in namespaces, as mixed pairs in
// both directions, beside a conntrackd-only reference pair. The same entries
// are injected on each sender; each receiver's external cache must read
// exactly like the reference receiver's, and a commit must reproduce the
// sender's kernel entries in the receiver's kernel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePair, type Pair } from '../helpers/syncpair.js';
import { waitFor } from '../helpers/netns.js';
import { ENTRY_ARGS, injectEntries, normalizeDump, normalizeKernel } from '../helpers/entries.js';

const N = ENTRY_ARGS.length;

/**
 * The injected entries in a kernel table, without the daemons' own sync-link
 * flows. UDP-Lite is left out: conntrackd 1.4.7 sends ports only for UDP
 * (protocol 17), so a UDP-Lite entry arrives portless whoever sends it
 * (checked separately below).
 */
function kernelTable(p: Pair, which: 'fw1' | 'fw2'): string[] {
  const ns = which === 'fw1' ? p.fw1 : p.fw2;
  // conntrack -L lists both families.
  return normalizeKernel(ns.run('conntrack', ['-L']).stdout)
    .filter((l) => !l.includes('172.30.1.') && !l.startsWith('udplite'));
}

/** Kernel-assigned ids differ between namespaces. */
function withoutIds(lines: string[]): string[] {
  return lines.map((l) => l.replace(/<id>\d+<\/id>/, '')).sort();
}

describe('conntrackd 1.4.7 interop (starts conntrackd and ctsync in namespaces)', () => {
  let ref: Pair;
  let toCtsync: Pair;
  let toConntrackd: Pair;

  beforeAll(async () => {
    ref = makePair('conntrackd', 'conntrackd', 'ir');
    toCtsync = makePair('conntrackd', 'ctsync', 'ia');
    toConntrackd = makePair('ctsync', 'conntrackd', 'ib');
    for (const p of [ref, toCtsync, toConntrackd]) {
      await p.a.start();
      await p.b.start();
    }
    // Let each pair finish its HELLO handshake before data flows.
    await new Promise((r) => setTimeout(r, 1500));
    for (const p of [ref, toCtsync, toConntrackd]) injectEntries(p.fw1);
    for (const p of [ref, toCtsync, toConntrackd]) {
      await waitFor(() => normalizeDump(p.b.cli(['-e']).stdout).length >= N, `${N} entries in ${p.b.kind} external cache`, 15_000);
    }
  });

  afterAll(async () => {
    await Promise.all([ref, toCtsync, toConntrackd].map((p) => p?.cleanup()));
  });

  it('conntrackd → ctsync: ctsync -e equals conntrackd -e of the reference receiver', () => {
    expect(normalizeDump(toCtsync.b.cli(['-e']).stdout)).toEqual(normalizeDump(ref.b.cli(['-e']).stdout));
  });

  it('ctsync → conntrackd: conntrackd -e equals the reference receiver', () => {
    expect(normalizeDump(toConntrackd.b.cli(['-e']).stdout)).toEqual(normalizeDump(ref.b.cli(['-e']).stdout));
  });

  it('ctsync -i lists what conntrackd -i lists for the same kernel table', () => {
    expect(normalizeDump(toConntrackd.a.cli(['-i']).stdout)).toEqual(normalizeDump(ref.a.cli(['-i']).stdout));
  });

  it('XML dumps match conntrackd for both caches', () => {
    expect(withoutIds(normalizeDump(toCtsync.b.cli(['-e', '-x']).stdout))).toEqual(withoutIds(normalizeDump(ref.b.cli(['-e', '-x']).stdout)));
    expect(withoutIds(normalizeDump(toConntrackd.a.cli(['-i', '-x']).stdout))).toEqual(withoutIds(normalizeDump(ref.a.cli(['-i', '-x']).stdout)));
  });

  it('commit on each receiver reproduces the sender kernel entries', async () => {
    for (const p of [ref, toCtsync, toConntrackd]) {
      expect(p.b.cli(['-c']).status).toBe(0);
    }
    for (const p of [ref, toCtsync, toConntrackd]) {
      const label = `${p.a.kind} → ${p.b.kind}`;
      const want = kernelTable(p, 'fw1');
      expect(want.length, label).toBe(N - 1);
      await waitFor(() => kernelTable(p, 'fw2').length >= want.length, `${label}: receiver kernel has ${want.length} entries`, 10_000);
      expect(kernelTable(p, 'fw2'), label).toEqual(want);
      const lite = p.fw2.run('conntrack', ['-L', '-p', 'udplite']).stdout;
      expect(lite, label).toMatch(/udplite\s+136 .*src=10\.99\.0\.2 dst=10\.99\.0\.1 sport=0 dport=0/);
    }
  });

  it('deletions on the sender reach either receiver', async () => {
    for (const p of [toCtsync, toConntrackd]) {
      p.fw1.run('conntrack', ['-D', '-p', 'tcp', '--sport', '40000', '--dport', '80']);
    }
    for (const p of [toCtsync, toConntrackd]) {
      await waitFor(() => !p.b.cli(['-e']).stdout.includes('sport=40000 '), `${p.b.kind} drops the deleted entry`, 10_000);
    }
  });
});
