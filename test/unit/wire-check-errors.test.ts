// The framing checks of both codecs run per attribute or per message and
// build their error messages out of line (a template literal in them cost the
// path that does not throw a NumberToString call). These pin each rejection's
// reason, message and context, so the move changed nothing a log reader sees.
import { describe, expect, it } from 'vitest';
import { NetlinkError, WireError } from '../../src/errors.js';
import { NTA, NTA_FIXED_LEN, NTA_MAX, NTA_MAX_LEN, checkAttr, checkMessage } from '../../src/wire/attrs.js';
import { checkedLen } from '../../src/netlink/ct-codec.js';
import { MessageReader } from '../../src/netlink/message.js';

function attr(id: number, ntaLen: number, room = 64): Buffer {
  const b = Buffer.alloc(room);
  b.writeUInt16BE(ntaLen, 0);
  b.writeUInt16BE(id, 2);
  return b;
}

function thrown(fn: () => unknown): WireError | NetlinkError {
  try {
    fn();
  } catch (e) {
    if (e instanceof WireError || e instanceof NetlinkError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

const check = (b: Buffer, rem: number): number => checkAttr(b, 0, rem, NTA_MAX, NTA_FIXED_LEN, NTA_MAX_LEN);

describe('checkAttr', () => {
  it('returns nta_len for a good attribute', () => {
    expect(check(attr(NTA.STATUS, 8), 8)).toBe(8);
    expect(check(attr(NTA.HELPER_NAME, 9), 12)).toBe(9);
  });

  it('rejects, in this order: past the message, shorter than a header, unknown id, wrong fixed size, over the limit', () => {
    const past = thrown(() => check(attr(NTA.STATUS, 12), 8)) as WireError;
    expect([past.reason, past.message]).toEqual(['attr-len', `attribute ${NTA.STATUS} runs past the message (12 > 8)`]);
    expect(past.context).toMatchObject({ id: NTA.STATUS, ntaLen: 12 });
    // Past the message wins over an unknown id.
    expect((thrown(() => check(attr(40, 12), 8)) as WireError).reason).toBe('attr-len');
    const short = thrown(() => check(attr(NTA.STATUS, 3), 8)) as WireError;
    expect([short.reason, short.message]).toEqual(['attr-len', `attribute ${NTA.STATUS} shorter than its header`]);
    const unknown = thrown(() => check(attr(NTA_MAX, 8), 8)) as WireError;
    expect([unknown.reason, unknown.message]).toEqual(['attr-id', `unknown attribute id ${NTA_MAX}`]);
    expect(unknown.context).toMatchObject({ id: NTA_MAX });
    const fixed = thrown(() => check(attr(NTA.STATUS, 12), 12)) as WireError;
    expect([fixed.reason, fixed.message]).toEqual(['fixed-size', `attribute ${NTA.STATUS} has nta_len 12, expected 8`]);
    expect(fixed.context).toMatchObject({ id: NTA.STATUS, ntaLen: 12 });
    const max = thrown(() => check(attr(NTA.HELPER_NAME, 20), 20)) as WireError;
    expect([max.reason, max.message]).toEqual(['max-size', `attribute ${NTA.HELPER_NAME} has nta_len 20, limit 16`]);
    expect(max.code).toBe('CTSYNC_ERR_WIRE_DECODE');
  });
});

describe('checkMessage', () => {
  it('returns the header length, and rejects a region without a header or a length outside it', () => {
    const b = Buffer.alloc(32);
    b.writeUInt16BE(20, 2);
    expect(checkMessage(b, 0, 32)).toBe(20);
    const region = thrown(() => checkMessage(b, 28, 8)) as WireError;
    expect([region.reason, region.message]).toEqual(['truncated', 'message region [28, 36) does not hold a header']);
    expect(region.context).toMatchObject({ off: 28, len: 8 });
    expect((thrown(() => checkMessage(b, 0, 7)) as WireError).reason).toBe('truncated');
    const size = thrown(() => checkMessage(b, 0, 16)) as WireError;
    expect([size.reason, size.message]).toEqual(['bad-size', 'message len 20 outside [8, 16]']);
    expect(size.context).toMatchObject({ msgLen: 20, len: 16 });
    b.writeUInt16BE(4, 2);
    expect((thrown(() => checkMessage(b, 0, 32)) as WireError).message).toBe('message len 4 outside [8, 32]');
  });
});

describe('netlink framing errors', () => {
  function nlmsg(len: number, room: number): Buffer {
    const b = Buffer.alloc(room);
    b.writeUInt32LE(len, 0);
    b.writeUInt16LE(0x0100, 4);
    return b;
  }

  it('MessageReader.next: a truncated header, a length below the header, a length past the buffer', () => {
    const r = new MessageReader();
    const trunc = thrown(() => r.reset(Buffer.alloc(10)).next());
    expect(trunc.message).toBe('malformed netlink message: truncated header (10 bytes left) at offset 0');
    const below = thrown(() => r.reset(nlmsg(8, 20)).next());
    expect(below.message).toBe('malformed netlink message: length 8 below header size at offset 0');
    const past = thrown(() => r.reset(nlmsg(40, 20)).next());
    expect(past.message).toBe('malformed netlink message: length 40 runs past the buffer (20 left) at offset 0');
    expect(past.code).toBe('CTSYNC_ERR_NETLINK_DECODE');
    expect(past.context).toMatchObject({ offset: 0 });
  });

  it('MessageReader.attrsStart: a message too short for nfgenmsg', () => {
    const r = new MessageReader().reset(nlmsg(16, 16));
    expect(r.next()).toBe(true);
    const e = thrown(() => r.attrsStart());
    expect(e.message).toBe('malformed netlink message: nfnetlink message of 16 bytes has no nfgenmsg at offset 0');
    expect(e.context).toMatchObject({ offset: 0, type: 0x0100 });
  });

  it('checkedLen: an attribute shorter than its header, one past the end', () => {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(2, 0);
    expect(thrown(() => checkedLen(b, 0, 16, 'CTA_X')).message).toBe('ctnetlink decode: CTA_X: attribute length 2 shorter than its header at offset 0');
    b.writeUInt16LE(12, 4);
    b.writeUInt16LE(7, 6);
    expect(thrown(() => checkedLen(b, 4, 12, 'CTA_X')).message).toBe('ctnetlink decode: CTA_X: attribute (type 7, length 12) runs past end 12 at offset 4');
    expect(checkedLen(b, 4, 16, 'CTA_X')).toBe(12);
  });
});
