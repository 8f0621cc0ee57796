// The decoder's values live on in the internal cache, which merges later
// events into them (status, timeout, reply, tcp, synproxy, id…). On a table
// that saw only NEW events so far, the first UPDATE made those fields mutable
// in the middle of the work and threw away the compiled event path (see
// util/shape.ts). settleDecodedShapes() decodes one sample of each common
// kind of entry, through the real decoder so they get its very hidden
// classes, and settles their fields once.
import { AF_INET, IPPROTO, IPS, type Conntrack } from '../model/conntrack.js';
import { settleSample } from '../util/shape.js';
import { CTA } from './ct-attrs.js';
import { readConntrack, writeConntrackAttrs, ZERO_SYNPROXY } from './ct-codec.js';
import { NlWriter } from './nlattr.js';

/** Entries as the kernel reports them: TCP with and without CTA_SYNPROXY, UDP, ICMP (IPv4). */
function samples(): Conntrack[] {
  // Addresses from the benchmarking range (RFC 2544), both above 2^30 as u32 words.
  const src = '198.18.0.1';
  const dst = '198.19.0.1';
  const status = IPS.SEEN_REPLY | IPS.ASSURED | IPS.CONFIRMED;
  const id = 0x9e3779b1;
  const tcp = { state: 3, wscaleOrig: 7, wscaleReply: 7, flagsOrig: 0x23, flagsReply: 0x23 };
  return [
    { orig: { l3: AF_INET, src, dst, proto: IPPROTO.TCP, sport: 40000, dport: 443 }, status, timeout: 432000, mark: 0, id, tcp, synproxy: ZERO_SYNPROXY },
    { orig: { l3: AF_INET, src, dst, proto: IPPROTO.TCP, sport: 40001, dport: 443 }, status, timeout: 432000, mark: 0, id, tcp },
    { orig: { l3: AF_INET, src, dst, proto: IPPROTO.UDP, sport: 40002, dport: 53 }, status, timeout: 120, mark: 0, id },
    { orig: { l3: AF_INET, src, dst, proto: IPPROTO.ICMP, icmpType: 8, icmpCode: 0, icmpId: 7 }, status, timeout: 30, mark: 0, id },
  ];
}

let settled = false;

/** Once per process: settles the fields of decoded entries (with and without their plain reply tuple). */
export function settleDecodedShapes(): void {
  if (settled) return;
  settled = true;
  const w = new NlWriter(4096);
  for (const ct of samples()) {
    for (const dropPlainReply of [false, true]) {
      w.reset();
      writeConntrackAttrs(w, ct, 'create');
      w.u32be(CTA.ID, ct.id!);
      const v = readConntrack(w.buf, 0, w.off, dropPlainReply);
      // TcpInfo and Synproxy objects are shared and frozen: only the entry's own fields.
      settleSample(v, { mutable: Object.keys(v) });
    }
  }
}
