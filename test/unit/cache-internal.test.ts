import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { AF_INET, EVENT, IPPROTO, TCP_STATE, type Conntrack, type Expectation } from '../../src/model/conntrack.js';
import { FakeClock } from '../../src/util/clock.js';
import { InternalCache, ORIGIN, mergeConntrack } from '../../src/cache/internal.js';
import { OBJ_STATE, type CacheObject } from '../../src/cache/types.js';

const ct = (k: number, extra: Partial<Conntrack> = {}): Conntrack => ({
  orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.TCP, sport: 1000 + k, dport: 80 },
  reply: { l3: AF_INET, src: '10.0.0.2', dst: '10.0.0.1', proto: IPPROTO.TCP, sport: 80, dport: 1000 + k },
  ...extra,
});

function setup(opts: { limit?: number; pinDead?: boolean } = {}) {
  const clock = new FakeClock();
  const changes: { obj: CacheObject<Conntrack>; state: number }[] = [];
  const onNoSpace = vi.fn();
  const cache = InternalCache.forConntracks({
    clock, hashSize: 16, onNoSpace,
    onChange: (obj) => changes.push({ obj, state: obj.state }),
    ...opts,
  });
  return { clock, cache, changes, onNoSpace };
}

const visibleKeys = (c: InternalCache<Conntrack>) => [...c.visible()].map((o) => o.value.orig.sport! - 1000);

