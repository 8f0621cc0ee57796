// The sync engine's side of the addon's lone-event fast path: the gate word it
// keeps in the shared state block, the sequence counter living there, and the
// adoption of a message the addon sent (filed in the resend queue as if the
// engine had sent it). The addon is played by `fastSend` below, over the fake
// link: it does what native/src/fastpath.c does with the state block.
import { describe, expect, it } from 'vitest';
import type { CacheObject } from '../../src/cache/types.js';
import { OBJ_STATE } from '../../src/cache/types.js';
import type { EngineStats } from '../../src/sync/engine.js';
import type { Ftfw } from '../../src/sync/ftfw.js';
import { FAST_STATE } from '../../src/sync/types.js';
import { MSG } from '../../src/wire/header.js';
import { fakeCodec, flow, makePair, type Pair, type TestNode } from '../helpers/fake-link.js';

const T0 = 1795343829;
const codec = fakeCodec();

function st(n: TestNode): EngineStats {
  return (n.engine as Ftfw).stats();
}

/** Data messages waiting in the resend queue (our own ACKs wait there too, for the peer's). */
function rsObjects(n: TestNode): string[] {
  return n.engine.rsQueueLines().filter((l) => l.startsWith('object'));
}

/** A pair past its HELLO handshake, a's engine attached to a fresh state block (the daemon's gate open). */
function attached(): { p: Pair; state: Int32Array } {
  const p = makePair({ unixBase: T0 - 1 });
  const state = new Int32Array(FAST_STATE.WORDS);
  state[FAST_STATE.DAEMON] = 1;
  p.a.engine.attachFastPath!(state);
  p.a.engine.start();
  p.clock.advance(500);
  p.b.engine.start();
  p.clock.advance(1600);
  return { p, state };
}

/**
 * What the addon does with one lone NEW event when both gates are open: the
 * CT_NEW message numbered from the shared counter, straight onto the link;
 * then the JS path runs as one batch (onFastSent, the cache's enqueue). False
 * when a gate was closed (the JS path alone sends it).
 */
function fastSend(p: Pair, state: Int32Array, id: number, enqueue = true): boolean {
  const e = p.a.engine;
  let seq = -1;
  if (state[FAST_STATE.ENGINE] === 1 && state[FAST_STATE.DAEMON] === 1) {
    seq = state[FAST_STATE.SEQ]! >>> 0;
    const obj: CacheObject = { kind: 'ct', value: flow(id, 1), state: OBJ_STATE.NEW, firstSeen: 0, lastUpdate: 0, sync: null, pins: 0 };
    const buf = Buffer.alloc(128);
    const n = codec.encode(buf, 0, buf.length, MSG.CT_NEW, 0, seq, obj);
    p.link.send('a', buf.subarray(0, n));
    state[FAST_STATE.SEQ] = (seq + 1) | 0;
    state[FAST_STATE.SENT]!++;
  }
  e.beginBatch!();
  if (seq >= 0) e.fastSent!(seq);
  if (enqueue) p.a.create(id);
  e.endBatch!();
  return seq >= 0;
}

