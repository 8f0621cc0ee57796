// Address and prefix arithmetic for the Filter (conntrackd's cidr.c).
//
// IPv4 addresses are 32-bit numbers, IPv6 addresses four 32-bit words in
// network order. The per-event parsers read the model's address text
// character by character into a number or into a caller-owned Uint32Array:
// no split(), no regex, nothing allocated, since the filter runs on every
// kernel event.
import { CtsyncError } from '../errors.js';
import { cachedIpv4 } from '../netlink/nlattr.js';

/** Parses dotted-quad IPv4 text in s[start, end). Returns the address as an unsigned number, or -1. */
export function parseIPv4Range(s: string, start: number, end: number): number {
  let acc = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      acc = acc * 256 + part;
      part = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return acc * 256 + part;
}

/** Dotted-quad text → unsigned 32-bit number, or -1. Text the kernel codec just decoded is not parsed again. */
export function parseIPv4(s: string): number {
  const v = cachedIpv4(s);
  return v >= 0 ? v : parseIPv4Range(s, 0, s.length);
}

// Scratch for the 8 groups while "::" is being expanded; parsing is synchronous so one suffices.
const groups = new Uint16Array(8);

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parses IPv6 text (RFC 4291 forms: "::", embedded dotted quad, any case;
 * a "%zone" suffix is ignored) into out[off..off+3], network order.
 * Returns false for anything else.
 */
export function parseIPv6Into(s: string, out: Uint32Array, off = 0): boolean {
  let n = s.length;
  const pct = s.indexOf('%');
  if (pct >= 0) n = pct;
  if (n < 2) return false;
  let i = 0;
  let gi = 0;
  let dbl = -1;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    dbl = 0;
    i = 2;
  }
  while (i < n) {
    if (gi >= 8) return false;
    let j = i;
    let v = 0;
    let digits = 0;
    let dot = false;
    for (; j < n; j++) {
      const c = s.charCodeAt(j);
      if (c === 58) break;
      if (c === 46) {
        dot = true;
        break;
      }
      const h = hexVal(c);
      if (h < 0 || ++digits > 4) return false;
      v = (v << 4) | h;
    }
    if (dot) {
      // Trailing dotted quad takes two groups.
      if (gi > 6) return false;
      const v4 = parseIPv4Range(s, i, n);
      if (v4 < 0) return false;
      groups[gi++] = v4 >>> 16;
      groups[gi++] = v4 & 0xffff;
      i = n;
      break;
    }
    if (digits === 0) return false;
    groups[gi++] = v;
    i = j;
    if (i >= n) break;
    i++; // the ':'
    if (i < n && s.charCodeAt(i) === 58) {
      if (dbl >= 0) return false;
      dbl = gi;
      i++;
    } else if (i >= n) {
      return false; // a single trailing ':'
    }
  }
  if (dbl < 0 ? gi !== 8 : gi > 7) return false;
  const tail = dbl < 0 ? 0 : gi - dbl; // groups after "::"
  for (let w = 0; w < 4; w++) {
    out[off + w] = ((groupAt(2 * w, dbl, gi, tail) << 16) | groupAt(2 * w + 1, dbl, gi, tail)) >>> 0;
  }
  return true;
}

function groupAt(k: number, dbl: number, gi: number, tail: number): number {
  if (dbl < 0 || k < dbl) return groups[k]!;
  if (k >= 8 - tail) return groups[k - (8 - gi)]!;
  return 0;
}

/** Prefix length → IPv4 mask as a signed 32-bit number (compare with `&` results only). */
export function ipv4Mask(prefix: number): number {
  return prefix <= 0 ? 0 : prefix >= 32 ? -1 : -1 << (32 - prefix);
}

/** Prefix length → four mask words (unsigned) into out[off..off+3]. */
export function ipv6MaskInto(prefix: number, out: Uint32Array, off = 0): void {
  for (let w = 0; w < 4; w++) {
    const bits = Math.max(0, Math.min(32, prefix - 32 * w));
    out[off + w] = ipv4Mask(bits) >>> 0;
  }
}

export interface Cidr4 {
  family: 4;
  /** Network address already masked, signed 32-bit (as `ip & mask` yields). */
  net: number;
  mask: number;
  prefix: number;
  /** True when written without a prefix or with the full-length one: a host entry. */
  host: boolean;
}

export interface Cidr6 {
  family: 6;
  /** Masked network, 4 words. */
  net: Uint32Array;
  mask: Uint32Array;
  prefix: number;
  host: boolean;
}

export type Cidr = Cidr4 | Cidr6;

/** "a.b.c.d[/n]" or "ipv6[/n]" (family from the text). Throws CTSYNC_ERR_CONFIG_INVALID. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  let prefix: number | undefined;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) throw invalid(text, 'bad prefix length');
    prefix = Number(p);
  }
  if (addr.includes(':')) {
    const net = new Uint32Array(4);
    if (!parseIPv6Into(addr, net)) throw invalid(text, 'not an IPv6 address');
    const pl = prefix ?? 128;
    if (pl > 128) throw invalid(text, 'prefix longer than 128');
    const mask = new Uint32Array(4);
    ipv6MaskInto(pl, mask);
    for (let w = 0; w < 4; w++) net[w] = (net[w]! & mask[w]!) >>> 0;
    return { family: 6, net, mask, prefix: pl, host: pl === 128 };
  }
  const ip = parseIPv4(addr);
  if (ip < 0) throw invalid(text, 'not an IPv4 address');
  const pl = prefix ?? 32;
  if (pl > 32) throw invalid(text, 'prefix longer than 32');
  const mask = ipv4Mask(pl);
  return { family: 4, net: ip & mask, mask, prefix: pl, host: pl === 32 };
}

function invalid(text: string, why: string): CtsyncError {
  return new CtsyncError('CTSYNC_ERR_CONFIG_INVALID', `${text} is not a valid network (${why})`, { cidr: text });
}

export function cidr4Contains(c: Cidr4, ip: number): boolean {
  return (ip & c.mask) === c.net;
}

/** `ip` = 4 words at ip[off..off+3]. */
export function cidr6Contains(c: Cidr6, ip: Uint32Array, off = 0): boolean {
  const m = c.mask;
  const n = c.net;
  return ((ip[off]! & m[0]!) >>> 0) === n[0] && ((ip[off + 1]! & m[1]!) >>> 0) === n[1] &&
    ((ip[off + 2]! & m[2]!) >>> 0) === n[2] && ((ip[off + 3]! & m[3]!) >>> 0) === n[3];
}