describe('InternalCache state machine', () => {
  it('NEW → NEW, UPDATE → ALIVE (merged), DESTROY → DEAD pinned until release()', () => {
    const { clock, cache, changes } = setup();
    const a = cache.event(EVENT.NEW, ct(1, { status: 8, tcp: { state: TCP_STATE.SYN_SENT }, mark: 3 }))!;
    expect(a.state).toBe(OBJ_STATE.NEW);
    expect(a.kind).toBe('ct');
    clock.advance(1000);
    const a2 = cache.event(EVENT.UPDATE, ct(1, { status: 14, tcp: { state: TCP_STATE.ESTABLISHED } }))!;
    expect(a2).toBe(a); // same object for the life of the flow
    expect(a.state).toBe(OBJ_STATE.ALIVE);
    expect(a.value.tcp!.state).toBe(TCP_STATE.ESTABLISHED);
    expect(a.value.status).toBe(14);
    expect(a.value.mark).toBe(3); // absent in the update: kept
    expect(a.lastUpdate).toBe(1000);
    expect(a.firstSeen).toBe(0);

    cache.event(EVENT.DESTROY, ct(1));
    expect(a.state).toBe(OBJ_STATE.DEAD);
    expect(a.pins).toBe(1);
    expect(visibleKeys(cache)).toEqual([]);
    expect(cache.get(ct(1))).toBe(null);
    expect(cache.lookup(ct(1))).toBe(a);
    expect([...cache.all()]).toEqual([a]); // bulk sends still see it (CT_DEL)
    expect(cache.stats).toMatchObject({ active: 0, total: 1, createOk: 1, updateOk: 1, deleteOk: 1 });

    // A second DESTROY changes nothing
    cache.event(EVENT.DESTROY, ct(1));
    expect(changes.map((c) => c.state)).toEqual([OBJ_STATE.NEW, OBJ_STATE.ALIVE, OBJ_STATE.DEAD]);

    cache.release(a);
    expect(cache.size).toBe(0);
    expect(cache.lookup(ct(1))).toBe(null);
    cache.release(a); // no-op
    expect(cache.stats).toMatchObject({ active: 0, total: 0, deleteOk: 1 });
  });

  it('release() of a live object is a no-op', () => {
    const { cache } = setup();
    const a = cache.event(EVENT.NEW, ct(1))!;
    cache.release(a);
    expect(cache.get(ct(1))).toBe(a);
  });

  it('UPDATE of an unknown flow creates it (NEW); DESTROY of an unknown flow is counted, not reported', () => {
    const { cache, changes } = setup();
    const a = cache.event(EVENT.UPDATE, ct(2))!;
    expect(a.state).toBe(OBJ_STATE.NEW);
    expect(cache.event(EVENT.DESTROY, ct(3))).toBe(null);
    expect(cache.stats.deleteNotFound).toBe(1);
    expect(changes.length).toBe(1);
  });

  it('a flow re-created while DEAD revives the same object (NEW, unpinned)', () => {
    const { clock, cache, changes } = setup();
    const a = cache.event(EVENT.NEW, ct(1))!;
    cache.event(EVENT.DESTROY, ct(1));
    clock.advance(5000);
    const b = cache.event(EVENT.NEW, ct(1, { mark: 9 }))!;
    expect(b).toBe(a);
    expect(b.state).toBe(OBJ_STATE.NEW);
    expect(b.pins).toBe(0);
    expect(b.firstSeen).toBe(5000);
    expect(b.value.mark).toBe(9);
    // the late release for the old CT_DEL does not remove the new flow
    cache.release(a);
    expect(cache.get(ct(1))).toBe(a);
    expect(changes.map((c) => c.state)).toEqual([OBJ_STATE.NEW, OBJ_STATE.DEAD, OBJ_STATE.NEW]);
    // UPDATE on DEAD also re-creates
    cache.event(EVENT.DESTROY, ct(1));
    expect(cache.event(EVENT.UPDATE, ct(1))!.state).toBe(OBJ_STATE.NEW);
    expect(cache.stats).toMatchObject({ active: 1, total: 1, createOk: 3, deleteOk: 2 });
  });

  it('NEW for a live identity replaces it in place (destroyed + created)', () => {
    const { cache } = setup();
    const a = cache.event(EVENT.NEW, ct(1, { mark: 1 }))!;
    cache.event(EVENT.UPDATE, ct(1));
    const b = cache.event(EVENT.NEW, ct(1, { mark: 2 }))!;
    expect(b).toBe(a);
    expect(b.state).toBe(OBJ_STATE.NEW);
    expect(b.value.mark).toBe(2);
    expect(cache.stats).toMatchObject({ active: 1, total: 1, createOk: 2, deleteOk: 1 });
  });

  it('origins: COMMIT stored silently, FLUSH destroy drops without report, INJECT ignored', () => {
    const { cache, changes } = setup();
    const a = cache.event(EVENT.NEW, ct(1), ORIGIN.COMMIT)!;
    expect(a.state).toBe(OBJ_STATE.NEW);
    expect(cache.event(EVENT.NEW, ct(2), ORIGIN.INJECT)).toBe(null);
    expect(cache.size).toBe(1);
    cache.event(EVENT.DESTROY, ct(1), ORIGIN.FLUSH);
    expect(cache.size).toBe(0);
    expect(changes).toEqual([]);
  });

  it('without a sync layer DEAD objects are not kept', () => {
    const clock = new FakeClock();
    const cache = InternalCache.forConntracks({ clock });
    cache.event(EVENT.NEW, ct(1));
    cache.event(EVENT.DESTROY, ct(1));
    expect(cache.size).toBe(0);
  });

  it('pinDead: false reports DEAD then removes at once', () => {
    const { cache, changes } = setup({ pinDead: false });
    cache.event(EVENT.NEW, ct(1));
    cache.event(EVENT.DESTROY, ct(1));
    expect(cache.size).toBe(0);
    expect(changes.at(-1)!.state).toBe(OBJ_STATE.DEAD);
  });

  it('release from inside onChange (a sync layer that drops at once) is handled', () => {
    const clock = new FakeClock();
    const cache: InternalCache<Conntrack> = InternalCache.forConntracks({
      clock, onChange: (o) => { if (o.state === OBJ_STATE.DEAD) cache.release(o); },
    });
    cache.event(EVENT.NEW, ct(1));
    cache.event(EVENT.DESTROY, ct(1));
    expect(cache.size).toBe(0);
  });

  it('HashLimit: noSpace counted and reported, existing entries still updated, DEAD pinned ones hold their slot', () => {
    const { cache, changes, onNoSpace } = setup({ limit: 2 });
    cache.event(EVENT.NEW, ct(1));
    cache.event(EVENT.NEW, ct(2));
    expect(cache.event(EVENT.NEW, ct(3))).toBe(null);
    expect(cache.event(EVENT.UPDATE, ct(4))).toBe(null);
    expect(cache.stats).toMatchObject({ noSpace: 2, createFailed: 2, createOk: 2 });
    expect(onNoSpace).toHaveBeenCalledTimes(2);
    expect(onNoSpace).toHaveBeenCalledWith('internal', 2, 2);
    const a = cache.event(EVENT.UPDATE, ct(1, { mark: 5 }))!;
    expect(a.state).toBe(OBJ_STATE.ALIVE);
    expect(a.value.mark).toBe(5);
    expect(changes.length).toBe(3);
    cache.event(EVENT.DESTROY, ct(2));
    expect(cache.event(EVENT.NEW, ct(3))).toBe(null); // the DEAD one still occupies its slot
    cache.release(cache.lookup(ct(2))!);
    expect(cache.event(EVENT.NEW, ct(3))).not.toBe(null);
    expect(visibleKeys(cache)).toEqual([1, 3]);
  });

  it('flush empties; later release of a flushed object is a no-op', () => {
    const { cache } = setup();
    cache.event(EVENT.NEW, ct(1));
    const b = cache.event(EVENT.NEW, ct(2))!;
    cache.event(EVENT.DESTROY, ct(2));
    expect(cache.flush()).toBe(2);
    expect(cache.size).toBe(0);
    cache.release(b);
    expect(cache.stats).toMatchObject({ active: 0, total: 0 });
    expect(cache.event(EVENT.NEW, ct(2))).not.toBe(null);
  });

  it('populate (-R) stores without reporting', () => {
    const { cache, changes } = setup();
    cache.populate(ct(1));
    cache.populate(ct(1, { mark: 4 }));
    expect(cache.get(ct(1))!.value.mark).toBe(4);
    expect(changes).toEqual([]);
  });

  it('expectations cache', () => {
    const clock = new FakeClock();
    const changes: CacheObject<Expectation>[] = [];
    const cache = InternalCache.forExpectations({ clock, onChange: (o) => changes.push(o) });
    const master = ct(1).orig;
    const exp = (dport: number, timeout?: number): Expectation => ({
      master, tuple: { ...master, sport: 0, dport }, mask: { ...master, sport: 0, dport: 0xffff },
      ...(timeout !== undefined ? { timeout } : {}),
    });
    const a = cache.event(EVENT.NEW, exp(5000, 10))!;
    expect(a.kind).toBe('exp');
    cache.event(EVENT.NEW, exp(5001));
    cache.event(EVENT.UPDATE, exp(5000, 20));
    expect(a.value.timeout).toBe(20);
    cache.event(EVENT.DESTROY, exp(5000));
    expect([...cache.visible()].length).toBe(1);
    expect(a.state).toBe(OBJ_STATE.DEAD);
  });
});

