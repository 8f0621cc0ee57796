// ctnetlink expectation attribute codec: IPCTNL_MSG_EXP_* bodies after the
// nfgenmsg. Expectations are few (one per helper-tracked control session),
// so this favours plainness over the conntrack reader's tricks, but shares its
// checks and error reporting.

import type { Expectation, ExpectationNat, Tuple } from '../model/conntrack.js';
import type { NlWriter } from './nlattr.js';
import { CTA_EXPECT, CTA_EXPECT_NAT } from './ct-attrs.js';
import { attrType, checkedLen, cstr, fail, readTuple, short, writeTupleAttrs, type CtWriteMode } from './ct-codec.js';
import { rdU16BE, rdU32BE } from '../util/bytes.js';

/**
 * Which attributes a request carries:
 * - create: master, tuple, mask (all three required by the kernel), timeout
 *   (DEFAULT_EXPECT_TIMEOUT if absent), zone, flags, class, helper name, NAT, fn.
 * - update: tuple + timeout (the only thing the kernel changes) + zone.
 * - delete / get: tuple + zone.
 */
export type ExpWriteMode = CtWriteMode;

/** Seconds an injected expectation lives if the source gave none. */
export const DEFAULT_EXPECT_TIMEOUT = 60;

export function writeExpectationAttrs(w: NlWriter, exp: Expectation, mode: ExpWriteMode): void {
  if (mode === 'create') writeTupleAttrs(w, CTA_EXPECT.MASTER, exp.master);
  writeTupleAttrs(w, CTA_EXPECT.TUPLE, exp.tuple);
  if (mode === 'create') {
    writeTupleAttrs(w, CTA_EXPECT.MASK, exp.mask);
    w.u32be(CTA_EXPECT.TIMEOUT, exp.timeout ?? DEFAULT_EXPECT_TIMEOUT);
  } else if (mode === 'update' && exp.timeout !== undefined) {
    w.u32be(CTA_EXPECT.TIMEOUT, exp.timeout);
  }
  if (exp.zone !== undefined) w.u16be(CTA_EXPECT.ZONE, exp.zone);
  if (mode !== 'create') return;
  if (exp.flags !== undefined) w.u32be(CTA_EXPECT.FLAGS, exp.flags);
  if (exp.class !== undefined) w.u32be(CTA_EXPECT.CLASS, exp.class);
  if (exp.helper !== undefined) w.cstring(CTA_EXPECT.HELP_NAME, exp.helper);
  if (exp.nat !== undefined) {
    w.beginNested(CTA_EXPECT.NAT);
    w.u32be(CTA_EXPECT_NAT.DIR, exp.nat.dir);
    writeTupleAttrs(w, CTA_EXPECT_NAT.TUPLE, exp.nat.tuple);
    w.endNested();
  }
  if (exp.fn !== undefined) w.cstring(CTA_EXPECT.FN, exp.fn);
}

function readExpNat(buf: Buffer, start: number, end: number): ExpectationNat {
  let dir = -1;
  let tuple: Tuple | undefined;
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'CTA_EXPECT_NAT');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA_EXPECT_NAT.DIR:
        if (pl < 4) short('CTA_EXPECT_NAT_DIR', 4, pl, off);
        dir = rdU32BE(buf, p);
        break;
      case CTA_EXPECT_NAT.TUPLE:
        tuple = readTuple(buf, p, off + len);
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
  if (dir < 0 || tuple === undefined) fail('CTA_EXPECT_NAT lacks its direction or tuple', start);
  return { dir, tuple };
}

/**
 * Decodes an expectation message body in [start, end). Throws
 * NetlinkError(CTSYNC_ERR_NETLINK_DECODE) if malformed or if master, tuple or
 * mask is missing.
 */
export function readExpectation(buf: Buffer, start: number, end: number): Expectation {
  if (start < 0 || end > buf.length || start > end) fail(`region [${start}, ${end}) outside buffer of ${buf.length}`, start);
  let master: Tuple | undefined;
  let tuple: Tuple | undefined;
  let mask: Tuple | undefined;
  let timeout = -1;
  let id = -1;
  let zone = -1;
  let flags = -1;
  let klass = -1;
  let helper: string | undefined;
  let fn: string | undefined;
  let nat: ExpectationNat | undefined;
  let off = start;
  while (off + 4 <= end) {
    const len = checkedLen(buf, off, end, 'expectation');
    const p = off + 4;
    const pl = len - 4;
    switch (attrType(buf, off)) {
      case CTA_EXPECT.MASTER:
        master = readTuple(buf, p, off + len);
        break;
      case CTA_EXPECT.TUPLE:
        tuple = readTuple(buf, p, off + len);
        break;
      case CTA_EXPECT.MASK:
        mask = readTuple(buf, p, off + len);
        break;
      case CTA_EXPECT.TIMEOUT:
        if (pl < 4) short('CTA_EXPECT_TIMEOUT', 4, pl, off);
        timeout = rdU32BE(buf, p);
        break;
      case CTA_EXPECT.ID:
        if (pl < 4) short('CTA_EXPECT_ID', 4, pl, off);
        id = rdU32BE(buf, p);
        break;
      case CTA_EXPECT.ZONE:
        if (pl < 2) short('CTA_EXPECT_ZONE', 2, pl, off);
        zone = rdU16BE(buf, p);
        break;
      case CTA_EXPECT.FLAGS:
        if (pl < 4) short('CTA_EXPECT_FLAGS', 4, pl, off);
        flags = rdU32BE(buf, p);
        break;
      case CTA_EXPECT.CLASS:
        if (pl < 4) short('CTA_EXPECT_CLASS', 4, pl, off);
        klass = rdU32BE(buf, p);
        break;
      case CTA_EXPECT.HELP_NAME:
        helper = cstr(buf, p, off + len);
        break;
      case CTA_EXPECT.FN:
        fn = cstr(buf, p, off + len);
        break;
      case CTA_EXPECT.NAT:
        nat = readExpNat(buf, p, off + len);
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
  if (master === undefined) fail('expectation has no CTA_EXPECT_MASTER', start);
  if (tuple === undefined) fail('expectation has no CTA_EXPECT_TUPLE', start);
  if (mask === undefined) fail('expectation has no CTA_EXPECT_MASK', start);
  const exp: Expectation = { master, tuple, mask };
  if (timeout >= 0) exp.timeout = timeout;
  if (flags >= 0) exp.flags = flags;
  if (klass >= 0) exp.class = klass;
  if (helper !== undefined) exp.helper = helper;
  if (fn !== undefined) exp.fn = fn;
  if (nat !== undefined) exp.nat = nat;
  if (zone >= 0) exp.zone = zone;
  if (id >= 0) exp.id = id;
  return exp;
}
