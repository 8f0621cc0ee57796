// Many kernel entries at once, through ctsync's own netlink client (a
// conntrack -I loop manages ~500/s; a batch manages ~190k/s).
import { CtClient } from '../../src/netlink/client.js';
import { AF_INET, IPS, IPPROTO, type Conntrack } from '../../src/model/conntrack.js';
import type { Netns } from './netns.js';

/** n distinct ESTABLISHED TCP entries 10.<100+i/65536>.x.y:port → 192.0.2.1:80 (a /16 per 65k). */
export function tcpEntries(n: number, first = 0, mark = 0): Conntrack[] {
  const out: Conntrack[] = [];
  for (let k = first; k < first + n; k++) {
    const src = `10.${100 + (k >>> 16)}.${(k >>> 8) & 255}.${k & 255}`;
    const sport = 1024 + (k % 50000);
    out.push({
      orig: { l3: AF_INET, src, dst: '192.0.2.1', proto: IPPROTO.TCP, sport, dport: 80 },
      reply: { l3: AF_INET, src: '192.0.2.1', dst: src, proto: IPPROTO.TCP, sport: 80, dport: sport },
      status: IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED,
      timeout: 1200,
      mark,
      tcp: { state: 3 },
    });
  }
  return out;
}

export async function injectBulk(ns: Netns, entries: Conntrack[]): Promise<number> {
  const c = new CtClient({ netns: ns.path });
  try {
    const r = await c.create(entries);
    if (r.failed.length > 0) throw new Error(`${r.failed.length} creates failed, first errno ${r.failed[0]!.errno}`);
    return r.ok;
  } finally {
    c.close();
  }
}

export async function kernelCount(ns: Netns): Promise<number> {
  const c = new CtClient({ netns: ns.path });
  try {
    return (await c.dump()).length;
  } finally {
    c.close();
  }
}
