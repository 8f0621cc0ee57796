// NOTRACK (ftfw.md §3.8): data, RESYNC and a 1 s ALIVE; no ACK/NACK/HELLO, no
// resend queue; the peer's sequence numbers are tracked for statistics only.
import { describe, expect, it } from 'vitest';
import type { EngineStats } from '../../src/sync/engine.js';
import { Notrack } from '../../src/sync/notrack.js';
import { FLAG, MSG, writeAck } from '../../src/wire/header.js';
import { hex, makePair } from '../helpers/fake-link.js';

const T0 = 1795343829;
const st = (n: { engine: unknown }): EngineStats => (n.engine as Notrack).stats();

function started() {
  const p = makePair({ mode: 'notrack', unixBase: T0 - 1 });
  p.a.engine.start();
  p.b.engine.start();
  return p;
}

describe('notrack', () => {
  it('sends a plain ALIVE every second, without HELLO, and never ACKs', () => {
    const p = started();
    p.clock.advance(3500);
    expect(p.link.from('a').map((d) => hex(d.bytes))).toEqual([
      '1a 10 00 08 6b 02 c5 d5', '1a 10 00 08 6b 02 c5 d6', '1a 10 00 08 6b 02 c5 d7',
    ]);
    expect(p.link.sent.every((d) => d.bytes.length === 8)).toBe(true);
    expect(p.a.engine.rsQueueLines()).toEqual([]);
  });

  it('sends data once, typed from the object state, and releases it right after', () => {
    const p = started();
    p.clock.advance(1200);
    const o = p.a.create(1, 1);
    p.a.update(1, 2);
    expect(o.pins).toBe(1);
    p.clock.advance(5);
    expect(p.b.external.get(1)).toBe(2);
    expect(o.pins).toBe(0);
    p.a.destroy(1);
    p.clock.advance(5);
    expect(p.b.external.has(1)).toBe(false);
    expect(p.a.released).toContain(o);
    const types = p.link.from('a').filter((d) => d.bytes.length > 8).map((d) => d.bytes[0]! & 0x0f);
    expect(types).toEqual([MSG.CT_UPD, MSG.CT_DEL]);
    expect(st(p.a)).toMatchObject({ rsQueueLen: 0, txQueueLen: 0, acksSent: 0, nacksSent: 0 });
  });

  it('RESYNC (16 bytes, from = to = 0) asks the peer for a bulk send', () => {
    const p = started();
    for (let i = 1; i <= 3; i++) p.a.create(i);
    p.clock.advance(1500);
    p.b.external.clear();
    const since = p.link.sent.length;
    p.b.engine.requestResync();
    p.clock.advance(5);
    const [r] = p.link.from('b', since);
    expect(hex(r!.bytes).slice(0, 11)).toBe('1a 02 00 10');
    expect(r!.bytes.subarray(8).equals(Buffer.alloc(8))).toBe(true);
    expect(p.a.resyncRequests).toBe(1);
    expect(p.b.external.size).toBe(3);
  });

  it('loss is not repaired but counted; ACK/NACK from an FTFW peer are malformed headers', () => {
    const p = started();
    p.clock.advance(1500);
    p.link.dropIf = (d) => d.from === 'a' && d.bytes.length > 8;
    p.a.create(1);
    p.clock.advance(10);
    p.link.dropIf = null;
    p.clock.advance(3000);
    expect(p.b.external.size).toBe(0);
    expect(st(p.b)).toMatchObject({ seqLost: 3, seqLostActual: 1, nacksSent: 0 });
    const ack = Buffer.alloc(16);
    writeAck(ack, 0, FLAG.ACK, 1, 1, 1);
    p.b.engine.receive(ack);
    expect(st(p.b).recv.malformedHeader).toBe(1);
  });

  it('stop cancels the alive timer and releases queued objects', () => {
    const p = started();
    const o = p.a.create(1);
    p.a.destroy(1);
    p.a.engine.stop();
    expect(o.pins).toBe(0);
    const n = p.link.sent.length;
    p.clock.advance(5000);
    expect(p.link.from('a', n)).toEqual([]);
  });
});
