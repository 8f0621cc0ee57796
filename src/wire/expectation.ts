// Expectation sync messages (EXP_NEW / EXP_UPD / EXP_DEL, only with
// `ExpectationSync`): conntrackd 1.4.7's builder and parser (spec ftfw.md
// §2.4). Not exercised by the live capture: the layout is source-derived.
import { AF_INET, AF_INET6, IPPROTO, type Expectation, type L3Family, type Tuple } from '../model/conntrack.js';
import { readIpv4, readIpv6 } from '../netlink/nlattr.js';
import {
  NTA_EXP, NTA_EXP_FIXED_LEN, NTA_EXP_MAX, NTA_EXP_MAX_LEN, NTA_HDRLEN,
  checkAttr, checkMessage, decodeError, encodeFailure, noSpace, ntaAlign,
  putAddrPair, putPorts, putString, putU32BE, putU8, readCString,
} from './attrs.js';
import type { WireEncodeOptions } from './conntrack.js';
import { HEADER_SIZE, writeHeader } from './header.js';
import { rdU16BE, rdU32BE } from '../util/bytes.js';

const NO_OPTS: WireEncodeOptions = {};

/** Protocols whose expectation tuples carry a PORT attribute. */
function hasPorts(proto: number): boolean {
  return proto === IPPROTO.TCP || proto === IPPROTO.UDP || proto === IPPROTO.SCTP || proto === IPPROTO.DCCP;
}

function putTuple(buf: Buffer, p: number, t: Tuple, idV4: number, idV6: number, idProto: number, idPort: number,
  ports: boolean, lim: number): number {
  const v6 = t.l3 === AF_INET6;
  p = putAddrPair(buf, p, v6 ? idV6 : idV4, v6, t.src, t.dst, lim);
  p = putU8(buf, p, idProto, t.proto, lim);
  if (ports) p = putPorts(buf, p, idPort, t.sport ?? 0, t.dport ?? 0, lim);
  return p;
}

/**
 * Writes one EXP_NEW/EXP_UPD/EXP_DEL message at buf[off]; returns its length.
 * Same error contract as encodeConntrackMsg. `opts.omitTimeout` = the sender
 * has CommitTimeout; tcpWindowTracking is irrelevant here.
 */
export function encodeExpectationMsg(buf: Buffer, off: number, type: number, flags: number, seq: number,
  exp: Expectation, opts: WireEncodeOptions = NO_OPTS, limit: number = buf.length): number {
  const lim = limit < buf.length ? limit : buf.length;
  try {
    if (off + HEADER_SIZE > lim) throw noSpace(off + HEADER_SIZE, lim);
    // [QUIRK] whether expected, mask and NAT tuples get ports is decided by
    // the master's L4 protocol, not their own.
    const ports = hasPorts(exp.master.proto);
    let p = off + HEADER_SIZE;
    p = putTuple(buf, p, exp.master, NTA_EXP.MASTER_IPV4, NTA_EXP.MASTER_IPV6, NTA_EXP.MASTER_L4PROTO,
      NTA_EXP.MASTER_PORT, ports, lim);
    p = putTuple(buf, p, exp.tuple, NTA_EXP.EXPECT_IPV4, NTA_EXP.EXPECT_IPV6, NTA_EXP.EXPECT_L4PROTO,
      NTA_EXP.EXPECT_PORT, ports, lim);
    p = putTuple(buf, p, exp.mask, NTA_EXP.MASK_IPV4, NTA_EXP.MASK_IPV6, NTA_EXP.MASK_L4PROTO,
      NTA_EXP.MASK_PORT, ports, lim);
    if (exp.timeout !== undefined && opts.omitTimeout !== true) p = putU32BE(buf, p, NTA_EXP.TIMEOUT, exp.timeout, lim);
    p = putU32BE(buf, p, NTA_EXP.FLAGS, exp.flags ?? 0, lim);
    if (exp.class !== undefined) p = putU32BE(buf, p, NTA_EXP.CLASS, exp.class, lim);
    const nat = exp.nat;
    if (nat !== undefined) {
      const t = nat.tuple;
      // Only an IPv4 NAT address exists on the wire; an IPv6 one is dropped.
      if (t.l3 === AF_INET) p = putAddrPair(buf, p, NTA_EXP.NAT_IPV4, false, t.src, t.dst, lim);
      p = putU8(buf, p, NTA_EXP.NAT_L4PROTO, t.proto, lim);
      if (ports) p = putPorts(buf, p, NTA_EXP.NAT_PORT, t.sport ?? 0, t.dport ?? 0, lim);
      p = putU32BE(buf, p, NTA_EXP.NAT_DIR, nat.dir, lim);
    }
    if (exp.helper !== undefined) p = putString(buf, p, NTA_EXP.HELPER_NAME, exp.helper, lim);
    if (exp.fn !== undefined) p = putString(buf, p, NTA_EXP.FN, exp.fn, lim);
    const len = p - off;
    writeHeader(buf, off, type, flags, len, seq);
    return len;
  } catch (err) {
    throw encodeFailure(err);
  }
}

