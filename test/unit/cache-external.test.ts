import { describe, expect, it, vi } from 'vitest';
import { AF_INET, EVENT, IPPROTO, TCP_STATE, type Conntrack, type Expectation } from '../../src/model/conntrack.js';
import { FakeClock } from '../../src/util/clock.js';
import { ExternalCache, commitTimeout } from '../../src/cache/external.js';
import { OBJ_STATE } from '../../src/cache/types.js';

const ct = (k: number, extra: Partial<Conntrack> = {}): Conntrack => ({
  orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.TCP, sport: 1000 + k, dport: 80 },
  ...extra,
});

describe('ExternalCache §5.1', () => {
  it('CT_NEW creates, or replaces an existing entry (destroyed + created)', () => {
    const clock = new FakeClock();
    const ext = new ExternalCache({ clock, hashSize: 16 });
    const a = ext.applyCt(EVENT.NEW, ct(1, { mark: 1, timeout: 100, tcp: { state: TCP_STATE.ESTABLISHED } }))!;
    expect(a.state).toBe(OBJ_STATE.NEW);
    clock.advance(2000);
    const b = ext.applyCt(EVENT.NEW, ct(1, { mark: 2 }))!;
    expect(b.value.mark).toBe(2);
    expect(b.value.timeout).toBeUndefined(); // replaced, not merged
    expect(b.value.tcp).toBeUndefined();
    expect(b.firstSeen).toBe(2000);
    expect(ext.ctSize).toBe(1);
    expect(ext.ctStats).toMatchObject({ active: 1, total: 1, createOk: 2, deleteOk: 1 });
  });

  it('CT_UPD overwrites present attributes only, or creates', () => {
    const clock = new FakeClock();
    const ext = new ExternalCache({ clock });
    const u = ext.applyCt(EVENT.UPDATE, ct(1, { mark: 1, status: 8, timeout: 100, tcp: { state: 1, wscaleOrig: 7 } }))!;
    expect(u.state).toBe(OBJ_STATE.NEW);
    expect(ext.ctStats.createOk).toBe(1);
    clock.advance(500);
    ext.applyCt(EVENT.UPDATE, ct(1, { status: 14, tcp: { state: TCP_STATE.ESTABLISHED } }));
    const v = ext.getCt(ct(1))!;
    expect(v.state).toBe(OBJ_STATE.ALIVE);
    expect(v.value).toMatchObject({ mark: 1, status: 14, timeout: 100, tcp: { state: TCP_STATE.ESTABLISHED, wscaleOrig: 7 } });
    expect(v.lastUpdate).toBe(500);
    expect(ext.ctStats).toMatchObject({ createOk: 1, updateOk: 1 });
  });

  it('CT_DEL removes if present; absent is counted as not found', () => {
    const ext = new ExternalCache({ clock: new FakeClock() });
    ext.applyCt(EVENT.NEW, ct(1));
    expect(ext.applyCt(EVENT.DESTROY, ct(1))).toBe(null);
    expect(ext.ctSize).toBe(0);
    ext.applyCt(EVENT.DESTROY, ct(1));
    expect(ext.ctStats).toMatchObject({ active: 0, total: 0, deleteOk: 1, deleteNotFound: 1 });
  });

  it('zones are distinct entries', () => {
    const ext = new ExternalCache({ clock: new FakeClock() });
    ext.applyCt(EVENT.NEW, ct(1));
    ext.applyCt(EVENT.NEW, ct(1, { zone: 5 }));
    expect(ext.ctSize).toBe(2);
    ext.applyCt(EVENT.DESTROY, ct(1, { zone: 5 }));
    expect([...ext.cts()].map((o) => o.value.zone)).toEqual([undefined]);
  });

  it('expectations alike, in their own table', () => {
    const ext = new ExternalCache({ clock: new FakeClock() });
    const master = ct(1).orig;
    const exp = (dport: number, extra: Partial<Expectation> = {}): Expectation => ({
      master, tuple: { ...master, sport: 0, dport }, mask: { ...master, sport: 0, dport: 0xffff }, ...extra,
    });
    ext.applyExp(EVENT.NEW, exp(5000, { timeout: 10, helper: 'ftp' }));
    ext.applyExp(EVENT.UPDATE, exp(5000, { timeout: 20 }));
    expect(ext.getExp(exp(5000))!.value).toMatchObject({ timeout: 20, helper: 'ftp' });
    ext.applyExp(EVENT.NEW, exp(5001));
    ext.applyExp(EVENT.DESTROY, exp(5000));
    expect(ext.expSize).toBe(1);
    expect(ext.ctSize).toBe(0);
    expect(ext.expCommitOrder().map((o) => o.value.tuple.dport)).toEqual([5001]);
  });

  it('commit order: entries without master first, then related; stable within each pass', () => {
    const ext = new ExternalCache({ clock: new FakeClock() });
    const master = ct(1).orig;
    ext.applyCt(EVENT.NEW, ct(10, { master }));
    ext.applyCt(EVENT.NEW, ct(1));
    ext.applyCt(EVENT.NEW, ct(11, { master }));
    ext.applyCt(EVENT.NEW, ct(2));
    ext.applyCt(EVENT.NEW, ct(3, { status: 1 })); // EXPECTED bit but no master: first pass, as conntrackd
    expect([...ext.commitOrder()].map((o) => o.value.orig.sport! - 1000)).toEqual([1, 2, 3, 10, 11]);
  });

  it('full: noSpace counted and reported, updates of existing entries still applied', () => {
    const onNoSpace = vi.fn();
    const ext = new ExternalCache({ clock: new FakeClock(), limit: 1, onNoSpace });
    ext.applyCt(EVENT.NEW, ct(1));
    expect(ext.applyCt(EVENT.NEW, ct(2))).toBe(null);
    expect(ext.applyCt(EVENT.UPDATE, ct(3))).toBe(null);
    expect(ext.applyCt(EVENT.UPDATE, ct(1, { mark: 4 }))!.value.mark).toBe(4);
    expect(ext.ctStats).toMatchObject({ noSpace: 2, createFailed: 2 });
    expect(onNoSpace).toHaveBeenCalledWith('external', 1, 2);
  });

  it('flush', () => {
    const ext = new ExternalCache({ clock: new FakeClock() });
    ext.applyCt(EVENT.NEW, ct(1));
    ext.applyCt(EVENT.NEW, ct(2));
    expect(ext.flushCt()).toBe(2);
    expect(ext.ctSize).toBe(0);
    expect([...ext.commitOrder()]).toEqual([]);
  });

  it('commitTimeout (§5.2)', () => {
    const clock = new FakeClock();
    const ext = new ExternalCache({ clock });
    const a = ext.applyCt(EVENT.NEW, ct(1, { timeout: 100 }))!;
    clock.advance(30_500);
    expect(commitTimeout(a, clock.now())).toBe(70);
    expect(commitTimeout(a, clock.now(), 180)).toBe(180);
    clock.advance(100_000);
    expect(commitTimeout(a, clock.now())).toBe(60);
    const b = ext.applyCt(EVENT.NEW, ct(2))!;
    expect(commitTimeout(b, clock.now())).toBeUndefined();
  });
});

