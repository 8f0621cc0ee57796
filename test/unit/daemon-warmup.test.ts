// The start-up warm-up's inputs: the synthetic kernel events must decode to the
// flows they stand for, in the shapes real events have (the point is to compile
// the decoder for those), and the environment switch must refuse a typo rather
// than start cold without saying so.
import { describe, expect, it } from 'vitest';
import { DEFAULT_WARMUP_FLOWS, ownFlows, warmupFlowsFromEnv, warmupReads } from '../../src/daemon/warmup.js';
import { syntheticFlow, syntheticPortId } from '../../src/model/synthetic.js';
import { parseConfig } from '../../src/config/index.js';
import { CT_DELETE, CT_NEW, NLM_F_CREATE, NLM_F_EXCL } from '../../src/netlink/nl-constants.js';
import { MessageReader } from '../../src/netlink/message.js';
import { readConntrack } from '../../src/netlink/ct-codec.js';
import { IPPROTO } from '../../src/model/conntrack.js';

describe('warm-up synthetic events', () => {
  it('decode to the flows they stand for, in reads of at most 64 messages', () => {
    const n = 300;
    const reads = warmupReads(n, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 3);
    expect(reads.length).toBe(Math.ceil(n / 64));
    const r = new MessageReader();
    let k = 0;
    for (const buf of reads) {
      r.reset(buf);
      while (r.next()) {
        expect(r.type).toBe(CT_NEW);
        expect(r.flags & (NLM_F_CREATE | NLM_F_EXCL)).not.toBe(0);
        expect(r.pid).toBe(syntheticPortId(k));
        const ct = readConntrack(buf, r.attrsStart(), r.msgEnd);
        const want = syntheticFlow(k);
        expect(ct.orig).toEqual(want.orig);
        expect(ct.id).toBe(want.id);
        expect(ct.reply?.src).toBe(want.orig.dst);
        expect(ct.synproxy !== undefined).toBe(want.synproxy !== undefined);
        if (want.tcp) expect(ct.tcp?.state).toBe(3);
        k++;
      }
    }
    expect(k).toBe(n);
  });

  it('cover TCP with and without synproxy, UDP, ICMP, and ids above 2^31', () => {
    const flows = Array.from({ length: 40 }, (_, k) => syntheticFlow(k));
    const protos = new Set(flows.map((f) => f.orig.proto));
    expect(protos).toEqual(new Set([IPPROTO.TCP, IPPROTO.UDP, IPPROTO.ICMP]));
    const tcp = flows.filter((f) => f.orig.proto === IPPROTO.TCP);
    expect(tcp.some((f) => f.synproxy) && tcp.some((f) => !f.synproxy)).toBe(true);
    expect(flows.some((f) => f.id! > 2 ** 31)).toBe(true);
    // Never an address a real network uses: the benchmarking range only.
    for (const f of flows) expect(f.orig.src.startsWith('198.18.') && f.orig.dst.startsWith('198.19.')).toBe(true);
    // Source texts of 13 characters and more, and shorter ones (the decoder treats them apart).
    expect(flows.some((f) => f.orig.src.length >= 13) && flows.some((f) => f.orig.src.length < 13)).toBe(true);
  });

  it('are shaped as the kernel sends them: created over ctnetlink (mark, synproxy, a port id) or seen in packets (neither)', () => {
    const flows = Array.from({ length: 40 }, (_, k) => ({ k, f: syntheticFlow(k) }));
    for (const { k, f } of flows) {
      const created = f.synproxy !== undefined;
      expect(syntheticPortId(k) !== 0).toBe(created);
      if (created) expect(f.mark).toBe(0);
      // A packet-created flow carries CTA_MARK only when marked.
      else if (f.mark !== undefined) expect(f.mark).not.toBe(0);
    }
    expect(flows.some(({ f }) => !f.synproxy && f.mark === undefined)).toBe(true);
    expect(flows.some(({ f }) => !f.synproxy && f.mark !== undefined)).toBe(true);
  });

  it('DESTROY reads carry what the kernel\'s do (state alone, no mark when none), even flows first', () => {
    const n = 8;
    const [buf] = warmupReads(n, CT_DELETE, 0, 7);
    const r = new MessageReader().reset(buf!);
    const ks: number[] = [];
    while (r.next()) {
      expect(r.type).toBe(CT_DELETE);
      const ct = readConntrack(buf!, r.attrsStart(), r.msgEnd);
      const k = ct.orig.proto === IPPROTO.ICMP ? ct.orig.icmpId! : ct.orig.sport! - 1024;
      ks.push(k);
      expect(ct.reply).toBeDefined();
      expect(ct.status).toBeDefined();
      expect(ct.synproxy).toBeUndefined();
      const want = syntheticFlow(k);
      if (want.mark === undefined || want.mark === 0) expect(ct.mark).toBeUndefined();
      if (want.tcp) expect(ct.tcp).toEqual({ state: 7 });
    }
    expect(ks).toEqual([0, 2, 4, 6, 1, 3, 5, 7]);
  });

  it("add the host's own flows (loopback, each sync link's datagrams) after the synthetic ones", () => {
    const { config } = parseConfig(`Sync {
  Mode FTFW { }
  UDP { IPv4_address 192.0.2.1 IPv4_Destination_Address 192.0.2.2 Port 3780 Interface lo }
}
General { LockFile /tmp/x.lock UNIX { Path /tmp/x.ctl } }
`, 'own.conf');
    const own = ownFlows(config);
    expect(own.map((f) => `${f.orig.src}>${f.orig.dst}/${f.orig.proto}`)).toEqual(['127.0.0.1>127.0.0.1/6', '192.0.2.1>192.0.2.2/17']);
    const reads = warmupReads(3, CT_NEW, 0, 3, own);
    const r = new MessageReader().reset(reads[0]!);
    const srcs: string[] = [];
    while (r.next()) srcs.push(readConntrack(reads[0]!, r.attrsStart(), r.msgEnd).orig.src);
    expect(srcs.slice(3)).toEqual(['127.0.0.1', '192.0.2.1']);
  });
});

describe('CTSYNC_WARMUP', () => {
  it('is on unless turned off', () => {
    for (const v of [undefined, '', ' ']) expect(warmupFlowsFromEnv(v)).toBe(DEFAULT_WARMUP_FLOWS);
    for (const v of ['0', 'off', ' OFF ']) expect(warmupFlowsFromEnv(v)).toBe(0);
  });
  it('takes on/1 for the default and a number of flows', () => {
    expect(warmupFlowsFromEnv('on')).toBe(DEFAULT_WARMUP_FLOWS);
    expect(warmupFlowsFromEnv('1')).toBe(DEFAULT_WARMUP_FLOWS);
    expect(warmupFlowsFromEnv('4096')).toBe(4096);
  });
  it('refuses anything else with a stable code', () => {
    for (const v of ['yes', '-5', '2k', '1e3', '9999999']) {
      expect(() => warmupFlowsFromEnv(v)).toThrow(expect.objectContaining({ code: 'CTSYNC_ERR_CONFIG_INVALID' }));
    }
  });
});