/** One tuple being collected from attributes (any order). */
interface TupleAcc {
  l3: number;
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
}

function newAcc(): TupleAcc {
  return { l3: 0, src: '', dst: '', proto: -1, sport: -1, dport: -1 };
}

function finish(a: TupleAcc, what: string): Tuple {
  if (a.l3 === 0 || a.proto < 0) {
    throw decodeError('missing-tuple', `expectation ${what} tuple without addresses or L4 protocol`, { what });
  }
  const t: Tuple = { l3: a.l3 as L3Family, src: a.src, dst: a.dst, proto: a.proto };
  if (a.sport >= 0) {
    t.sport = a.sport;
    t.dport = a.dport;
  }
  return t;
}

/**
 * Decodes an EXP_* message at buf[off..off+len) (header included). Receiver
 * rules as for conntracks, with ids ≥ 21 rejected ('attr-id'). Master,
 * expected and mask tuples must each have addresses and an L4 protocol
 * ('missing-tuple'). A NAT tuple without NAT_IPV4 (what an IPv6 sender
 * produces) gets the master's family and unspecified addresses; a NAT tuple
 * without NAT_DIR gets dir 0, one without NAT_L4PROTO the master's protocol.
 */
export function decodeExpectationMsg(buf: Buffer, off: number, len: number): Expectation {
  const msgLen = checkMessage(buf, off, len);
  let p = off + HEADER_SIZE;
  let rem = msgLen - HEADER_SIZE;
  const master = newAcc();
  const expected = newAcc();
  const mask = newAcc();
  const nat = newAcc();
  let natSeen = false;
  let timeout = -1, flags = -1, klass = -1, natDir = -1;
  let helper: string | undefined, fn: string | undefined;

  while (rem > NTA_HDRLEN) {
    const ntaLen = checkAttr(buf, p, rem, NTA_EXP_MAX, NTA_EXP_FIXED_LEN, NTA_EXP_MAX_LEN);
    const id = buf[p + 3]!;
    const d = p + NTA_HDRLEN;
    if (id <= NTA_EXP.MASK_PORT) {
      // Ids 0..11 come in groups of four: IPV4, IPV6, L4PROTO, PORT.
      const acc = id < 4 ? master : id < 8 ? expected : mask;
      readTupleAttr(buf, d, id & 3, acc);
    } else {
      switch (id) {
        case NTA_EXP.TIMEOUT: timeout = rdU32BE(buf, d); break;
        case NTA_EXP.FLAGS: flags = rdU32BE(buf, d); break;
        case NTA_EXP.CLASS: klass = rdU32BE(buf, d); break;
        case NTA_EXP.NAT_IPV4: natSeen = true; readTupleAttr(buf, d, 0, nat); break;
        case NTA_EXP.NAT_PORT: natSeen = true; readTupleAttr(buf, d, 3, nat); break;
        case NTA_EXP.NAT_L4PROTO: natSeen = true; readTupleAttr(buf, d, 2, nat); break;
        case NTA_EXP.NAT_DIR: natDir = rdU32BE(buf, d); break;
        case NTA_EXP.HELPER_NAME: helper = readCString(buf, d, p + ntaLen); break;
        case NTA_EXP.FN: fn = readCString(buf, d, p + ntaLen); break;
        default: break;
      }
    }
    const step = ntaAlign(ntaLen);
    p += step;
    rem -= step;
  }

  const exp: Expectation = {
    master: finish(master, 'master'),
    tuple: finish(expected, 'expected'),
    mask: finish(mask, 'mask'),
  };
  if (timeout >= 0) exp.timeout = timeout;
  if (flags >= 0) exp.flags = flags;
  if (klass >= 0) exp.class = klass;
  if (natSeen) {
    if (nat.l3 === 0) {
      nat.l3 = exp.master.l3;
      nat.src = nat.dst = exp.master.l3 === AF_INET6 ? '::' : '0.0.0.0';
    }
    if (nat.proto < 0) nat.proto = exp.master.proto;
    exp.nat = { dir: natDir >= 0 ? natDir : 0, tuple: finish(nat, 'nat') };
  }
  if (helper !== undefined) exp.helper = helper;
  if (fn !== undefined) exp.fn = fn;
  return exp;
}

/** kind: 0 IPV4 pair, 1 IPV6 pair, 2 L4PROTO, 3 PORT (sizes already checked). */
function readTupleAttr(buf: Buffer, d: number, kind: number, acc: TupleAcc): void {
  switch (kind) {
    case 0: acc.l3 = AF_INET; acc.src = readIpv4(buf, d); acc.dst = readIpv4(buf, d + 4); break;
    case 1: acc.l3 = AF_INET6; acc.src = readIpv6(buf, d); acc.dst = readIpv6(buf, d + 16); break;
    case 2: acc.proto = buf[d]!; break;
    default: acc.sport = rdU16BE(buf, d); acc.dport = rdU16BE(buf, d + 2); break;
  }
}
