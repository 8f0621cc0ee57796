// CtEventListener.muteNew() against the real kernel: while the NEW group is
// left, entries created through ctnetlink produce no NEW event, and (the
// reason UPDATE and DESTROY stay joined) those entries still report their
// later UPDATEs and DESTROY. With nf_conntrack_events=2 (the default) an
// entry created while no ctnetlink group had a listener would stay silent
// for life; the kernel's flag is global on recent kernels, so that case
// cannot be shown reliably on a shared machine and is not asserted here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AF_INET, EVENT, IPPROTO, IPS, type Conntrack, type EventKind } from '../../src/model/conntrack.js';
import { CtClient } from '../../src/netlink/client.js';
import { CtEventListener } from '../../src/netlink/events.js';
import { isRoot, Lab, waitFor, type Netns } from '../helpers/netns.js';

function entry(i: number): Conntrack {
  return {
    orig: { l3: AF_INET, src: `10.44.0.${i}`, dst: '192.0.2.1', proto: IPPROTO.TCP, sport: 2000 + i, dport: 443 },
    status: IPS.SEEN_REPLY | IPS.ASSURED, timeout: 600, tcp: { state: 3 },
  };
}

describe.skipIf(!isRoot)('muting the NEW event group for a commit', () => {
  const lab = new Lab('m');
  let ns: Netns;
  let client: CtClient;
  let listener: CtEventListener;
  const seen: { kind: EventKind; sport: number }[] = [];

  beforeAll(() => {
    ns = lab.netns('ct');
    ns.run('sysctl', ['-q', '-w', 'net.netfilter.nf_conntrack_events=2'], { allowFail: true });
    client = new CtClient({ netns: ns.path });
    listener = new CtEventListener({ netns: ns.path, bufferSize: 4 << 20 });
    listener.on('event', (kind, ct) => seen.push({ kind, sport: ct.orig.sport! }));
    listener.start();
  });

  afterAll(async () => {
    listener?.close();
    client?.close();
    await lab.cleanup();
  });

  const of = (kind: EventKind, sport: number): number => seen.filter((s) => s.kind === kind && s.sport === sport).length;

  it('no NEW while muted; UPDATE and DESTROY of the entries created meanwhile still arrive', async () => {
    expect(listener.muteNew()).toBe(true);
    expect(listener.muteNew()).toBe(false); // already muted
    const muted = [1, 2, 3].map(entry);
    expect((await client.create(muted)).ok).toBe(3);
    listener.unmuteNew();
    expect(listener.isNewMuted).toBe(false);
    expect((await client.create([entry(4)])).ok).toBe(1);
    await waitFor(() => of(EVENT.NEW, 2004) === 1, 'NEW of the entry created after unmuting');
    for (const i of [1, 2, 3]) expect(of(EVENT.NEW, 2000 + i)).toBe(0);

    expect((await client.update([{ orig: entry(1).orig, mark: 9 }])).ok).toBe(1);
    await waitFor(() => of(EVENT.UPDATE, 2001) === 1, 'UPDATE of an entry created while muted');
    expect((await client.remove([1, 2, 3, 4].map(entry))).ok).toBe(4);
    await waitFor(() => [1, 2, 3, 4].every((i) => of(EVENT.DESTROY, 2000 + i) === 1), 'DESTROY of every entry');
    expect(listener.stats.overruns).toBe(0);
  });
});
