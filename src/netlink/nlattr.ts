// Netlink attribute (nlattr) writing and reading over one reusable buffer.
// nlattr headers are host-endian (little-endian on every platform we run on);
// ctnetlink payload integers are big-endian (spec netlink.md, pitfall 9).
import { rdU16BE, rdU16LE, wrU16BE, wrU16LE, wrU32BE } from '../util/bytes.js';

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;
export const NLA_HDRLEN = 4;

export function nlaAlign(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Appends netlink messages and attributes into a growable buffer that is
 * reused across batches, so a 100k-entry commit allocates a handful of times.
 */
export class NlWriter {
  buf: Buffer;
  off = 0;
  private readonly nests: number[] = [];

  constructor(initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  reset(): void {
    this.off = 0;
    this.nests.length = 0;
  }

  /** Bytes written so far (a view, valid until the next write or reset). */
  view(): Buffer {
    return this.buf.subarray(0, this.off);
  }

  ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  private header(type: number, payloadLen: number): number {
    const total = NLA_HDRLEN + payloadLen;
    this.ensure(nlaAlign(total));
    const at = this.off;
    wrU16LE(this.buf, at, total);
    wrU16LE(this.buf, at + 2, type);
    this.off += NLA_HDRLEN;
    return at;
  }

  private pad(): void {
    const aligned = nlaAlign(this.off);
    while (this.off < aligned) this.buf[this.off++] = 0;
  }

  u8(type: number, v: number): void {
    this.header(type, 1);
    this.buf[this.off++] = v & 0xff;
    this.pad();
  }

  u16be(type: number, v: number): void {
    this.header(type, 2);
    wrU16BE(this.buf, this.off, v & 0xffff);
    this.off += 2;
    this.pad();
  }

  u32be(type: number, v: number): void {
    this.header(type, 4);
    wrU32BE(this.buf, this.off, v >>> 0);
    this.off += 4;
  }

  u64be(type: number, v: bigint): void {
    this.header(type, 8);
    this.buf.writeBigUInt64BE(v, this.off);
    this.off += 8;
  }

  bytes(type: number, data: Uint8Array): void {
    this.header(type, data.length);
    this.buf.set(data, this.off);
    this.off += data.length;
    this.pad();
  }

  /** NUL-terminated string, as ctnetlink expects for helper names. */
  cstring(type: number, s: string): void {
    const n = Buffer.byteLength(s);
    this.header(type, n + 1);
    this.off += this.buf.write(s, this.off);
    this.buf[this.off++] = 0;
    this.pad();
  }

  /** IPv4 dotted quad written as 4 network-order bytes. */
  ipv4(type: number, addr: string): void {
    this.header(type, 4);
    writeIpv4(this.buf, this.off, addr);
    this.off += 4;
  }

  ipv6(type: number, addr: string): void {
    this.header(type, 16);
    writeIpv6(this.buf, this.off, addr);
    this.off += 16;
  }

  beginNested(type: number): void {
    const at = this.header(type | NLA_F_NESTED, 0);
    this.nests.push(at);
  }

  endNested(): void {
    const at = this.nests.pop();
    if (at === undefined) throw new Error('endNested without beginNested');
    wrU16LE(this.buf, at, this.off - at);
  }

  /** Raw bytes (message headers). */
  raw(n: number): number {
    this.ensure(n);
    const at = this.off;
    this.off += n;
    return at;
  }
}

/**
 * Walks the attributes in [start, end). Calls visit(type, payloadStart,
 * payloadEnd) with the type already masked; returns false if the region is
 * malformed (an attribute shorter than its header or running past end), so
 * callers turn that into a counted decode error instead of reading garbage.
 */
export function forEachAttr(buf: Buffer, start: number, end: number,
  visit: (type: number, pstart: number, pend: number) => void): boolean {
  let off = start;
  while (off + NLA_HDRLEN <= end) {
    const len = rdU16LE(buf, off);
    if (len < NLA_HDRLEN || off + len > end) return false;
    visit(rdU16LE(buf, off + 2) & NLA_TYPE_MASK, off + NLA_HDRLEN, off + len);
    off += nlaAlign(len);
  }
  return true;
}

// The reverse direction: text → value for the same recent addresses, so the
// filter and the sync encoder do not parse back what the decoder just
// printed. Direct-mapped by a hash of the text's length and last characters;
// a hit needs the identical text (normally the very same interned string, a
// pointer comparison). Only exact text → value pairs go in, so a hit gives
// what any of the parsers would compute; a miss falls back to parsing.
const TEXT_SLOT_BITS = 12;
const TEXT_MASK = (1 << TEXT_SLOT_BITS) - 1;
const textKeys: string[] = new Array<string>(1 << TEXT_SLOT_BITS).fill('');
const textVals = new Int32Array(1 << TEXT_SLOT_BITS);

function textSlot(s: string): number {
  const n = s.length;
  if (n < 7) return 0;
  return (n * 0x3f1 ^ s.charCodeAt(n - 1) * 0x2b ^ s.charCodeAt(n - 2) * 0x6d7 ^ s.charCodeAt(n - 3) * 0x1f3 ^
    s.charCodeAt(n - 5) * 0x4a1) & TEXT_MASK;
}

/** The cached u32 of text `s` in its slot, or -1. */
function cachedAt(slot: number, s: string): number {
  return textKeys[slot] === s && s !== '' ? textVals[slot]! >>> 0 : -1;
}

function rememberAt(slot: number, s: string, v: number): void {
  textKeys[slot] = s;
  textVals[slot] = v | 0;
}

/** The u32 value of IPv4 text seen recently (decoded or parsed), or -1 when not cached. */
export function cachedIpv4(s: string): number {
  return cachedAt(textSlot(s), s);
}

/** Records that text `s` is the IPv4 address `v` (u32); `s` must parse to exactly `v`. */
export function rememberIpv4(s: string, v: number): void {
  rememberAt(textSlot(s), s, v);
}

/** The u32 of IPv4 text (from the text cache when recent); throws TypeError on bad text. One slot hash either way. */
export function ipv4Value(addr: string): number {
  const slot = textSlot(addr);
  const c = cachedAt(slot, addr);
  if (c >= 0) return c;
  const v = parseIpv4(addr);
  rememberAt(slot, addr, v);
  return v;
}

export function writeIpv4(buf: Buffer, off: number, addr: string): void {
  wrU32BE(buf, off, ipv4Value(addr));
}

/**
 * Dotted-quad text to its u32, accumulated in a register (a bulk resync of
 * 100k distinct sources misses the text cache on every entry: ~66 ns each
 * when the bytes went through the buffer one by one and the slot was hashed
 * twice, ~1 in 15 of the resync sender's CPU). Up to three digits per part,
 * each part at most 255; leading zeros are accepted, as they were.
 */
function parseIpv4(addr: string): number {
  const n = addr.length;
  let v = 0;
  let part = 0;
  let oct = 0;
  let digits = 0;
  for (let i = 0; i < n; i++) {
    const d = addr.charCodeAt(i) - 48;
    if (d >= 0 && d <= 9) {
      oct = oct * 10 + d;
      if (++digits > 3) badIpv4(addr);
    } else if (d === -2 && digits > 0 && part < 3 && oct <= 255) {
      v = (v << 8) | oct;
      part++;
      oct = 0;
      digits = 0;
    } else {
      badIpv4(addr);
    }
  }
  if (part !== 3 || digits === 0 || oct > 255) badIpv4(addr);
  return ((v << 8) | oct) >>> 0;
}

function badIpv4(addr: string): never {
  throw new TypeError(`bad IPv4 address: ${addr}`);
}

// Dotted-quad text of recently decoded IPv4 addresses, direct-mapped by value.
// Addresses recur from one event to the next (the reply destination is the
// original source unless SNATed; servers and NAT addresses repeat), so most
// reads return an existing string: fewer allocations at the event rate, and
// every cached entry holding the same address shares one string.
const V4_SLOT_BITS = 12;
const v4Keys = new Int32Array(1 << V4_SLOT_BITS);
const v4Strs: string[] = new Array<string>(1 << V4_SLOT_BITS).fill('');
const OCTET = Array.from({ length: 256 }, (_, i) => String(i));
const OCTET_DOT = Array.from({ length: 256 }, (_, i) => `${i}.`);

// "a.b.c." of recent misses: addresses of one /24 differ in the last octet
// only, so a new one usually costs one concatenation instead of three.
const prefixKeys = new Int32Array(256).fill(-1);
const prefixStrs: string[] = new Array<string>(256).fill('');

function v4Prefix(a: number, b: number, c: number): string {
  const k = (a << 16) | (b << 8) | c;
  const slot = (k ^ (k >>> 8) ^ (k >>> 16)) & 255;
  if (prefixKeys[slot] === k) return prefixStrs[slot]!;
  const p = OCTET_DOT[a]! + OCTET_DOT[b]! + OCTET_DOT[c]!;
  prefixKeys[slot] = k;
  prefixStrs[slot] = p;
  return p;
}

export function readIpv4(buf: Buffer, off: number): string {
  const a = buf[off]!;
  const b = buf[off + 1]!;
  const c = buf[off + 2]!;
  const d = buf[off + 3]!;
  const v = (a << 24) | (b << 16) | (c << 8) | d;
  const slot = Math.imul(v, 0x9e3779b1) >>> (32 - V4_SLOT_BITS);
  const hit = v4Strs[slot]!;
  if (v4Keys[slot] === v && hit !== '') return hit;
  const s = v4Prefix(a, b, c) + OCTET[d]!;
  // 13+ characters come out as a rope; reading one character flattens it now,
  // once, rather than in every later parse of the cached string.
  if (s.length >= 13) s.charCodeAt(0);
  v4Keys[slot] = v;
  v4Strs[slot] = s;
  rememberIpv4(s, v >>> 0);
  return s;
}

export function writeIpv6(buf: Buffer, off: number, addr: string): void {
  let s = addr;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) > 0) {
    const tmp = Buffer.alloc(4);
    writeIpv4(tmp, 0, s.slice(lastColon + 1));
    s = `${s.slice(0, lastColon + 1)}${rdU16BE(tmp, 0).toString(16)}:${rdU16BE(tmp, 2).toString(16)}`;
  }
  const dbl = s.indexOf('::');
  let head: string[];
  let tail: string[];
  if (dbl >= 0) {
    if (s.indexOf('::', dbl + 1) >= 0) throw new TypeError(`bad IPv6 address: ${addr}`);
    head = s.slice(0, dbl) ? s.slice(0, dbl).split(':') : [];
    tail = s.slice(dbl + 2) ? s.slice(dbl + 2).split(':') : [];
    if (head.length + tail.length > 7) throw new TypeError(`bad IPv6 address: ${addr}`);
  } else {
    head = s.split(':');
    tail = [];
    if (head.length !== 8) throw new TypeError(`bad IPv6 address: ${addr}`);
  }
  buf.fill(0, off, off + 16);
  const put = (h: string, i: number): void => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(h)) throw new TypeError(`bad IPv6 address: ${addr}`);
    wrU16BE(buf, off + i * 2, parseInt(h, 16));
  };
  head.forEach((h, i) => put(h, i));
  tail.forEach((h, i) => put(h, 8 - tail.length + i));
}

/** RFC 5952 text: lower case, longest zero run (length ≥ 2) compressed. */
export function readIpv6(buf: Buffer, off: number): string {
  let bestStart = -1;
  let bestLen = 0;
  let curStart = -1;
  let curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (rdU16BE(buf, off + i * 2) === 0) {
      if (curStart < 0) curStart = i;
      curLen++;
      if (curLen > bestLen) {
        bestLen = curLen;
        bestStart = curStart;
      }
    } else {
      curStart = -1;
      curLen = 0;
    }
  }
  if (bestLen < 2) bestStart = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += rdU16BE(buf, off + i * 2).toString(16);
  }
  return out;
}
