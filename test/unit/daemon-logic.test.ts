// The daemon's glue with every seam faked (kernel table, kernel events, sync
// link) and the real caches, FTFW engine and wire codec in between: who sends
// what, which events are ours, what a commit writes, what an overrun repairs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createFakePair } from '../../src/channel/fake.js';
import { Daemon } from '../../src/daemon/daemon.js';
import type { ConntrackTable, KernelEventHandler, KernelEventSource, WriteResult } from '../../src/daemon/ports.js';
import { AF_INET, EVENT, IPS, IPPROTO, type Conntrack, type EventKind, type Expectation } from '../../src/model/conntrack.js';
import { silentLogger } from '../../src/log/logger.js';

const keyOf = (ct: Conntrack): string => `${ct.orig.src}:${ct.orig.sport}>${ct.orig.dst}:${ct.orig.dport}/${ct.orig.proto}`;

class FakeTable implements ConntrackTable {
  readonly portId = 4242;
  readonly rows = new Map<string, Conntrack>();
  readonly writes: { op: string; entries: Conntrack[] }[] = [];

  async dump(): Promise<Conntrack[]> {
    return [...this.rows.values()].map((c) => structuredClone(c));
  }

  private write(op: string, entries: Conntrack[], apply: (ct: Conntrack) => void): WriteResult {
    this.writes.push({ op, entries });
    entries.forEach(apply);
    return { ok: entries.length, failed: [] };
  }

  async createOrReplace(entries: Conntrack[]): Promise<WriteResult> {
    return this.write('create', entries, (ct) => this.rows.set(keyOf(ct), ct));
  }

  async updateOrCreate(entries: Conntrack[]): Promise<WriteResult> {
    return this.write('update', entries, (ct) => this.rows.set(keyOf(ct), ct));
  }

  async remove(entries: Conntrack[]): Promise<WriteResult> {
    return this.write('remove', entries, (ct) => this.rows.delete(keyOf(ct)));
  }

  async dumpExpectations(): Promise<Expectation[]> {
    return [];
  }

  async createExpectations(entries: Expectation[]): Promise<WriteResult> {
    return { ok: entries.length, failed: [] };
  }

  async removeExpectations(entries: Expectation[]): Promise<WriteResult> {
    return { ok: entries.length, failed: [] };
  }

  close(): void {}
}

class FakeEvents implements KernelEventSource {
  handler: KernelEventHandler | null = null;
  /** Like the kernel with the NEW group left: NEW events are not delivered. */
  newMuted = false;
  mutes = 0;

  muteNew(): boolean {
    if (this.newMuted) return false;
    this.newMuted = true;
    this.mutes++;
    return true;
  }

  unmuteNew(): void {
    this.newMuted = false;
  }

  start(handler: KernelEventHandler): void {
    this.handler = handler;
  }

  stop(): void {
    this.handler = null;
  }

  stats() {
    return { events: 0, overruns: 0, decodeErrors: 0, bufferSize: 0 };
  }

  emit(kind: EventKind, ct: Conntrack, portid = 0): void {
    if (kind === EVENT.NEW && this.newMuted) return;
    this.handler!.onConntrack(kind, structuredClone(ct), portid);
  }
}

function flow(sport: number, src = '10.99.0.2', extra: Partial<Conntrack> = {}): Conntrack {
  return {
    orig: { l3: AF_INET, src, dst: '10.99.0.1', proto: IPPROTO.TCP, sport, dport: 80 },
    reply: { l3: AF_INET, src: '10.99.0.1', dst: src, proto: IPPROTO.TCP, sport: 80, dport: sport },
    status: IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED,
    timeout: 300,
    mark: 7,
    tcp: { state: 3 },
    ...extra,
  };
}

function config(dir: string, name: string, modeExtra = '', tail = '', mode = 'FTFW'): string {
  return `Sync {
  Mode ${mode} {
    ${modeExtra}
  }
  UDP { IPv4_address 192.0.2.1 IPv4_Destination_Address 192.0.2.2 Port 3780 Interface fake0 }
}
General {
  LockFile ${dir}/${name}.lock
  UNIX { Path ${dir}/${name}.ctl }
  Filter From Userspace { Address Ignore { IPv4_address 127.0.0.1 IPv4_address 10.66.0.0/16 } }
}
${tail}`;
}

