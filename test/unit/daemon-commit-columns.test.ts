// The commit writes entries the external cache keeps in columns straight from
// their numbers (commitExternal). It must send the kernel exactly what the
// object way sends (toKernelEntry + the create writer), entry for entry and in
// the same order, whatever the entries hold and whatever the commit options.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExternalCache } from '../../src/cache/external.js';
import { commitConntracks, commitExternal, type CommitOptions } from '../../src/daemon/commit.js';
import type { ConntrackTable, WriteResult } from '../../src/daemon/ports.js';
import { AF_INET, AF_INET6, EVENT, IPPROTO, type Conntrack } from '../../src/model/conntrack.js';
import { writeCreate } from '../../src/netlink/ct-write-fast.js';
import { NlWriter } from '../../src/netlink/nlattr.js';
import { FakeClock } from '../../src/util/clock.js';
import { MSG, encodeConntrackMsg } from '../../src/wire/index.js';

/** Records the create attributes of every entry it is given, as hex. */
class RecordingTable implements Partial<ConntrackTable> {
  readonly written: string[] = [];
  readonly portId = 0;
  private readonly w = new NlWriter(4096);

  constructor(encoded: boolean, private readonly existing = new Set<string>()) {
    // Without the encoded way: shadow the method, as a table that lacks it.
    if (!encoded) Object.defineProperty(this, 'createOrReplaceEncoded', { value: undefined });
  }

  async createOrReplace(entries: Conntrack[]): Promise<WriteResult> {
    for (const ct of entries) this.record((w) => writeCreate(w, ct));
    return { ok: entries.length, failed: [] };
  }

  async createOrReplaceEncoded<T>(items: readonly T[], _family: (item: T) => number,
    encode: (w: NlWriter, item: T) => void, toConntrack: (item: T) => Conntrack | null): Promise<WriteResult> {
    for (const it of items) {
      const hex = this.record((w) => encode(w, it));
      // A clash goes the object way, as the netlink client does: it must give the same entry.
      if (this.existing.has(hex)) {
        const ct = toConntrack(it)!;
        const w = new NlWriter(512);
        writeCreate(w, ct);
        expect(w.view().toString('hex')).toBe(hex);
      }
    }
    return { ok: items.length, failed: [] };
  }

  private record(write: (w: NlWriter) => void): string {
    this.w.reset();
    write(this.w);
    const hex = this.w.view().toString('hex');
    this.written.push(hex);
    return hex;
  }
}

const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });

const entry: fc.Arbitrary<Conntrack> = fc.record({
  v6: fc.constantFrom(false, false, false, false, true),
  a: fc.integer({ min: 0, max: 300 }),
  proto: fc.constantFrom(IPPROTO.TCP, IPPROTO.TCP, IPPROTO.UDP, IPPROTO.UDPLITE, IPPROTO.ICMP),
  status: opt(fc.integer({ min: 0, max: 0xffffffff })),
  timeout: opt(fc.integer({ min: 0, max: 100_000 })),
  mark: opt(fc.integer({ min: 0, max: 0xffffffff })),
  tcp: opt(fc.integer({ min: 0, max: 9 })),
  zone: opt(fc.integer({ min: 0, max: 3 })),
  snat: fc.constantFrom(undefined, undefined, undefined, '192.0.2.7'),
  synproxy: fc.boolean(),
  master: fc.constantFrom(false, false, false, false, true),
}).map((g) => {
  const ct: Conntrack = {
    orig: g.v6
      ? { l3: AF_INET6, src: `fd00::${g.a.toString(16)}`, dst: 'fd00::1', proto: g.proto }
      : { l3: AF_INET, src: `10.9.${g.a >> 8}.${g.a & 255}`, dst: '198.51.100.1', proto: g.proto },
  };
  if (g.proto === IPPROTO.ICMP) {
    ct.orig.icmpType = 8;
    ct.orig.icmpCode = 0;
    ct.orig.icmpId = g.a;
  } else {
    ct.orig.sport = 1024 + g.a;
    ct.orig.dport = 443;
  }
  if (g.status !== undefined) ct.status = g.status;
  if (g.timeout !== undefined) ct.timeout = g.timeout;
  if (g.mark !== undefined) ct.mark = g.mark;
  if (g.tcp !== undefined && g.proto === IPPROTO.TCP) ct.tcp = { state: g.tcp };
  if (g.zone !== undefined) ct.zone = g.zone;
  if (g.snat !== undefined && !g.v6) ct.snatAddr = g.snat;
  if (g.synproxy) ct.synproxy = { isn: 0, its: 0, tsoff: 0 };
  if (g.master) ct.master = { l3: AF_INET, src: '10.8.8.8', dst: '198.51.100.1', proto: IPPROTO.TCP, sport: 5000, dport: 21 };
  return ct;
});

function cacheOf(entries: Conntrack[], clock: FakeClock): ExternalCache {
  const ext = new ExternalCache({ clock });
  const buf = Buffer.alloc(2048);
  let seq = 1;
  for (const ct of entries) {
    clock.advance(1500);
    const len = encodeConntrackMsg(buf, 0, MSG.CT_NEW, 0, seq++, ct);
    ext.applyCtMessage(EVENT.NEW, buf, 0, len);
  }
  return ext;
}

describe('commitExternal (columns written from their numbers)', () => {
  it('writes what toKernelEntry and the create writer write, entry for entry, in commit order', async () => {
    await fc.assert(fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 40 }), fc.boolean(),
      opt(fc.integer({ min: 1, max: 600 })), fc.integer({ min: 0, max: 200_000 }),
      async (entries, tcpWindowTracking, commitTimeout, later) => {
        const clock = new FakeClock();
        const ext = cacheOf(entries, clock);
        clock.advance(later);
        const opts: CommitOptions = { tcpWindowTracking, now: clock.now(), ...(commitTimeout !== undefined ? { commitTimeout } : {}) };
        const objects = new RecordingTable(false);
        const direct = new RecordingTable(true, new Set());
        const r1 = await commitConntracks(ext.commitOrder(), objects as unknown as ConntrackTable, opts);
        const r2 = await commitExternal(ext, direct as unknown as ConntrackTable, opts);
        expect(direct.written).toEqual(objects.written);
        expect(r2.committed).toBe(r1.committed);
      }), { numRuns: Number(process.env.PROP_RUNS ?? 200) });
  });

  it('an entry already in the kernel is replaced with the same entry; a table without the encoded way gets Conntracks', async () => {
    const clock = new FakeClock();
    const ct: Conntrack = { orig: { l3: AF_INET, src: '10.1.1.1', dst: '10.2.2.2', proto: IPPROTO.TCP, sport: 1, dport: 2 }, status: 14, timeout: 300, tcp: { state: 3 } };
    const ext = cacheOf([ct], clock);
    const opts: CommitOptions = { tcpWindowTracking: false, now: clock.now() };
    const probe = new RecordingTable(true);
    await commitExternal(ext, probe as unknown as ConntrackTable, opts);
    const clash = new RecordingTable(true, new Set(probe.written));
    expect((await commitExternal(ext, clash as unknown as ConntrackTable, opts)).committed).toBe(1);
    const plain = new RecordingTable(false);
    expect((await commitExternal(ext, plain as unknown as ConntrackTable, opts)).committed).toBe(1);
    expect(plain.written).toEqual(probe.written);
  });
});
