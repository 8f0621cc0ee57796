// Address text for the sync receive path. The model keeps addresses as
// canonical text (model/conntrack.ts), so every received message would build
// two or more new strings. Most of them repeat: a firewall's flows share a
// handful of server and NAT addresses, and a flow's CT_NEW/CT_UPD/CT_DEL carry
// the same tuple. A small direct-mapped table returns the string built last
// time for the same bytes, so repeats cost a few integer compares, equal
// addresses in the external cache share one string (less heap per entry) and
// tuple comparisons hit the `===` identity fast path.
//
// A slot collision just rebuilds the string: the output is always the same
// text readIpv6 would give. IPv4 uses the kernel codec's table (readIpv4).
import { readIpv4, readIpv6 } from '../netlink/nlattr.js';
import { rdI32BE } from '../util/bytes.js';

const SLOTS = 1 << 14;
const MASK = SLOTS - 1;

/**
 * Dotted-quad text of the 4 bytes at buf[at]: the kernel codec's interning
 * reader (netlink/nlattr.ts), so both decoders share one table, and its
 * text → value side serves the commit's netlink encoder for these addresses.
 */
export function ipv4Text(buf: Buffer, at: number): string {
  return readIpv4(buf, at);
}

const v6Key = new Int32Array(SLOTS * 4);
const v6Text: (string | undefined)[] = new Array<string | undefined>(SLOTS).fill(undefined);

/** RFC 5952 text of the 16 bytes at buf[at] (same text as readIpv6). */
export function ipv6Text(buf: Buffer, at: number): string {
  const w0 = rdI32BE(buf, at), w1 = rdI32BE(buf, at + 4), w2 = rdI32BE(buf, at + 8), w3 = rdI32BE(buf, at + 12);
  let h = Math.imul(w0, 0x9e3779b1) ^ w1;
  h = Math.imul(h, 0x85ebca6b) ^ w2;
  h = Math.imul(h, 0xc2b2ae35) ^ w3;
  const i = (Math.imul(h, 0x9e3779b1) >>> 18) & MASK;
  const k = i << 2;
  const s = v6Text[i];
  if (s !== undefined && v6Key[k] === w0 && v6Key[k + 1] === w1 && v6Key[k + 2] === w2 && v6Key[k + 3] === w3) return s;
  const t = readIpv6(buf, at);
  v6Key[k] = w0;
  v6Key[k + 1] = w1;
  v6Key[k + 2] = w2;
  v6Key[k + 3] = w3;
  v6Text[i] = t;
  return t;
}