describe('InternalCache with the sync layer pin protocol', () => {
  // Mirrors src/sync/engine.ts: pin on first enqueue; when done, unpin first,
  // then release(obj) if it is DEAD.
  function withSync() {
    const clock = new FakeClock();
    const held = new Set<CacheObject<Conntrack>>();
    const dropped: CacheObject<Conntrack>[] = [];
    const cache: InternalCache<Conntrack> = InternalCache.forConntracks({
      clock,
      onChange: (o) => {
        if (!held.has(o)) {
          held.add(o);
          o.pins++;
        }
      },
      onDrop: (o) => {
        if (held.delete(o)) o.pins--; // sync.forget(obj)
        dropped.push(o);
      },
    });
    const ack = (o: CacheObject<Conntrack>) => {
      if (!held.delete(o)) return;
      o.pins--;
      if (o.state === OBJ_STATE.DEAD) cache.release(o);
    };
    return { cache, held, ack, dropped };
  }

  it('NEW acked, then DESTROY: kept until the CT_DEL is acked', () => {
    const { cache, ack } = withSync();
    const a = cache.event(EVENT.NEW, ct(1))!;
    ack(a);
    expect(a.pins).toBe(0);
    cache.event(EVENT.DESTROY, ct(1));
    expect(a.pins).toBe(2); // the sync layer's and the cache's
    expect(cache.size).toBe(1);
    ack(a);
    expect(cache.size).toBe(0);
    expect(a.pins).toBe(0);
  });

  it('NEW and DESTROY before any ack', () => {
    const { cache, ack } = withSync();
    const a = cache.event(EVENT.NEW, ct(1))!;
    cache.event(EVENT.DESTROY, ct(1));
    expect(cache.size).toBe(1);
    ack(a);
    expect(cache.size).toBe(0);
  });

  it('re-created while its CT_DEL is unacked: stays, pins stay balanced', () => {
    const { cache, ack, held } = withSync();
    const a = cache.event(EVENT.NEW, ct(1))!;
    cache.event(EVENT.DESTROY, ct(1));
    cache.event(EVENT.NEW, ct(1));
    expect(a.pins).toBe(1); // only the sync layer's
    ack(a);
    expect(a.pins).toBe(0);
    expect(cache.get(ct(1))).toBe(a);
    cache.event(EVENT.DESTROY, ct(1));
    ack(a);
    expect(cache.size).toBe(0);
    expect(held.size).toBe(0);
  });

  it('flush and FLUSH-origin destroys hand objects to onDrop (sync.forget)', () => {
    const { cache, held, dropped } = withSync();
    const a = cache.event(EVENT.NEW, ct(1))!;
    const b = cache.event(EVENT.NEW, ct(2))!;
    cache.event(EVENT.DESTROY, ct(2));
    cache.event(EVENT.DESTROY, ct(1), ORIGIN.FLUSH);
    expect(dropped).toEqual([a]);
    cache.flush();
    expect(dropped).toEqual([a, b]);
    expect(held.size).toBe(0);
    expect(a.pins + b.pins).toBe(0);
  });
});

