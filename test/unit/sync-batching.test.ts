// Datagram batching (ftfw.md §1.6): messages are packed while
// buffered + len < max (strictly), the buffer is flushed after each round.
import { describe, expect, it } from 'vitest';
import { WireError } from '../../src/errors.js';
import { SeqCounter, DatagramWriter, type MessageSource } from '../../src/sync/tx.js';
import { FakeClock } from '../../src/util/clock.js';
import { MSG } from '../../src/wire/header.js';
import { makePair } from '../helpers/fake-link.js';

/** Writes `len` bytes of `len & 0xff`; throws no-space past the limit like the real codec. */
const fixed: MessageSource<number> = {
  writeMessage(buf, off, limit, len) {
    if (off + len > limit) throw new WireError('CTSYNC_ERR_WIRE_ENCODE', 'no space', 'no-space');
    buf.fill(len & 0xff, off, off + len);
    return len;
  },
};

function writer(max: number): { w: DatagramWriter; out: Buffer[] } {
  const out: Buffer[] = [];
  return { w: new DatagramWriter(max, (d) => out.push(d)), out };
}

describe('DatagramWriter', () => {
  it('packs 19 × 76-byte messages into 1444 bytes at MTU 1500 (maxDatagram 1471), the 20th goes next', () => {
    const { w, out } = writer(1471);
    for (let i = 0; i < 20; i++) w.put(fixed, 76);
    w.flush();
    expect(out.map((d) => d.length)).toEqual([1444, 76]);
  });

  it('is strict: a message that would exactly fill the buffer starts a new datagram', () => {
    const { w, out } = writer(160);
    w.put(fixed, 80);
    w.put(fixed, 80); // 80 + 80 = 160, not < 160
    w.put(fixed, 16);
    w.flush();
    expect(out.map((d) => d.length)).toEqual([80, 96]);
    expect(out[1]!.subarray(0, 80).every((b) => b === 80)).toBe(true);
    expect(out[1]!.subarray(80).every((b) => b === 16)).toBe(true);
  });

  it('retries a message that hit the limit in a fresh datagram', () => {
    const { w, out } = writer(100);
    w.put(fixed, 60);
    w.put(fixed, 60); // no space at 60 → flush, re-encode at 0
    w.flush();
    expect(out.map((d) => d.length)).toEqual([60, 60]);
  });

  it('refuses a message that cannot fit even alone, keeping what was buffered', () => {
    const { w, out } = writer(100);
    w.put(fixed, 20);
    expect(() => w.put(fixed, 100)).toThrow(WireError);
    w.flush();
    expect(out.map((d) => d.length)).toEqual([20]);
  });

  it('sends copies, so the one reusable buffer can be overwritten', () => {
    const { w, out } = writer(100);
    w.put(fixed, 8);
    w.flush();
    w.put(fixed, 12);
    w.flush();
    expect(out[0]!.every((b) => b === 8)).toBe(true);
    expect(w.datagramsSent).toBe(2);
  });

  it('lent: hands the sink views of its one buffer, in the same packing (the sink is done with each on return)', () => {
    const seen: { len: number; first: number; buf: ArrayBufferLike }[] = [];
    const w = new DatagramWriter(100, (d) => seen.push({ len: d.length, first: d[0]!, buf: d.buffer }), true);
    w.put(fixed, 60);
    w.put(fixed, 30);
    w.put(fixed, 20); // 90 + 20 is not < 100: the first two go, this one moves to the front
    w.flush();
    expect(seen.map((x) => [x.len, x.first])).toEqual([[90, 60], [20, 20]]);
    expect(seen[0]!.buf).toBe(seen[1]!.buf);
    expect(w.datagramsSent).toBe(2);
  });

  it('flush of an empty buffer sends nothing', () => {
    const { w, out } = writer(100);
    w.flush();
    expect(out).toEqual([]);
  });
});

describe('SeqCounter', () => {
  it('seeds with the Unix time at first use and wraps mod 2^32', () => {
    const clock = new FakeClock(2 ** 32 - 2);
    const s = new SeqCounter(clock);
    clock.advance(1000);
    const got: number[] = [];
    for (let i = 0; i < 4; i++) {
      got.push(s.peek());
      s.advance();
    }
    expect(got).toEqual([2 ** 32 - 1, 0, 1, 2]);
  });
});

