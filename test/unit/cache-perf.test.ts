// Perf sanity, not a timing assert: a full-size run must complete, keep
// short chains and count exactly. Timings are printed for the curious.
import { describe, expect, it } from 'vitest';
import { AF_INET, AF_INET6, EVENT, IPPROTO, type Conntrack } from '../../src/model/conntrack.js';
import { InternalCache } from '../../src/cache/internal.js';
import { FakeClock } from '../../src/util/clock.js';
import { compileFilter } from '../../src/filter/filter.js';

const N = 250_000;

function flow(i: number): Conntrack {
  return i % 4 === 3
    ? { orig: { l3: AF_INET6, src: `fd00::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`, dst: 'fd00::1', proto: IPPROTO.UDP, sport: 5000, dport: 53 } }
    : { orig: { l3: AF_INET, src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '192.168.0.1', proto: IPPROTO.TCP, sport: 1024 + (i % 60000), dport: 443 } };
}

describe('cache perf sanity', () => {
  it(`${N} flows through NEW/UPDATE/DESTROY at the default HashLimit`, () => {
    let changes = 0;
    const cache = InternalCache.forConntracks({ clock: new FakeClock(), hashSize: 65536, onChange: () => { changes++; } });
    const t0 = performance.now();
    for (let i = 0; i < N; i++) cache.event(EVENT.NEW, flow(i));
    const t1 = performance.now();
    for (let i = 0; i < N; i++) cache.event(EVENT.UPDATE, flow(i));
    const t2 = performance.now();
    for (let i = 0; i < N; i++) {
      const o = cache.event(EVENT.DESTROY, flow(i));
      if (o) cache.release(o);
    }
    const t3 = performance.now();
    expect(changes).toBe(3 * N);
    expect(cache.size).toBe(0);
    expect(cache.stats).toMatchObject({ createOk: N, updateOk: N, deleteOk: N, noSpace: 0 });
    console.log(`internal cache ${N}: NEW ${(t1 - t0).toFixed(0)} ms, UPDATE ${(t2 - t1).toFixed(0)} ms, DESTROY ${(t3 - t2).toFixed(0)} ms (incl. building events)`);
  });

  it('filter check over mixed flows', () => {
    const f = compileFilter({
      protocol: { policy: 'accept', protos: [6, 17] },
      address: { policy: 'ignore', cidrs: ['10.255.0.0/16', '192.168.0.2', 'fd00::/120', 'fe80::/10'] },
    });
    const flows = Array.from({ length: 100_000 }, (_, i) => flow(i));
    const t0 = performance.now();
    let n = 0;
    for (const ct of flows) if (f.accepts(ct)) n++;
    const t1 = performance.now();
    expect(n).toBeGreaterThan(0);
    console.log(`filter: 100000 checks in ${(t1 - t0).toFixed(0)} ms`);
  });
});
