// The ctnetlink codec against the real kernel: entries built with
// writeConntrackAttrs (through the request engine, no conntrack(8)) are
// created, updated and deleted in a throwaway namespace, then read back with
// readConntrack. This is where the write-mode rules of spec pitfall 5 are
// proved: NAT by CTA_NAT_* with an untranslated reply tuple, CONFIRMED on
// create, kernel-owned status bits stripped on update.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AF_INET, AF_INET6, IPPROTO, IPS, TCP_STATE, type Conntrack, type Tuple } from '../../src/model/conntrack.js';
import { CtClient } from '../../src/netlink/client.js';
import { isRoot, Lab, type Netns } from '../helpers/netns.js';

const tcp4 = (src: string, dst: string, sport: number, dport: number): Tuple =>
  ({ l3: AF_INET, src, dst, proto: IPPROTO.TCP, sport, dport });
const udp4 = (src: string, dst: string, sport: number, dport: number): Tuple =>
  ({ l3: AF_INET, src, dst, proto: IPPROTO.UDP, sport, dport });

const ESTABLISHED = IPS.SEEN_REPLY | IPS.ASSURED;

describe.skipIf(!isRoot)('ctnetlink codec against the kernel', () => {
  let lab: Lab;
  let ns: Netns;
  let client: CtClient;

  beforeAll(() => {
    lab = new Lab('codec');
    ns = lab.netns('k');
    // Labels can only be attached once some rule uses them in this netns.
    ns.run('nft', ['-f', '-'], {
      input: 'table ip lbl {\n chain out { type filter hook output priority 0; ip daddr 127.9.9.9 ct label set 1; }\n}\n',
    });
    client = new CtClient({ netns: ns.path });
  });

  afterAll(async () => {
    client?.close();
    await lab?.cleanup();
  });

  async function createOk(ct: Conntrack): Promise<Conntrack> {
    const r = await client.create([ct]);
    expect(r.failed).toEqual([]);
    const got = await client.get(ct.orig, ct.zone);
    expect(got).not.toBeNull();
    return got!;
  }

  it('creates a TCP entry with SNAT given as a kernel reply tuple', async () => {
    const orig = tcp4('10.0.0.1', '8.8.8.8', 40002, 443);
    const got = await createOk({
      orig, reply: tcp4('8.8.8.8', '192.0.2.1', 443, 61000),
      status: ESTABLISHED | IPS.CONFIRMED | IPS.SRC_NAT | IPS.SRC_NAT_DONE, timeout: 300, mark: 7,
      tcp: { state: TCP_STATE.ESTABLISHED, wscaleOrig: 7, wscaleReply: 7, flagsOrig: 0x0a, flagsReply: 0x0a },
    });
    expect(got.orig).toEqual(orig);
    expect(got.reply).toEqual(tcp4('8.8.8.8', '192.0.2.1', 443, 61000));
    expect(got.status! & (IPS.SRC_NAT | IPS.CONFIRMED | ESTABLISHED)).toBe(IPS.SRC_NAT | IPS.CONFIRMED | ESTABLISHED);
    expect(got.status! & IPS.DST_NAT).toBe(0);
    expect(got.mark).toBe(7);
    expect(got.timeout).toBeGreaterThan(290);
    expect(got.tcp?.state).toBe(TCP_STATE.ESTABLISHED);
    expect(got.tcp?.flagsOrig).toBe(0x0a);
  });

  it('creates a UDP entry with DNAT given in wire form (no reply tuple)', async () => {
    const got = await createOk({
      orig: udp4('10.0.0.9', '192.0.2.80', 40003, 8080), status: 0, timeout: 60, dnatAddr: '10.1.1.80', dnatPort: 80,
    });
    expect(got.reply).toEqual(udp4('10.1.1.80', '10.0.0.9', 80, 40003));
    expect(got.status! & (IPS.DST_NAT | IPS.SRC_NAT)).toBe(IPS.DST_NAT);
  });

  it('creates an entry with both SNAT and DNAT, address-only SNAT', async () => {
    const got = await createOk({
      orig: tcp4('10.0.0.10', '198.51.100.1', 1234, 80), status: ESTABLISHED, timeout: 100,
      snatAddr: '203.0.113.5', dnatAddr: '10.2.2.2', dnatPort: 8080,
      tcp: { state: TCP_STATE.ESTABLISHED },
    });
    expect(got.reply).toEqual(tcp4('10.2.2.2', '203.0.113.5', 8080, 1234));
    expect(got.status! & (IPS.DST_NAT | IPS.SRC_NAT)).toBe(IPS.DST_NAT | IPS.SRC_NAT);
  });

  it('creates ICMP, IPv6 TCP, ICMPv6, SCTP and GRE entries', async () => {
    const icmp: Tuple = { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.4', proto: IPPROTO.ICMP, icmpType: 8, icmpCode: 0, icmpId: 1234 };
    let got = await createOk({ orig: icmp, timeout: 30 });
    expect(got.reply).toEqual({ ...icmp, src: '10.0.0.4', dst: '10.0.0.1', icmpType: 0 });

    const t6: Tuple = { l3: AF_INET6, src: 'fd00::1', dst: 'fd00::2', proto: IPPROTO.TCP, sport: 40001, dport: 443 };
    got = await createOk({ orig: t6, timeout: 120, tcp: { state: TCP_STATE.SYN_SENT } });
    expect(got.reply).toEqual({ ...t6, src: 'fd00::2', dst: 'fd00::1', sport: 443, dport: 40001 });
    expect(got.tcp?.state).toBe(TCP_STATE.SYN_SENT);

    const i6: Tuple = { l3: AF_INET6, src: 'fd00::1', dst: 'fd00::3', proto: IPPROTO.ICMPV6, icmpType: 128, icmpCode: 0, icmpId: 77 };
    got = await createOk({ orig: i6, timeout: 30 });
    expect(got.reply?.icmpType).toBe(129);

    const sctp: Tuple = { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.5', proto: IPPROTO.SCTP, sport: 1000, dport: 2000 };
    got = await createOk({ orig: sctp, timeout: 100, sctp: { state: 3, vtagOrig: 111, vtagReply: 222 } });
    expect(got.sctp).toEqual({ state: 3, vtagOrig: 111, vtagReply: 222 });

    const gre: Tuple = { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.6', proto: IPPROTO.GRE, greKeySrc: 5, greKeyDst: 6 };
    got = await createOk({ orig: gre, timeout: 100 });
    expect(got.orig).toEqual(gre);
    expect(got.reply).toEqual({ ...gre, src: '10.0.0.6', dst: '10.0.0.1', greKeySrc: 6, greKeyDst: 5 });
  });

  it('creates zoned entries (CTA_ZONE and a directional tuple zone)', async () => {
    const orig = udp4('10.0.0.1', '10.0.0.3', 5353, 53);
    const got = await createOk({ orig, zone: 5, timeout: 30 });
    expect(got.zone).toBe(5);
    // Same tuple, other zone: a distinct entry.
    expect((await client.create([{ orig, zone: 6, timeout: 30 }])).failed).toEqual([]);
    expect((await client.get(orig, 6))?.zone).toBe(6);

    const oz = { ...udp4('10.0.0.7', '10.0.0.10', 4444, 55), zone: 3 };
    expect((await client.create([{ orig: oz, timeout: 30 }])).failed).toEqual([]);
    // A reply-direction zone survives a create from the kernel's own view of the entry.
    const rz = udp4('10.0.0.7', '10.0.0.11', 4445, 55);
    expect((await client.create([{ orig: rz, reply: { ...udp4('10.0.0.11', '10.0.0.7', 55, 4445), zone: 4 }, timeout: 30 }])).failed)
      .toEqual([]);
    const all = await client.dump(AF_INET);
    expect(all.find((c) => c.orig.sport === 4444)?.orig.zone).toBe(3);
    const r = all.find((c) => c.orig.sport === 4445);
    expect(r?.orig.zone).toBeUndefined();
    expect(r?.reply?.zone).toBe(4);
  });

  it('creates with labels, seqadj, synproxy and a helper', async () => {
    const labels = Buffer.alloc(16);
    labels[0] = 0x05;
    const got = await createOk({
      orig: tcp4('10.0.0.20', '10.0.0.21', 3333, 21), status: ESTABLISHED, timeout: 200, labels, helper: 'ftp',
      tcp: { state: TCP_STATE.ESTABLISHED },
      seqAdjOrig: { correctionPos: 100, offsetBefore: 1, offsetAfter: 2 },
      seqAdjReply: { correctionPos: 200, offsetBefore: 3, offsetAfter: 4 },
      synproxy: { isn: 11, its: 12, tsoff: 13 },
    });
    expect(got.labels?.toString('hex')).toBe(labels.toString('hex'));
    expect(got.helper).toBe('ftp');
    expect(got.seqAdjOrig).toEqual({ correctionPos: 100, offsetBefore: 1, offsetAfter: 2 });
    expect(got.seqAdjReply).toEqual({ correctionPos: 200, offsetBefore: 3, offsetAfter: 4 });
    expect(got.synproxy).toEqual({ isn: 11, its: 12, tsoff: 13 });
  });

  it('updates an entry from its own read-back (kernel-owned status bits are stripped)', async () => {
    const orig = tcp4('10.0.0.30', '8.8.4.4', 5555, 443);
    const before = await createOk({
      orig, status: ESTABLISHED, timeout: 100, snatAddr: '192.0.2.9', mark: 1, tcp: { state: TCP_STATE.ESTABLISHED },
    });
    expect(before.status! & IPS.SRC_NAT_DONE).toBeTruthy();
    const labels = Buffer.alloc(16);
    labels[1] = 0x80;
    const r = await client.update([{ ...before, mark: 42, timeout: 500, labels }]);
    expect(r.failed).toEqual([]);
    const after = await client.get(orig);
    expect(after?.mark).toBe(42);
    expect(after?.timeout).toBeGreaterThan(490);
    expect(after?.labels?.toString('hex')).toBe(labels.toString('hex'));
    expect(after?.reply).toEqual(before.reply);
    // Labels are replaced, not ORed.
    const l2 = Buffer.alloc(16);
    l2[2] = 0x01;
    expect((await client.update([{ orig, labels: l2 }])).failed).toEqual([]);
    expect((await client.get(orig))?.labels?.toString('hex')).toBe(l2.toString('hex'));
  });

  it('creates, dumps and deletes an expectation of an FTP-helped master', async () => {
    const master = tcp4('10.0.0.50', '10.0.0.51', 3000, 21);
    await createOk({ orig: master, status: ESTABLISHED, timeout: 300, helper: 'ftp', tcp: { state: TCP_STATE.ESTABLISHED } });
    const tuple = tcp4('10.0.0.51', '10.0.0.50', 0, 5000);
    const mask = tcp4('255.255.255.255', '255.255.255.255', 0, 0xffff);
    const r = await client.createExpectations([{ master, tuple, mask, timeout: 100, helper: 'ftp', flags: 0 }]);
    expect(r.failed).toEqual([]);
    const exps = await client.dumpExpectations(AF_INET);
    expect(exps).toHaveLength(1);
    const e = exps[0]!;
    expect(e.master).toEqual(master);
    expect(e.tuple).toEqual(tuple);
    expect(e.mask).toEqual(mask);
    expect(e.helper).toBe('ftp');
    expect(e.timeout).toBeGreaterThan(90);
    expect(typeof e.id).toBe('number');
    expect((await client.removeExpectations([e])).failed).toEqual([]);
    expect(await client.dumpExpectations(AF_INET)).toHaveLength(0);
  });

  it('update cannot clear ASSURED (kernel EBUSY), can set it', async () => {
    const orig = udp4('10.0.0.60', '10.0.0.61', 60, 61);
    await createOk({ orig, status: 0, timeout: 50 });
    expect((await client.update([{ orig, status: IPS.SEEN_REPLY | IPS.ASSURED }])).failed).toEqual([]);
    expect((await client.get(orig))!.status! & ESTABLISHED).toBe(ESTABLISHED);
    expect((await client.update([{ orig, status: IPS.SEEN_REPLY }])).failed).toMatchObject([{ index: 0, errno: 16 }]);
  });

  it('deletes by orig tuple and zone', async () => {
    const orig = udp4('10.0.0.40', '10.0.0.41', 7, 7);
    await createOk({ orig, zone: 9, timeout: 50 });
    expect((await client.remove([{ orig, zone: 9 }])).failed).toEqual([]);
    expect(await client.get(orig, 9)).toBeNull();
  });
});