describe('ExternalCache CT_UPD with shared (frozen) TcpInfo', () => {
  // Decoded messages share one frozen TcpInfo per state (wire/conntrack.ts): merging must not write into it.
  const shared = (state: number) => Object.freeze({ state });

  it('takes a state-only TcpInfo as it is, without writing into the entry\'s', () => {
    const ext = new ExternalCache({ clock: new FakeClock() });
    const est = shared(TCP_STATE.ESTABLISHED);
    ext.applyCt(EVENT.NEW, ct(1, { tcp: est }));
    const e = ext.applyCt(EVENT.UPDATE, ct(1, { tcp: shared(TCP_STATE.FIN_WAIT) }))!;
    expect(e.value.tcp).toEqual({ state: TCP_STATE.FIN_WAIT });
    expect(est.state).toBe(TCP_STATE.ESTABLISHED);
    // The very same object again (a repeated state) is fine too.
    const again = ext.applyCt(EVENT.UPDATE, ct(1, { tcp: e.value.tcp! }))!;
    expect(again.value.tcp).toEqual({ state: TCP_STATE.FIN_WAIT });
  });

  it('keeps window scales the entry has and the update lacks, in a private copy', () => {
    const ext = new ExternalCache({ clock: new FakeClock() });
    ext.applyCt(EVENT.NEW, ct(1, { tcp: { state: TCP_STATE.ESTABLISHED, wscaleOrig: 7, wscaleReply: 9 } }));
    const upd = shared(TCP_STATE.CLOSE_WAIT);
    const e = ext.applyCt(EVENT.UPDATE, ct(1, { tcp: upd }))!;
    expect(e.value.tcp).toEqual({ state: TCP_STATE.CLOSE_WAIT, wscaleOrig: 7, wscaleReply: 9 });
    expect(upd).toEqual({ state: TCP_STATE.CLOSE_WAIT });
    // And the other way round: a frozen state-only entry takes an update with scales.
    ext.applyCt(EVENT.NEW, ct(2, { tcp: shared(TCP_STATE.ESTABLISHED) }));
    const f = ext.applyCt(EVENT.UPDATE, ct(2, { tcp: { state: TCP_STATE.TIME_WAIT, wscaleOrig: 3 } }))!;
    expect(f.value.tcp).toEqual({ state: TCP_STATE.TIME_WAIT, wscaleOrig: 3 });
  });
});

describe('ExternalCache entry times', () => {
  it('keeps whole milliseconds (small integers, no boxed numbers per entry)', () => {
    const clock = new FakeClock();
    const ext = new ExternalCache({ clock });
    clock.advance(1234.75);
    const e = ext.applyCt(EVENT.NEW, ct(1, { timeout: 100 }))!;
    expect(e.firstSeen).toBe(1234);
    clock.advance(0.5);
    ext.applyCt(EVENT.UPDATE, ct(1, { timeout: 90 }));
    expect(e.lastUpdate).toBe(1234); // a snapshot
    const now = ext.getCt(ct(1))!;
    expect(now.lastUpdate).toBe(1235);
    expect(commitTimeout(now, 1235 + 10_000)).toBe(80);
  });
});
