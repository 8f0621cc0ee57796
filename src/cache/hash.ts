// Identity of cache objects (spec ftfw.md §2.3): the original-direction tuple
// (family, src, dst, l4proto, ports or ICMP type/code/id) plus the zone.
// conntrackd's equality ignores the zone and only its hash mixes it in; we
// key on it as the spec recommends, so two flows with the same tuple in two
// zones are two entries.
//
// This runs once per kernel event, so nothing here allocates: addresses are
// hashed straight from their canonical text (the model guarantees one text per
// address, so text equality is address equality) and integers are mixed with
// Math.imul. No string key is ever built.
import { AF_INET, IPPROTO, type Conntrack, type Expectation, type Tuple } from '../model/conntrack.js';

/** How a table hashes and compares its values (one pair per value kind, never per event). */
export interface IdentityOps<T> {
  /** A 32-bit unsigned hash of the identity. */
  hash(value: T): number;
  /** True when both values name the same object. */
  equals(a: T, b: T): boolean;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over UTF-16 code units: address text is short ASCII, one imul per char. */
function mixString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h;
}

/** One murmur3 round per 32-bit word: cheap and spreads port/zone bits over the whole word. */
function mixInt(h: number, v: number): number {
  let k = Math.imul(v | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3 finaliser: buckets are taken from the low bits, so they must depend on every input bit. */
function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function isIcmp(proto: number): boolean {
  return proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6;
}

/**
 * The L4 part of the identity folded into one 32-bit word. Which fields count
 * depends on the protocol, as in libnetfilter_conntrack's tuple comparison;
 * an absent field counts as 0.
 */
export function l4Word(t: Tuple): number {
  if (isIcmp(t.proto)) {
    return (((t.icmpType ?? 0) & 0xff) << 24) | (((t.icmpCode ?? 0) & 0xff) << 16) | ((t.icmpId ?? 0) & 0xffff);
  }
  if (t.proto === IPPROTO.GRE) {
    return (((t.greKeySrc ?? t.sport ?? 0) & 0xffff) << 16) | ((t.greKeyDst ?? t.dport ?? 0) & 0xffff);
  }
  return (((t.sport ?? 0) & 0xffff) << 16) | ((t.dport ?? 0) & 0xffff);
}

/** Hash of (tuple, zone). `seed` lets a caller chain two tuples (expectations). */
export function hashTuple(t: Tuple, zone: number, seed: number = FNV_OFFSET): number {
  let h = mixString(seed, t.src);
  h = mixString(Math.imul(h ^ 0x2f, FNV_PRIME), t.dst); // a separator so "1.2.3.4"+"5..." ≠ "1.2.3.45"+"..."
  h = mixInt(h, (t.l3 << 8) | (t.proto & 0xff));
  h = mixInt(h, l4Word(t));
  h = mixInt(h, zone);
  return finish(h);
}

/**
 * Hash of an IPv4 identity given as numbers (the external cache's columns:
 * cache/external-ct.ts). Addresses are u32 words here, not text, so it is a
 * different function from hashTuple: one table uses one of them for IPv4.
 */
export function hashV4Identity(src: number, dst: number, proto: number, l4: number, zone: number): number {
  let h = mixInt(FNV_OFFSET, src);
  h = mixInt(h, dst);
  h = mixInt(h, (AF_INET << 8) | (proto & 0xff));
  h = mixInt(h, l4);
  h = mixInt(h, zone);
  return finish(h);
}

/** Tuple equality on the identity fields only (not the zone: see ctZone). */
export function tupleEquals(a: Tuple, b: Tuple): boolean {
  if (a.proto !== b.proto || a.l3 !== b.l3 || a.src !== b.src || a.dst !== b.dst) return false;
  if (isIcmp(a.proto)) {
    return (a.icmpType ?? 0) === (b.icmpType ?? 0) && (a.icmpCode ?? 0) === (b.icmpCode ?? 0) &&
      (a.icmpId ?? 0) === (b.icmpId ?? 0);
  }
  if (a.proto === IPPROTO.GRE) {
    return (a.greKeySrc ?? a.sport ?? 0) === (b.greKeySrc ?? b.sport ?? 0) &&
      (a.greKeyDst ?? a.dport ?? 0) === (b.greKeyDst ?? b.dport ?? 0);
  }
  return (a.sport ?? 0) === (b.sport ?? 0) && (a.dport ?? 0) === (b.dport ?? 0);
}

/** The zone of a connection: CTA_ZONE, else the directional orig zone, else 0 (the default zone). */
export function ctZone(ct: Conntrack): number {
  return ct.zone ?? ct.orig.zone ?? 0;
}

export function hashConntrack(ct: Conntrack): number {
  return hashTuple(ct.orig, ctZone(ct));
}

export function conntrackIdentityEquals(a: Conntrack, b: Conntrack): boolean {
  return ctZone(a) === ctZone(b) && tupleEquals(a.orig, b.orig);
}

/**
 * An expectation is identified by its master's original tuple and the
 * expected tuple (conntrackd hashes the master and compares the whole
 * expectation; the expected tuple is what tells two expectations of one
 * master apart).
 */
export function hashExpectation(e: Expectation): number {
  const zone = e.zone ?? 0;
  return hashTuple(e.tuple, zone, hashTuple(e.master, zone));
}

export function expectationIdentityEquals(a: Expectation, b: Expectation): boolean {
  return (a.zone ?? 0) === (b.zone ?? 0) && tupleEquals(a.master, b.master) && tupleEquals(a.tuple, b.tuple);
}

export const conntrackIdentity: IdentityOps<Conntrack> = {
  hash: hashConntrack,
  equals: conntrackIdentityEquals,
};

export const expectationIdentity: IdentityOps<Expectation> = {
  hash: hashExpectation,
  equals: expectationIdentityEquals,
};