describe('engine batching', () => {
  it('one transmit round per tick: 20 objects go out as 1444 + 76 bytes, consecutive seqs', () => {
    const p = makePair();
    p.a.engine.start();
    for (let i = 0; i < 20; i++) p.a.create(i);
    p.clock.advance(0);
    const d = p.link.from('a');
    expect(d.map((x) => x.bytes.length)).toEqual([1444, 76]);
    const seq0 = d[0]!.bytes.readUInt32BE(4);
    expect(d[1]!.bytes.readUInt32BE(4)).toBe(seq0 + 19);
    // HELLO is on every message until a HELLO_BACK arrives.
    expect(d[0]!.bytes[1]).toBe(0x20);
    expect(d[0]!.bytes[76 + 1]).toBe(0x20);
  });

  it('a batch (one kernel read) goes out as it ends, in one round, with no round left scheduled', () => {
    const p = makePair();
    p.a.engine.start();
    p.clock.advance(0);
    const before = p.link.from('a').length;
    p.a.engine.beginBatch!();
    for (let i = 0; i < 20; i++) p.a.create(i);
    // Nothing yet: the round waits for the end of the batch, not for the next tick.
    expect(p.link.from('a').length).toBe(before);
    p.a.engine.endBatch!();
    const d = p.link.from('a').slice(before);
    expect(d.map((x) => x.bytes.length)).toEqual([1444, 76]);
    p.clock.advance(0);
    expect(p.link.from('a').length).toBe(before + 2);
    // A batch that changed nothing sends nothing; outside a batch, rounds are scheduled as before.
    p.a.engine.beginBatch!();
    p.a.engine.endBatch!();
    p.a.create(99);
    expect(p.link.from('a').length).toBe(before + 2);
    p.clock.advance(0);
    expect(p.link.from('a').length).toBe(before + 3);
  });

  it('data and control messages share a datagram', () => {
    const p = makePair();
    p.a.engine.start();
    p.a.create(1);
    p.a.engine.requestResync();
    p.a.create(2);
    p.clock.advance(0);
    const [d] = p.link.from('a');
    expect(d!.bytes.length).toBe(76 + 16 + 76);
    expect(d!.bytes[76]! & 0x0f).toBe(MSG.CTL);
  });

  it('an object that cannot be encoded is counted, dropped and released; the seq is not consumed', () => {
    const p = makePair({ msgSize: 2000, maxDatagram: 1471 });
    p.a.engine.start();
    const o = p.a.create(1);
    p.a.destroy(1);
    p.a.engine.requestResync();
    p.clock.advance(0);
    const st = (p.a.engine as unknown as { stats(): { sendMalformed: number } }).stats();
    expect(st.sendMalformed).toBe(1);
    expect(o.pins).toBe(0);
    expect(p.a.released).toContain(o);
    const [d] = p.link.from('a');
    expect(d!.bytes.length).toBe(16);
    expect(d!.bytes.readUInt32BE(4)).toBe(p.clock.unixSeconds());
  });
});

describe('real wire codec through the engine', () => {
  it('a CT_NEW built by wire/conntrack.ts arrives decoded at the peer (capture D4 shape)', async () => {
    const { createWireCodec } = await import('../../src/sync/wire-codec.js');
    const p = makePair({ codec: createWireCodec() });
    p.a.engine.start();
    p.b.engine.start();
    p.clock.advance(2500);
    const since = p.link.sent.length;
    const o = p.a.create(5000, 0);
    o.value = { orig: { l3: 2, src: '10.99.0.2', dst: '10.99.0.1', proto: 17, sport: 5000, dport: 53 },
      status: 8, timeout: 60, mark: 0, zone: 5 };
    p.clock.advance(5);
    const [d] = p.link.from('a', since);
    expect(d!.bytes[0]).toBe(0x10);
    expect(p.b.peerData).toEqual([{ type: MSG.CT_NEW, id: 5000, version: 0 }]);
    expect(p.b.external.get(5000)).toBe(0);
  });
});
