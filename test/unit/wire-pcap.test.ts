// Every datagram of the live capture (conntrackd 1.4.7, TCPWindowTracking off,
// no CommitTimeout): framing is clean, every data message decodes, and the
// builder reproduces every message byte for byte from the decoded entry.
import { describe, expect, it } from 'vitest';
import {
  FLAG, MSG, decodeConntrackMsg, encodeConntrackMsg, hasAckExtension, isDataType, writeAck, writeHeader,
} from '../../src/wire/index.js';
import { captureAvailable, captureFrames, messagesOf } from '../helpers/pcap.js';

describe.runIf(captureAvailable)('ftfw-session1.pcap', () => {
  it('holds 1023 UDP datagrams, all to port 3780', () => {
    const frames = captureFrames();
    expect(frames).toHaveLength(1023);
    expect(frames.every((f) => f.dport === 3780)).toBe(true);
    expect(frames.map((f) => f.frame)).toEqual(Array.from({ length: 1023 }, (_, i) => i + 1));
  });

  it('every datagram walks with all counters zero and ends exactly at the datagram end', () => {
    let msgCount = 0;
    const problems: string[] = [];
    const allowed: number[] = [MSG.CT_NEW, MSG.CT_UPD, MSG.CT_DEL, MSG.CTL];
    for (const f of captureFrames()) {
      const { msgs, counters } = messagesOf(f.payload, f.frame);
      if (Object.values(counters).some((v) => v !== 0)) problems.push(`frame ${f.frame}: ${JSON.stringify(counters)}`);
      const last = msgs[msgs.length - 1]!;
      if (last.off + last.hdr.len !== f.payload.length) problems.push(`frame ${f.frame}: trailing bytes`);
      for (const m of msgs) {
        if (m.hdr.len % 4 !== 0) problems.push(`frame ${f.frame}: len ${m.hdr.len}`);
        // Only conntrack data types and CTL occur; data carries at most HELLO/HELLO_BACK.
        if (!allowed.includes(m.hdr.type)) problems.push(`frame ${f.frame}: type ${m.hdr.type}`);
        if (isDataType(m.hdr.type) && (m.hdr.flags & ~(FLAG.HELLO | FLAG.HELLO_BACK)) !== 0) {
          problems.push(`frame ${f.frame}: data flags ${m.hdr.flags}`);
        }
      }
      msgCount += msgs.length;
    }
    expect(problems).toEqual([]);
    expect(msgCount).toBeGreaterThan(1023);
  });

  it('every data message decodes and re-encodes to the exact captured bytes', () => {
    const out = Buffer.alloc(2048);
    let data = 0;
    const mismatches: string[] = [];
    for (const f of captureFrames()) {
      for (const m of messagesOf(f.payload, f.frame).msgs) {
        if (!isDataType(m.hdr.type)) continue;
        data++;
        const ct = decodeConntrackMsg(m.dgram, m.off, m.hdr.len);
        const len = encodeConntrackMsg(out, 0, m.hdr.type, m.hdr.flags, m.hdr.seq, ct,
          { tcpWindowTracking: false, omitTimeout: false });
        if (!out.subarray(0, len).equals(m.bytes)) mismatches.push(`frame ${f.frame} @${m.off}`);
      }
    }
    // No exceptions: every captured message is in the order our builder uses.
    expect(mismatches).toEqual([]);
    expect(data).toBe(1605);
  });

  it('whole datagrams rebuild byte-identically by encoding at offsets into one buffer', () => {
    const out = Buffer.alloc(1500);
    const bad: number[] = [];
    for (const f of captureFrames()) {
      let off = 0;
      for (const m of messagesOf(f.payload, f.frame).msgs) {
        const h = m.hdr;
        if (isDataType(h.type)) {
          off += encodeConntrackMsg(out, off, h.type, h.flags, h.seq, decodeConntrackMsg(m.dgram, m.off, h.len),
            undefined, 1472);
        } else if (hasAckExtension(h.type, h.flags)) {
          off += writeAck(out, off, h.flags, h.seq, m.bytes.readUInt32BE(8), m.bytes.readUInt32BE(12));
        } else {
          writeHeader(out, off, h.type, h.flags, 8, h.seq);
          off += 8;
        }
      }
      if (!out.subarray(0, off).equals(f.payload)) bad.push(f.frame);
    }
    expect(bad).toEqual([]);
  });

  it('all datagrams stay below MTU - 28 (1472 bytes)', () => {
    expect(Math.max(...captureFrames().map((f) => f.payload.length))).toBe(1444);
  });
});
