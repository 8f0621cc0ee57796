// Starts conntrackd 1.4.7 and ctsync in namespaces in Mode NOTRACK, both
// directions, ctsync with DisableInternalCache (events straight to the wire,
// -B from a kernel dump): the receiver's external cache must read as a
// conntrackd receiver's does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePair, type Pair } from '../helpers/syncpair.js';
import { waitFor } from '../helpers/netns.js';
import { ENTRY_ARGS, injectEntries, normalizeDump } from '../helpers/entries.js';

const N = ENTRY_ARGS.length;
const NOTRACK = { mode: 'NOTRACK' as const };
const BYPASS = { mode: 'NOTRACK' as const, modeExtra: ['DisableInternalCache on'] };

describe('conntrackd 1.4.7 interop in NOTRACK mode (starts conntrackd and ctsync in namespaces)', () => {
  let ref: Pair;
  let toCtsync: Pair;
  let toConntrackd: Pair;
  let all: Pair[] = [];

  beforeAll(async () => {
    ref = makePair('conntrackd', 'conntrackd', 'nr', { a: NOTRACK, b: NOTRACK });
    toCtsync = makePair('conntrackd', 'ctsync', 'na', { a: NOTRACK, b: NOTRACK });
    toConntrackd = makePair('ctsync', 'conntrackd', 'nb', { a: BYPASS, b: NOTRACK });
    all = [ref, toCtsync, toConntrackd];
    for (const p of all) {
      await p.a.start();
      await p.b.start();
    }
    for (const p of all) injectEntries(p.fw1);
    for (const p of all) {
      await waitFor(() => normalizeDump(p.b.cli(['-e']).stdout).length >= N, `${N} entries at the ${p.b.kind} receiver`, 15_000);
    }
  });

  afterAll(async () => {
    await Promise.all(all.map((p) => p.cleanup()));
  });

  it('both receivers list what the conntrackd reference receiver lists', () => {
    const want = normalizeDump(ref.b.cli(['-e']).stdout);
    expect(normalizeDump(toCtsync.b.cli(['-e']).stdout)).toEqual(want);
    expect(normalizeDump(toConntrackd.b.cli(['-e']).stdout)).toEqual(want);
  });

  it('with DisableInternalCache, ctsync keeps no internal cache and -B resends the kernel table', async () => {
    expect(toConntrackd.a.cli(['-i']).stdout).toBe('');
    expect(toConntrackd.b.cli(['-f', 'external']).status).toBe(0);
    await waitFor(() => normalizeDump(toConntrackd.b.cli(['-e']).stdout).length === 0, 'conntrackd external cache flushed', 5_000);
    expect(toConntrackd.a.cli(['-B']).status).toBe(0);
    await waitFor(() => normalizeDump(toConntrackd.b.cli(['-e']).stdout).length >= N, 'bulk from the kernel table', 10_000);
  });
});