describe('InternalCache.reconcile', () => {
  it('absent → DEAD (reported), new → NEW, changed → ALIVE, unchanged untouched', () => {
    const { cache, changes } = setup();
    cache.event(EVENT.NEW, ct(1, { status: 8 }));
    cache.event(EVENT.NEW, ct(2, { status: 8 }));
    cache.event(EVENT.NEW, ct(3, { status: 8, timeout: 100 }));
    changes.length = 0;
    const r = cache.reconcile([ct(2, { status: 14 }), ct(3, { status: 8, timeout: 90 }), ct(4, { status: 8 })]);
    expect(r).toEqual({ created: 1, updated: 1, unchanged: 1, deleted: 1, failed: 0 });
    expect(changes.map((c) => [c.obj.value.orig.sport! - 1000, c.state])).toEqual([
      [2, OBJ_STATE.ALIVE], [4, OBJ_STATE.NEW], [1, OBJ_STATE.DEAD],
    ]);
    expect(visibleKeys(cache)).toEqual([2, 3, 4]);
    expect(cache.get(ct(3))!.value.timeout).toBe(90); // newest snapshot kept even when not reported
  });

  it('reportAll re-sends unchanged entries too', () => {
    const { cache, changes } = setup();
    cache.event(EVENT.NEW, ct(1, { status: 8 }));
    changes.length = 0;
    const r = cache.reconcile([ct(1, { status: 8 })], { reportAll: true });
    expect(r.updated).toBe(1);
    expect(changes.map((c) => c.state)).toEqual([OBJ_STATE.ALIVE]);
  });

  it('a different kernel id under the same tuple is a new flow', () => {
    const { cache, changes } = setup();
    cache.event(EVENT.NEW, ct(1, { id: 1, status: 8 }));
    changes.length = 0;
    cache.reconcile([ct(1, { id: 2, status: 8 })]);
    expect(changes.map((c) => c.state)).toEqual([OBJ_STATE.NEW]);
  });

  // Random kernel histories with lost events; after reconcile and a transmit
  // the peer (fed only from onChange'd objects, read at transmit time as the
  // sync layer does) must equal the kernel, and the cache's visible set must
  // equal the dump.
  it('converges with the kernel after lost events (property)', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('new' as const), k: fc.nat(7), s: fc.nat(3), lost: fc.boolean() }),
      fc.record({ t: fc.constant('upd' as const), k: fc.nat(7), s: fc.nat(3), lost: fc.boolean() }),
      fc.record({ t: fc.constant('del' as const), k: fc.nat(7), s: fc.nat(3), lost: fc.boolean() }),
      fc.record({ t: fc.constant('tx' as const), k: fc.nat(7), s: fc.nat(3), lost: fc.boolean() }),
      fc.record({ t: fc.constant('reconcile' as const), k: fc.nat(7), s: fc.nat(3), lost: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const clock = new FakeClock();
        // A sync layer following src/sync/engine.ts's pin protocol.
        const pending = new Set<CacheObject<Conntrack>>();
        const cache: InternalCache<Conntrack> = InternalCache.forConntracks({
          clock, hashSize: 16,
          onChange: (o) => {
            if (!pending.has(o)) o.pins++;
            pending.add(o);
          },
        });
        const kernel = new Map<number, number>();
        const peer = new Map<number, number>();
        const key = (o: CacheObject<Conntrack>) => o.value.orig.sport! - 1000;
        const transmit = () => {
          for (const o of pending) {
            if (o.state === OBJ_STATE.DEAD) peer.delete(key(o));
            else peer.set(key(o), o.value.status!);
          }
          const sent = [...pending];
          pending.clear();
          for (const o of sent) {
            o.pins--; // acked: the sync layer unpins, then hands DEAD ones back
            if (o.state === OBJ_STATE.DEAD) cache.release(o);
          }
        };
        const strict = () => {
          const vis = new Map([...cache.visible()].map((o) => [key(o), o.value.status!]));
          expect(vis).toEqual(kernel);
          expect(cache.stats.active).toBe(vis.size);
          expect(cache.stats.total).toBe(cache.size);
        };
        let lostAny = false;
        for (const o of ops) {
          clock.advance(10);
          switch (o.t) {
            case 'new':
              if (kernel.has(o.k)) break;
              kernel.set(o.k, o.s);
              if (o.lost) lostAny = true;
              else cache.event(EVENT.NEW, ct(o.k, { status: o.s }));
              break;
            case 'upd':
              if (!kernel.has(o.k)) break;
              kernel.set(o.k, o.s);
              if (o.lost) lostAny = true;
              else cache.event(EVENT.UPDATE, ct(o.k, { status: o.s }));
              break;
            case 'del':
              if (!kernel.has(o.k)) break;
              kernel.delete(o.k);
              if (o.lost) lostAny = true;
              else cache.event(EVENT.DESTROY, ct(o.k));
              break;
            case 'tx':
              transmit();
              break;
            case 'reconcile':
              cache.reconcile([...kernel].map(([k, s]) => ct(k, { status: s })));
              lostAny = false;
              strict();
              break;
          }
          if (!lostAny) strict();
        }
        cache.reconcile([...kernel].map(([k, s]) => ct(k, { status: s })));
        strict();
        transmit();
        expect(peer).toEqual(kernel);
        // every DEAD object was released after its ack: nothing left behind, no stray pins
        expect(cache.size).toBe(kernel.size);
        for (const o of cache.all()) expect(o.pins).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('mergeConntrack and shared decoded objects', () => {
  it('merges a partial TcpInfo into a frozen shared one without touching it', () => {
    const shared = Object.freeze({ state: 3, wscaleOrig: 7, wscaleReply: 7, flagsOrig: 10, flagsMaskOrig: 0, flagsReply: 10, flagsMaskReply: 0 });
    const dst = ct(1, { tcp: shared });
    mergeConntrack(dst, ct(1, { tcp: { state: 4 } }));
    expect(dst.tcp).toEqual({ ...shared, state: 4 });
    expect(shared.state).toBe(3);
    // A complete TcpInfo replaces the cached one.
    const full = { state: 5, wscaleOrig: 1, wscaleReply: 2, flagsOrig: 3, flagsMaskOrig: 0, flagsReply: 4, flagsMaskReply: 0 };
    mergeConntrack(dst, ct(1, { tcp: full }));
    expect(dst.tcp).toBe(full);
    // An unshared one (a peer's) is merged in place, as before.
    mergeConntrack(dst, ct(1, { tcp: { state: 6 } }));
    expect(dst.tcp).toBe(full);
    expect(full.state).toBe(6);
  });
});