describe('sync engine and the fast path (fake link, fake addon)', () => {
  it('keeps the gate closed until the peer answered our HELLO, and while anything waits in the tx queue', () => {
    const p = makePair({ unixBase: T0 - 1 });
    const state = new Int32Array(FAST_STATE.WORDS);
    p.a.engine.attachFastPath!(state);
    p.a.engine.start();
    expect(state[FAST_STATE.ENGINE]).toBe(0);
    p.clock.advance(500);
    p.b.engine.start();
    p.clock.advance(1600);
    expect((p.a.engine as Ftfw).helloDone).toBe(true);
    expect(state[FAST_STATE.ENGINE]).toBe(1);
    // A change outside a kernel read (a timer, a command): queued for the next round, which the
    // fast path must not overtake.
    p.a.create(7);
    expect(state[FAST_STATE.ENGINE]).toBe(0);
    p.clock.advance(1);
    expect(state[FAST_STATE.ENGINE]).toBe(1);
    p.a.engine.stop();
    expect(state[FAST_STATE.ENGINE]).toBe(0);
  });

  it('numbers from the shared counter: the addon\'s messages and the engine\'s share one sequence, no gap, no repeat', () => {
    const { p, state } = attached();
    const before = state[FAST_STATE.SEQ]! >>> 0;
    for (let i = 0; i < 5; i++) expect(fastSend(p, state, 100 + i)).toBe(true);
    p.a.create(200); // the JS path's own send, after the addon's
    p.clock.advance(50);
    for (let i = 0; i < 3; i++) expect(fastSend(p, state, 300 + i)).toBe(true);
    p.clock.advance(3000);
    const seqs = p.link.from('a').map((d) => d.bytes.readUInt32BE(4));
    expect(seqs.filter((s) => s >= before).slice(0, 9)).toEqual(Array.from({ length: 9 }, (_, i) => before + i));
    expect([...p.b.external.keys()].sort()).toEqual([100, 101, 102, 103, 104, 200, 300, 301, 302]);
    expect(st(p.b).seqLostActual).toBe(0);
    const s = st(p.a);
    expect(s.fastAdopted).toBe(8);
    expect(s.fastOrphans).toBe(0);
    // Filed as sent, then released by the peer's ACKs like any other message.
    expect(rsObjects(p.a)).toEqual([]);
    expect([...p.a.internal.values()].every((o) => o.pins === 0)).toBe(true);
  });

  it('a message the addon sent and the link lost is resent from the resend queue after the peer\'s NACK', () => {
    const { p, state } = attached();
    let sent501 = 0;
    p.link.dropIf = (d) => d.from === 'a' && d.bytes.readUInt32BE(8) === 501 && sent501++ === 0;
    expect(fastSend(p, state, 500)).toBe(true);
    expect(fastSend(p, state, 501)).toBe(true);
    expect(fastSend(p, state, 502)).toBe(true);
    expect(rsObjects(p.a).length).toBe(3);
    p.clock.advance(3000);
    expect(sent501).toBe(2); // the addon's, lost, and the engine's resend
    expect([...p.b.external.keys()].sort()).toEqual([500, 501, 502]);
    expect(st(p.b).nacksSent).toBeGreaterThan(0);
    expect(st(p.a).resends).toBeGreaterThan(0);
    expect(rsObjects(p.a)).toEqual([]);
  });

  it('counts an orphan when the JS path took nothing for the sent event, and sends a non-NEW object itself', () => {
    const { p, state } = attached();
    expect(fastSend(p, state, 600, false)).toBe(true); // filtered, no room, undecodable: nothing enqueued
    expect(st(p.a).fastOrphans).toBe(1);
    p.a.create(601);
    p.clock.advance(50);
    const n = p.link.from('a').length;
    // The cache says UPDATE (it knew the flow): not the addon's CT_NEW, so the engine sends its own.
    p.a.engine.beginBatch!();
    p.a.engine.fastSent!(state[FAST_STATE.SEQ]! >>> 0);
    state[FAST_STATE.SEQ]!++;
    p.a.update(601, 2);
    p.a.engine.endBatch!();
    expect(st(p.a).fastOrphans).toBe(2);
    expect(p.link.from('a').length).toBe(n + 1);
    expect(p.link.from('a').at(-1)!.bytes[0]! & 0x0f).toBe(MSG.CT_UPD);
    p.clock.advance(3000);
    expect(p.b.external.get(601)).toBe(2);
  });

  it('an adopted object already queued with an older state leaves the tx queue: the addon sent its newest', () => {
    const { p, state } = attached();
    const e = p.a.engine;
    e.beginBatch!();
    p.a.create(700, 1); // queued (the batch holds the round back)
    expect(st(p.a).txQueueLen).toBe(1);
    const seq = state[FAST_STATE.SEQ]! >>> 0;
    state[FAST_STATE.SEQ]!++;
    e.fastSent!(seq);
    e.enqueue(p.a.internal.get(700)!);
    e.endBatch!();
    const s = st(p.a);
    expect(s.txQueueLen).toBe(0);
    expect(s.fastAdopted).toBe(1);
    expect(rsObjects(p.a)).toEqual([`object -> seq:${seq}`]);
  });
});