interface Node { d: Daemon; table: FakeTable; events: FakeEvents }

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 300; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe('daemon glue (fake kernel, fake link, real caches and FTFW)', () => {
  let dir = '';
  let nodes: Node[] = [];

  async function pair(modeExtraB = '', tailA = '', mode = 'FTFW', modeExtraA = ''): Promise<[Node, Node]> {
    dir = mkdtempSync(join(tmpdir(), 'ctsync-daemon-'));
    const [ca, cb] = createFakePair();
    const mk = (name: string, ch: typeof ca, extra: string, tail = ''): Node => {
      const { config: cfg } = parseConfig(config(dir, name, extra, tail, mode), `${name}.conf`);
      const table = new FakeTable();
      const events = new FakeEvents();
      return { d: new Daemon(cfg, { log: silentLogger, table, events, channel: ch }), table, events };
    };
    const a = mk('a', ca, modeExtraA, tailA);
    const b = mk('b', cb, modeExtraB);
    await a.d.start();
    await b.d.start();
    nodes = [a, b];
    return [a, b];
  }

  afterEach(async () => {
    for (const n of nodes) await n.d.stop();
    nodes = [];
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('replicates kernel events to the peer external cache, deletions included', async () => {
    const [a, b] = await pair();
    a.events.emit(EVENT.NEW, flow(1000));
    a.events.emit(EVENT.NEW, flow(1001));
    await until(() => b.d.external.ctSize === 2, 'two entries at B');
    a.events.emit(EVENT.DESTROY, flow(1000));
    await until(() => b.d.external.ctSize === 1, 'deletion at B');
    expect([...b.d.external.cts()][0]!.value.orig.sport).toBe(1001);
  });

  it('does not replicate filtered flows, nor events caused by its own commit', async () => {
    const [a, b] = await pair();
    a.events.emit(EVENT.NEW, flow(2000, '10.66.1.1'));
    a.events.emit(EVENT.NEW, flow(2001), a.table.portId);
    a.events.emit(EVENT.NEW, flow(2002));
    await until(() => b.d.external.ctSize === 1, 'one entry at B');
    expect([...b.d.external.cts()].map((o) => o.value.orig.sport)).toEqual([2002]);
    expect(a.d.kernel.eventsFiltered).toBe(1);
    // The committed entry is mirrored locally (a later -B sends it) but was not sent.
    expect(a.d.internal.activeCount).toBe(2);
  });

  it('commits the external cache: aged timeout, EXPECTED cleared, TCP window checks relaxed', async () => {
    const [a, b] = await pair();
    a.events.emit(EVENT.NEW, flow(3000, '10.99.0.2', { status: IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED | IPS.EXPECTED }));
    await until(() => b.d.external.ctSize === 1, 'entry at B');
    const report = await b.d.commit();
    expect(report).toMatchObject({ committed: 1, failed: 0 });
    const [w] = b.table.writes.filter((x) => x.op === 'create');
    const ct = w!.entries[0]!;
    expect(ct.status! & IPS.EXPECTED).toBe(0);
    expect(ct.timeout).toBeGreaterThan(290);
    expect(ct.timeout).toBeLessThanOrEqual(300);
    expect(ct.tcp).toMatchObject({ flagsOrig: 0x08, flagsReply: 0x08, flagsMaskOrig: 0x08, flagsMaskReply: 0x08 });
  });

  it('a large commit mutes NEW events, then a dump repairs the cache: committed entries mirrored unsent, window traffic replicated', async () => {
    const [a, b] = await pair();
    const N = 1500; // above the daemon's mute threshold
    for (let i = 0; i < N; i++) a.events.emit(EVENT.NEW, flow(10_000 + i, '10.98.0.2'));
    // A local flow on B before the failover, known to both sides.
    const local = flow(9000, '10.97.0.2');
    b.table.rows.set(keyOf(local), local);
    b.events.emit(EVENT.NEW, local);
    await until(() => b.d.external.ctSize === N && a.d.external.ctSize === 1, 'peer entries at B, local flow at A');
    // Real traffic while the commit runs: a new flow (its NEW is lost while muted), the local flow ends.
    const fresh = flow(9001, '10.97.0.3');
    const create = b.table.createOrReplace.bind(b.table);
    let first = true;
    b.table.createOrReplace = async (entries) => {
      if (first) {
        first = false;
        b.table.rows.set(keyOf(fresh), fresh);
        b.events.emit(EVENT.NEW, fresh);
        b.table.rows.delete(keyOf(local));
        b.events.emit(EVENT.DESTROY, local);
      }
      return create(entries);
    };
    const report = await b.d.commit();
    expect(report).toMatchObject({ committed: N, failed: 0 });
    expect(b.events.mutes).toBe(1);
    expect(b.events.newMuted).toBe(false);
    // The internal cache equals the kernel table once the queued resync ran.
    await b.d.serialize(async () => undefined);
    const visible = [...b.d.internal.visible()].map((o) => keyOf(o.value)).sort();
    expect(visible).toEqual([...b.table.rows.keys()].sort());
    expect(visible).toHaveLength(N + 1);
    // A learnt the window's new flow and the local flow's end, and got none of the committed entries back.
    await until(() => a.d.external.getCt(fresh) !== null && a.d.external.getCt(local) === null, 'window traffic at A');
    await new Promise((r) => setTimeout(r, 100));
    expect(a.d.external.ctSize).toBe(1);
  });

  it('a large commit that fails half-way still unmutes and resyncs what reached the kernel', async () => {
    const [a, b] = await pair();
    for (let i = 0; i < 3000; i++) a.events.emit(EVENT.NEW, flow(20_000 + i, '10.96.0.2'));
    await until(() => b.d.external.ctSize === 3000, 'peer entries at B');
    const create = b.table.createOrReplace.bind(b.table);
    let calls = 0;
    b.table.createOrReplace = async (entries) => {
      if (++calls === 2) throw new Error('netlink gone');
      return create(entries);
    };
    await expect(b.d.commit()).rejects.toThrow('netlink gone');
    expect(b.events.newMuted).toBe(false);
    await b.d.serialize(async () => undefined);
    expect(b.table.rows.size).toBeGreaterThan(0);
    expect(b.d.internal.activeCount).toBe(b.table.rows.size);
  });

  it('a small commit keeps its NEW events (a dump would cost more)', async () => {
    const [a, b] = await pair();
    a.events.emit(EVENT.NEW, flow(9100));
    await until(() => b.d.external.ctSize === 1, 'entry at B');
    await b.d.commit();
    expect(b.events.mutes).toBe(0);
  });

  it('with DisableExternalCache, peer entries go straight into the kernel', async () => {
    const [a, b] = await pair('DisableExternalCache on');
    a.events.emit(EVENT.NEW, flow(4000));
    await until(() => b.table.rows.size === 1, 'entry in B kernel');
    expect(b.d.external.ctSize).toBe(0);
    a.events.emit(EVENT.DESTROY, flow(4000));
    await until(() => b.table.rows.size === 0, 'entry removed from B kernel');
  });

  it('after an overrun, dumps and reconciles: the peer learns what the lost events said', async () => {
    const [a, b] = await pair();
    a.events.emit(EVENT.NEW, flow(5000));
    a.table.rows.set(keyOf(flow(5000)), flow(5000));
    await until(() => b.d.external.ctSize === 1, 'entry at B');
    // Events lost: 5000 went away, 5001 and 5002 appeared; only the overrun signal arrives.
    a.table.rows.clear();
    a.table.rows.set(keyOf(flow(5001)), flow(5001));
    a.table.rows.set(keyOf(flow(5002)), flow(5002));
    a.events.handler!.onOverrun();
    await until(() => b.d.external.ctSize === 2 && !b.d.external.getCt(flow(5000)), 'B reconciled');
    expect(a.d.kernel.overruns).toBe(1);
    expect(a.d.kernel.resyncWithKernel).toBeGreaterThanOrEqual(2);
  });

  it('a bulk send (-B) refills a flushed peer', async () => {
    const [a, b] = await pair();
    for (let i = 0; i < 50; i++) a.events.emit(EVENT.NEW, flow(6000 + i));
    await until(() => b.d.external.ctSize === 50, '50 entries at B');
    b.d.flushExternal();
    expect(b.d.external.ctSize).toBe(0);
    expect(a.d.bulkSend()).toBe(50);
    await until(() => b.d.external.ctSize === 50, 'B refilled');
  });

  it('Ctsync { SendWindow } reaches the FTFW engine (default 4096, 0 = no limit, at least twice ACKWindowSize)', async () => {
    const windowOf = (d: Daemon): number => (d.sync as unknown as { sendWindow: number }).sendWindow;
    for (const [tail, want] of [['', 4096], ['Ctsync { SendWindow 1000 }', 1000], ['Ctsync { SendWindow 0 }', Infinity],
      ['Ctsync { SendWindow 100 }', 600]] as const) {
      const [a, b] = await pair('', tail);
      expect(windowOf(a.d)).toBe(want);
      await a.d.stop();
      await b.d.stop();
    }
  });

  it('reconciles periodically (Ctsync { ReconcileInterval }): a change no event reported reaches the peer', async () => {
    const [a, b] = await pair('', 'Ctsync { ReconcileInterval 1 }');
    // An entry the kernel has but no event ever announced (e.g. created before anyone listened).
    a.table.rows.set(keyOf(flow(7000)), flow(7000));
    await until(() => b.d.external.ctSize === 1, 'periodic reconcile replicated the silent entry');
    expect(a.d.kernel.resyncWithKernel).toBeGreaterThanOrEqual(2);
  }, 10_000);

  it('NOTRACK with DisableInternalCache sends events straight through and bulk-sends the kernel table', async () => {
    const [a, b] = await pair('', '', 'NOTRACK', 'DisableInternalCache on');
    a.events.emit(EVENT.NEW, flow(8000));
    await until(() => b.d.external.ctSize === 1, 'entry at B');
    expect(a.d.internal.activeCount).toBe(0);
    a.table.rows.set(keyOf(flow(8001)), flow(8001));
    a.table.rows.set(keyOf(flow(8002)), flow(8002));
    a.d.bulkSend();
    await until(() => b.d.external.ctSize === 3, 'bulk from the kernel table at B');
    a.events.emit(EVENT.DESTROY, flow(8000));
    await until(() => b.d.external.ctSize === 2, 'deletion at B');
  });
});
